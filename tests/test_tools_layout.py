"""scripts/ and bench/ are packages run with `python -m` from the repository
root: every module imports without `sys.path` edits, scores with the one
evaluation module, and metrics/ holds only what project.yml writes."""
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MODULES = sorted(f"{p.parent.name}.{p.stem}" for d in ("scripts", "bench") for p in (ROOT / d).glob("*.py")
                 if p.stem != "__init__")  # fmt: skip


def test_no_module_edits_sys_path():
    for path in [*(ROOT / "scripts").glob("*.py"), *(ROOT / "bench").glob("*.py"), *(ROOT / "tests").glob("*.py")]:
        assert not re.search(r"^\s*sys\.path\.(insert|append)\(", path.read_text(encoding="utf8"), flags=re.M), path


def test_every_script_and_bench_module_imports_from_the_root():
    """Imported in a fresh interpreter whose sys.path holds the root only as
    `python -m` puts it there (PYTHONPATH cleared)."""
    code = "import importlib, sys\nfor m in sys.argv[1:]: importlib.import_module(m)\nprint('ok')"
    env = {"PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-c", code, *MODULES], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]


@pytest.mark.parametrize("path", [*(ROOT / "bench").glob("*.py"), *(ROOT / "scripts").glob("*.py")], ids=str)
def test_span_scoring_is_written_once(path):
    if path.name == "evaluate_raw.py":
        return
    assert not re.search(r"^def prf\(", path.read_text(encoding="utf8"), flags=re.M), f"{path}: use scripts.evaluate_raw.prf"


def test_metrics_holds_only_what_project_yml_writes():
    import yaml

    project = yaml.safe_load((ROOT / "project.yml").read_text())
    written = {out for c in project["commands"] for out in c.get("outputs", []) if out.startswith("metrics/")}
    present = {f"metrics/{p.name}" for p in (ROOT / "metrics").iterdir()}
    assert present <= written, sorted(present - written)
