"""`spacy-hf-ner annotate`: the flags (from `AnnotateOptions`), the report,
and a guard that makes every non-zero exit say why.

The job runs in a child process. Native code can end a process without a word
(Ray's core worker calls `_Exit(1)` when it loses its object store, issue 28;
the OOM killer sends SIGKILL): then the parent prints E117 with the status,
where the logs are and that `--resume` finishes the job. The child dies with
the parent (PR_SET_PDEATHSIG), so killing the command kills the job.
"""
import argparse
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import List

from ..errors import Errors
from .options import add_arguments, from_arguments

# the command's parts: its arguments (those of `AnnotateOptions`) and `run`
__all__ = ["add_arguments", "run"]

CHILD = "SPACY_HF_NER_ANNOTATE_STATUS"
EXPLAINED = "explained"


def run(args: argparse.Namespace) -> int:
    """Run the command: in a guarded child process, or, in that child, the job."""
    if os.environ.get(CHILD):
        return _run_job(args, Path(os.environ[CHILD]))
    return _guard(list(args.argv), args)


def _run_job(args: argparse.Namespace, status: Path) -> int:
    from .job import run as run_job

    try:
        report = run_job(from_arguments(args))
    except Exception as e:
        status.write_text(EXPLAINED)
        if not getattr(e, "code", None) and not str(e).startswith("[E"):
            raise  # not ours: Python prints the traceback
        print(str(e), file=sys.stderr)
        return 1
    except BaseException:
        status.write_text(EXPLAINED)
        raise
    print(report.table())
    status.write_text(EXPLAINED)
    return 0 if report.failed == 0 else 2


def _guard(argv: List[str], args: argparse.Namespace) -> int:
    """Run `annotate argv` in a child; E117 when it ends non-zero without
    having said why."""
    with tempfile.TemporaryDirectory(prefix="annotate-") as folder:
        status = Path(folder) / "status"
        env = {**os.environ, CHILD: str(status)}
        cmd = [sys.executable, "-m", "spacy_hf_ner", *argv]
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # the child gets ^C and reports
        try:
            code = subprocess.run(cmd, env=env, preexec_fn=_die_with_parent).returncode
        finally:
            signal.signal(signal.SIGINT, previous)
        if code in (0, 2) or (status.is_file() and status.read_text() == EXPLAINED):
            return code
    what = f"status {code}" if code > 0 else f"signal {signal.Signals(-code).name}"
    where = ""
    if getattr(args, "engine", "local") == "ray":
        where = " (Ray's own logs: python-core-driver-*.log in its session folder, /tmp/ray/session_latest/logs)"
    if code == -signal.SIGKILL:
        where += " (SIGKILL: often the out-of-memory killer; see `dmesg`)"
    print(Errors.E117.format(status=what, where=where, parts=f"{args.output}.parts"), file=sys.stderr)
    return code if code > 0 else 128 - code


def _die_with_parent() -> None:
    """In the child: SIGKILL when the parent ends (Linux)."""
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
