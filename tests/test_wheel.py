"""The user install path: `python -m build` makes an sdist and, from it, a wheel
that carries the bundled model, the server's page and the config template;
the wheel installed (--no-deps) into a fresh virtual environment runs the
default model and the command line.

The fresh environment sees the project venv's packages (spaCy, torch, ...)
through a .pth file, but not its editable spacy_hf_ner (a .pth inside a
directory added that way is not processed), so only the wheel's copy can be
imported.
"""
import hashlib
import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
MODEL = REPO / "spacy_hf_ner" / "models" / "en_conll03"

pytest.importorskip("build")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    # --no-isolation: the build backend (setuptools) of this venv, no download
    subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(REPO)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    (whl,) = out.glob("spacy_hf_ner-*.whl")
    assert list(out.glob("spacy_hf_ner-*.tar.gz")), "the sdist the wheel is built from"
    return whl


def test_wheel_carries_the_model_page_and_template(wheel):
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        for path in sorted(MODEL.iterdir()):
            member = f"spacy_hf_ner/models/en_conll03/{path.name}"
            assert member in names, f"{member} missing from the wheel"
            assert sha256(z.read(member)) == sha256(path.read_bytes()), member
        assert "spacy_hf_ner/serve/page.html" in names
        assert "spacy_hf_ner/templates/finetune.cfg.jinja" in names
        (entry_points,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
        text = z.read(entry_points).decode()
    assert "[spacy_displacy_colors]" in text and "spacy-hf-ner = spacy_hf_ner.__main__:main" in text


def test_wheel_installs_and_runs_the_default_model_in_a_fresh_venv(wheel, tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    Path(site, "project_venv.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    env.pop("PYTHONPATH", None)  # a clone on it shows the build's spacy_hf_ner.egg-info as installed
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps", str(wheel)],
        check=True, timeout=300, env=env, cwd=tmp_path,
    )  # fmt: skip
    script = (
        "import spacy, spacy_hf_ner\n"
        "print(spacy_hf_ner.__file__)\n"
        "nlp = spacy.blank('en'); nlp.add_pipe('hf_ner')\n"
        "print([(e.text, e.label_) for e in nlp('Angela Merkel met Emmanuel Macron in Paris.').ents])\n"
    )
    out = subprocess.run([str(python), "-c", script], cwd=tmp_path, env=env, check=True,
                         capture_output=True, text=True, timeout=300).stdout.splitlines()  # fmt: skip
    assert out[0].startswith(site), f"imported {out[0]}, not the wheel's copy"
    assert out[1] == "[('Angela Merkel', 'PER'), ('Emmanuel Macron', 'PER'), ('Paris', 'LOC')]"
    version = subprocess.run([str(venv / "bin" / "spacy-hf-ner"), "--version"], cwd=tmp_path, env=env,
                             check=True, capture_output=True, text=True, timeout=120).stdout  # fmt: skip
    assert version.split() == ["spacy-hf-ner", "0.1.0"]
