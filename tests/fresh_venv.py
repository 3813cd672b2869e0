"""A fresh virtual environment that sees the project venv's installed packages
(spaCy, torch, transformers, ...) but not spacy-hf-ner nor spaCy's English
pipeline, so that a test installs those as a user would, offline.

The project venv's site-packages is mirrored as a folder of links without the
excluded distributions, and that folder is put on the fresh venv's path by a
.pth file (a .pth inside it is not processed, so the project's editable
spacy_hf_ner stays invisible too)."""
import os
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Sequence

HIDDEN = ("spacy_hf_ner", "__editable__.spacy_hf_ner", "__editable___spacy_hf_ner", "en_core_web_sm")


def make(root: Path, hidden: Sequence[str] = HIDDEN) -> Path:
    """A venv at root/venv over a view of the project's packages minus
    `hidden` (name prefixes); returns its python."""
    view = root / "site_view"
    view.mkdir(parents=True)
    for entry in Path(sysconfig.get_paths()["purelib"]).iterdir():
        if not entry.name.startswith(tuple(hidden)) and entry.suffix != ".pth":
            os.symlink(entry, view / entry.name)
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    Path(site_packages(python), "project_view.pth").write_text(f"{view}\n")
    return python


def site_packages(python: Path) -> str:
    return subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True).stdout.strip()  # fmt: skip


def pip_install(python: Path, *args: str) -> None:
    """pip (the project venv's) installing into the fresh venv, offline; in
    the venv's folder and without PYTHONPATH, so that a clone's
    spacy_hf_ner.egg-info does not read as installed."""
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-index",
                    "--disable-pip-version-check", *args], cwd=python.parent, env=env(), check=True,
                   timeout=600)  # fmt: skip


def env() -> dict:
    """The environment for the fresh venv's commands: no PYTHONPATH (which
    would show the clone's spacy_hf_ner), offline, one thread."""
    out = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    out.pop("PYTHONPATH", None)
    return out
