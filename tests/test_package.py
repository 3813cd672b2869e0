"""`spacy-hf-ner package`: the pipeline package and spacy-hf-ner's wheel in one
dist folder install into a fresh environment with `pip install --find-links DIST
PACKAGE` and no package index (spaCy, torch, transformers come from the
environment, as they would from the index)."""
import subprocess
import sys
import zipfile
from pathlib import Path

import fresh_venv
import pytest
import spacy

REPO = Path(__file__).resolve().parent.parent
TEXT = "Angela Merkel met Emmanuel Macron in Paris."


def package(nlp, root: Path, name: str) -> Path:
    """`spacy-hf-ner package` of `nlp`: its dist folder."""
    nlp.to_disk(root / "pipe")
    (root / "out").mkdir()
    done = subprocess.run([sys.executable, "-m", "spacy_hf_ner", "package", str(root / "pipe"), str(root / "out"),
                           "--name", name, "--version", "0.0.1"],
                          cwd=REPO, capture_output=True, text=True, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    dist = root / "out" / f"en_{name}-0.0.1" / "dist"
    assert f"pip install --find-links {dist} en_{name}" in done.stdout
    return dist


def requirements(wheel: Path):
    with zipfile.ZipFile(wheel) as z:
        (meta,) = [n for n in z.namelist() if n.endswith(".dist-info/METADATA")]
        return [line for line in z.read(meta).decode().splitlines() if line.startswith("Requires-Dist: ")]


@pytest.fixture(scope="module")
def dist(bert_ner, tmp_path_factory) -> Path:
    nlp = spacy.blank("en")
    nlp.add_pipe("hf_ner", config={"model": str(bert_ner)})
    nlp.initialize()
    return package(nlp, tmp_path_factory.mktemp("package"), "test_hf")


@pytest.fixture(scope="module")
def heads_dist(bert_ner, tmp_path_factory) -> Path:
    """hf_ner with a tagger listening to it (spacy-curated-transformers)."""
    pytest.importorskip("spacy_curated_transformers")
    from test_listeners import trained

    return package(trained(bert_ner, steps=3), tmp_path_factory.mktemp("heads_package"), "test_heads")


def test_dist_holds_the_pipeline_and_the_plugin(dist):
    assert sorted(p.name for p in dist.iterdir()) == [
        "en_test_hf-0.0.1-py3-none-any.whl", "spacy_hf_ner-0.1.0-py3-none-any.whl",
    ]  # fmt: skip
    assert requirements(dist / "en_test_hf-0.0.1-py3-none-any.whl") == ["Requires-Dist: spacy-hf-ner<0.2.0,>=0.1.0"]


def test_a_heads_pipeline_requires_its_listener_library(heads_dist):
    """spaCy names the library of the listeners' architectures: pip brings
    spacy-curated-transformers with the pipeline."""
    found = requirements(heads_dist / "en_test_heads-0.0.1-py3-none-any.whl")
    assert "Requires-Dist: spacy-hf-ner<0.2.0,>=0.1.0" in found
    assert any(r.startswith("Requires-Dist: spacy-curated-transformers") for r in found), found


@pytest.mark.slow  # about 100 s on 2 cores
def test_a_heads_package_installs_and_runs_one_pass_in_a_fresh_venv(heads_dist, tmp_path):
    """The heads pipeline from its dist folder: entities and tags, from one
    forward pass, as in the project's environment."""
    nlp = spacy.load(heads_dist.parent / "en_test_heads" / "en_test_heads-0.0.1")
    expected = [[(t.text, t.tag_, t.ent_type_) for t in nlp(TEXT)]]
    python = fresh_venv.make(tmp_path)
    fresh_venv.pip_install(python, "--find-links", str(heads_dist), "en_test_heads")
    script = (
        "import spacy\n"
        "nlp = spacy.load('en_test_heads')\n"
        "print(nlp.get_pipe('hf_ner').listening_components)\n"
        f"print([[(t.text, t.tag_, t.ent_type_) for t in nlp({TEXT!r})]])\n"
    )
    done = subprocess.run([str(python), "-c", script], cwd=tmp_path, env=fresh_venv.env(),
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.splitlines() == ["['tagger']", str(expected)]


@pytest.mark.slow  # about 100 s on 2 cores: a fresh venv, pip, a model load
def test_package_installs_offline_in_a_fresh_venv(dist, tmp_path):
    expected = [(e.text, e.label_) for e in spacy.load(dist.parent / "en_test_hf" / "en_test_hf-0.0.1")(TEXT).ents]
    python = fresh_venv.make(tmp_path)
    site = fresh_venv.site_packages(python)
    fresh_venv.pip_install(python, "--find-links", str(dist), "en_test_hf")
    script = (
        "import spacy, spacy_hf_ner\n"
        "print(spacy_hf_ner.__file__)\n"
        f"print([(e.text, e.label_) for e in spacy.load('en_test_hf')({TEXT!r}).ents])\n"
        "from spacy_hf_ner.package import plugin_wheel\n"
        f"print(plugin_wheel(__import__('pathlib').Path({str(tmp_path)!r})))\n"
    )
    done = subprocess.run([str(python), "-c", script], cwd=tmp_path, env=fresh_venv.env(),
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout.splitlines()
    assert out[0].startswith(site), f"imported {out[0]}, not the installed wheel's copy"
    assert out[1] == str(expected)
    # installed from a wheel, the plugin repacks itself: the same files, byte for byte
    with zipfile.ZipFile(out[2]) as repacked, zipfile.ZipFile(dist / "spacy_hf_ner-0.1.0-py3-none-any.whl") as built:
        names = sorted(n for n in built.namelist() if not n.endswith("RECORD"))
        assert sorted(n for n in repacked.namelist() if not n.endswith("RECORD")) == names
        assert all(repacked.read(n) == built.read(n) for n in names)


def test_a_missing_pipeline_is_a_coded_error(tmp_path):
    done = subprocess.run([sys.executable, "-m", "spacy_hf_ner", "package", str(tmp_path / "nope"), str(tmp_path)],
                          cwd=REPO, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 1 and "[E180]" in done.stderr and "nope" in done.stderr


def test_a_meta_file_with_some_keys_fills_in_from_the_pipeline(bert_ner, tmp_path):
    """`--meta-path` with a description only (as configs/heads_package_meta.json):
    spaCy takes the pipeline's lang, name and version for the rest, and so
    does the wheel step (it failed with KeyError: 'lang')."""
    import json

    nlp = spacy.blank("en")
    nlp.add_pipe("hf_ner", config={"model": str(bert_ner)})
    nlp.initialize()
    nlp.to_disk(tmp_path / "pipe")
    (tmp_path / "meta.json").write_text(json.dumps({"description": "a test pipeline"}))
    (tmp_path / "out").mkdir()
    done = subprocess.run([sys.executable, "-m", "spacy_hf_ner", "package", str(tmp_path / "pipe"), str(tmp_path / "out"),
                           "--name", "meta_hf", "--version", "0.0.2", "--meta-path", str(tmp_path / "meta.json")],
                          cwd=REPO, capture_output=True, text=True, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "out" / "en_meta_hf-0.0.2" / "dist" / "en_meta_hf-0.0.2-py3-none-any.whl").is_file()
