"""The code examples of the README and the docs pages, as tests see them.

A page's fenced blocks are read in order. What each becomes:

* ```python: run (the blocks of one page share their names, in a temporary
  working directory); when the next block, with only blank lines between, is an
  untagged or ```text block, that block is the output the code must print;
* a block whose first line starts with `>>> ` (untagged or python): a doctest;
* ```ini: a config excerpt, parsed by thinc's `Config`; ```json: parsed;
* ```bash and ```console: run only when marked `run`, else they need a
  marker with the reason they are not run;
* any other untagged or ```text block: a shown output, not code.

A marker is an HTML comment on the line before the opening fence, or after the
closing one (invisible on the page, shown by pytest as the skip reason):

    <!-- example: skip: needs the CoNLL-2003 corpus (spacy project run data) -->
    <!-- example: slow: trains for minutes -->
    <!-- example: run -->

No pytest import: tests/test_doc_examples.py turns these into tests.
"""
import re
from pathlib import Path
from typing import Iterator, List, NamedTuple, Optional

MARKER = re.compile(r"^<!-- example: (skip|slow|run)(?:: (.*?))? -->$")
FENCE = re.compile(r"^(\s*)(`{3,})\s*([\w+-]*)\s*$")
OUTPUT_LANGS = ("", "text")


class Block(NamedTuple):
    """One fenced block: where it is, its language, its code, and what it is."""

    page: str
    line: int  # 1-based line of the opening fence
    lang: str
    code: str
    kind: str  # "python", "doctest", "ini", "json", "shell", "output"
    expected: Optional[str]  # the output the code must print (python)
    marker: Optional[str]  # "skip", "slow" or "run"
    reason: Optional[str]

    @property
    def id(self) -> str:
        return f"{self.page}:{self.line}"


def _fences(text: str) -> Iterator[tuple]:
    """(line of the opening fence, language, code, marker, reason, end line)."""
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        match = FENCE.match(lines[i])
        if not match:
            i += 1
            continue
        indent, ticks, lang = match.groups()
        marker = MARKER.match(lines[i - 1].strip()) if i else None
        body: List[str] = []
        j = i + 1
        while j < len(lines) and lines[j].strip() != ticks:
            body.append(lines[j][len(indent):] if lines[j].startswith(indent) else lines[j])
            j += 1
        if marker is None and j + 1 < len(lines):  # or on the line after the closing fence
            marker = MARKER.match(lines[j + 1].strip())
        yield i + 1, lang, "\n".join(body), marker.group(1) if marker else None, marker.group(2) if marker else None, j + 1
        i = j + 1


def _kind(lang: str, code: str) -> str:
    if code.lstrip().startswith(">>> ") and lang in ("", "python", "pycon"):
        return "doctest"
    if lang == "python":
        return "python"
    if lang in ("bash", "sh", "console", "shell"):
        return "shell"
    if lang in ("ini", "cfg"):
        return "ini"
    if lang == "json":
        return "json"
    return "output"


def blocks(path: Path, root: Path) -> List[Block]:
    """The blocks of one Markdown page; an output block right after a python
    block becomes that block's `expected` output instead of a block of its own."""
    text = path.read_text()
    raw = list(_fences(text))
    lines = text.split("\n")
    out: List[Block] = []
    skip_next = False
    for n, (line, lang, code, marker, reason, end) in enumerate(raw):
        if skip_next:
            skip_next = False
            continue
        kind = _kind(lang, code)
        expected = None
        if kind == "python" and n + 1 < len(raw):
            nxt = raw[n + 1]
            between = lines[end : nxt[0] - 1]
            if nxt[1] in OUTPUT_LANGS and _kind(nxt[1], nxt[2]) == "output" and all(not l.strip() for l in between):
                expected, skip_next = nxt[2], True
        page = str(path.relative_to(root))
        out.append(Block(page, line, lang, code, kind, expected, marker, reason))
    return out


def pages(root: Path) -> List[Path]:
    """README.md and every page under docs/."""
    return [root / "README.md", *sorted((root / "docs").rglob("*.md"))]


def normalize(output: str) -> str:
    """Output as compared: trailing spaces and blank lines at the ends dropped."""
    return "\n".join(line.rstrip() for line in output.strip("\n").split("\n"))
