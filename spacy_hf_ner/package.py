"""`spacy-hf-ner package`: an installable pipeline package and this plugin's
wheel in one folder.

`spacy package` writes the requirement `spacy-hf-ner>=0.1.0,<0.2.0` into the
pipeline package, and spacy-hf-ner is not on the package index, so the package
alone does not install on a fresh machine. This command runs `spacy package`,
builds the pipeline's wheel and spacy-hf-ner's wheel into the package's `dist/`
folder, so that

    spacy-hf-ner package training/model-best packages --name test_hf --version 0.0.1
    pip install --find-links packages/en_test_hf-0.0.1/dist en_test_hf

works on any machine (spaCy, torch and transformers come from the index or the
environment as usual). spacy-hf-ner's wheel is built from its source tree when
the package runs from one (a clone, an editable install), else repacked from the
installed files.
"""
import argparse
import base64
import csv
import hashlib
import io
import shutil
import subprocess
import sys
import tempfile
import zipfile
from importlib import metadata
from pathlib import Path
from typing import List, Optional, Sequence

from .errors import Errors, SpacyHFNerError, SpacyHFNerRuntimeError

DIST_NAME = "spacy-hf-ner"
SKIPPED = ("INSTALLER", "REQUESTED", "RECORD", "direct_url.json")
SOURCE_FILES = ("setup.cfg", "pyproject.toml", "README.md")  # what setup.cfg reads besides the package


def add_arguments(ap: argparse.ArgumentParser) -> None:
    """The command's arguments (`spacy-hf-ner package`), spaCy's names."""
    ap.add_argument("input_dir", type=Path, help="the pipeline folder (e.g. training/model-best)")
    ap.add_argument("output_dir", type=Path, help="folder for the package folder (must exist, as for spacy package)")
    ap.add_argument("--name", "-n", default=None, help="package name (default: the meta's)")
    ap.add_argument("--version", "-v", default=None, help="package version (default: the meta's)")
    ap.add_argument("--meta-path", "-m", type=Path, default=None, help="meta.json to use instead of the pipeline's")
    ap.add_argument("--code", "-c", default="", help="comma-separated Python files with custom code to include")
    ap.add_argument("--force", "-f", action="store_true", help="overwrite an existing package folder")


def run(args: argparse.Namespace) -> int:
    """Run the command; prints the dist folder and the install command."""
    code = [Path(p) for p in args.code.split(",") if p.strip()]
    try:
        dist = package(args.input_dir, args.output_dir, name=args.name, version=args.version,
                       meta_path=args.meta_path, code_paths=code, force=args.force)  # fmt: skip
    except (ValueError, RuntimeError) as e:
        print(str(e), file=sys.stderr)
        return 1
    wheels = sorted(p.name for p in dist.glob("*.whl"))
    print(f"dist: {dist}\n  " + "\n  ".join(wheels))
    pipeline = next(w.split("-")[0] for w in wheels if not w.startswith("spacy_hf_ner-"))
    print(f"install anywhere: pip install --find-links {dist} {pipeline}")
    return 0


def package(
    input_dir: Path,
    output_dir: Path,
    *,
    name: Optional[str] = None,
    version: Optional[str] = None,
    meta_path: Optional[Path] = None,
    code_paths: Sequence[Path] = (),
    force: bool = False,
) -> Path:
    """Run `spacy package` (no sdist), then build the pipeline's wheel and
    spacy-hf-ner's wheel into the package's `dist/`; returns that folder."""
    import srsly
    from spacy.cli.package import package as spacy_package

    input_dir, output_dir = Path(input_dir), Path(output_dir)
    try:
        spacy_package(input_dir, output_dir, meta_path=meta_path, code_paths=list(code_paths), name=name,
                      version=version, create_sdist=False, create_wheel=False, force=force, silent=False)  # fmt: skip
    except SystemExit as e:  # spaCy's msg.fail has printed why
        raise SpacyHFNerError(Errors.E180.format(input_dir=input_dir, status=e.code)) from None
    meta = srsly.read_json(input_dir / "meta.json")  # what --meta-path gives overrides it, as in spaCy
    meta.update(srsly.read_json(meta_path) if meta_path else {})
    package_name = name or meta["name"]
    if not package_name.startswith(f"{meta['lang']}_"):
        package_name = f"{meta['lang']}_{package_name}"
    main_path = output_dir / f"{package_name}-{version or meta['version']}"
    dist = main_path / "dist"
    dist.mkdir(exist_ok=True)
    _pip_wheel(main_path, dist, package_name)
    plugin_wheel(dist)
    return dist


def plugin_wheel(dist: Path) -> Path:
    """spacy-hf-ner's wheel in `dist`: built from the source tree the package
    is imported from, else repacked from the installed distribution."""
    source = Path(__file__).resolve().parent.parent
    if (source / "setup.cfg").is_file() and f"name = {DIST_NAME}" in (source / "setup.cfg").read_text("utf8"):
        with tempfile.TemporaryDirectory() as tmp:  # a clean copy: no stale build/ of the clone's
            for name in SOURCE_FILES:
                shutil.copy2(source / name, tmp)
            shutil.copytree(source / "spacy_hf_ner", Path(tmp, "spacy_hf_ner"),
                            ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
            _pip_wheel(Path(tmp), dist, DIST_NAME)
        return max(dist.glob("spacy_hf_ner-*.whl"), key=lambda p: p.stat().st_mtime)
    return repack(metadata.distribution(DIST_NAME), dist)


def _pip_wheel(source: Path, dist: Path, what: str) -> None:
    cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(dist), str(source)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise SpacyHFNerRuntimeError(Errors.E181.format(what=what, source=source, error=done.stderr.strip()[-1500:]))


def repack(dist_info: metadata.Distribution, dist: Path) -> Path:
    """A wheel of an installed (non-editable, pure Python) distribution from
    its RECORD: the files it installed, a fresh RECORD, no byte code."""
    files = [f for f in dist_info.files or [] if "__pycache__" not in f.parts and f.parts[0] != ".."]
    info_dir = next((f.parts[0] for f in files if f.parts[0].endswith(".dist-info")), None)
    if info_dir is None or all(f.parts[0] == info_dir or f.name.startswith("__editable__") for f in files):
        raise SpacyHFNerRuntimeError(Errors.E182.format(location=dist_info.locate_file("")))
    name = dist_info.metadata["Name"].replace("-", "_")
    wheel = dist / f"{name}-{dist_info.version}-py3-none-any.whl"
    records: List[List[str]] = []
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as z:
        for f in files:
            if f.parts[0] == info_dir and f.name in SKIPPED:
                continue
            data = Path(str(dist_info.locate_file(f))).read_bytes()
            z.writestr(f.as_posix(), data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            records.append([f.as_posix(), f"sha256={digest}", str(len(data))])
        out = io.StringIO()
        csv.writer(out, lineterminator="\n").writerows([*records, [f"{info_dir}/RECORD", "", ""]])
        z.writestr(f"{info_dir}/RECORD", out.getvalue())
    return wheel
