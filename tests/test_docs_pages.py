"""The generated reference pages of the docs site (scripts/docs_pages.py): they
list every config key, error code and command the code has, so the site cannot
drift from it. `mkdocs build --strict` itself runs in .ci/run."""
import argparse
from pathlib import Path
from typing import Dict, List, Literal, Optional

import pytest
from pydantic import Field
from spacy.language import Language
from typing_extensions import Annotated

from spacy_hf_ner.__main__ import COMMANDS
from spacy_hf_ner.errors import Errors, Warnings

from scripts import docs_pages

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("factory", docs_pages.FACTORIES)
def test_config_reference_has_every_key_with_its_default_and_description(factory):
    cls = docs_pages.component_class(factory)
    defaults = Language.get_factory_meta(factory).default_config
    rows = {key: (typ, default, text) for key, typ, default, text in docs_pages.config_rows(factory)}
    assert list(rows) == list(cls.Settings.model_fields)
    undocumented = [key for key, (_, _, text) in rows.items() if not text]
    assert not undocumented, f"{factory}: keys without a description in the docstrings: {undocumented}"
    for key, (_, default, _) in rows.items():
        assert default == docs_pages.default_text(defaults[key])


def test_config_page_reports_missing_descriptions():
    page, missing = docs_pages.render_config()
    assert missing == []
    for factory in docs_pages.FACTORIES:
        assert f"## {factory}" in page
    assert "| `threshold` | float ≥ 0.0 ≤ 1.0 | `0.0` |" in page


def test_describe_reads_both_docstring_styles():
    docs = [
        "Settings:\nalpha (int): the first\n    key, wrapped.\nbeta (str): the second.",
        "alpha: not this one. gamma: the third; None: default.\n\nother text",
    ]
    assert docs_pages.describe(["alpha", "beta", "gamma", "delta"], docs) == {
        "alpha": "the first key, wrapped.",
        "beta": "the second.",
        "gamma": "the third; None: default.",
    }


def test_type_names():
    assert docs_pages.type_name(Literal["a", "b"]) == '"a" | "b"'
    assert docs_pages.type_name(Optional[int]) == "int | null"
    assert docs_pages.type_name(Annotated[int, Field(ge=1)]) == "int ≥ 1"
    assert docs_pages.type_name(List[str]) == "list[str]"
    assert docs_pages.type_name(Dict[str, str]) == "dict[str, str]"


def test_default_text_shows_registered_functions_as_config():
    assert docs_pages.default_text({"@misc": "x.v1", "infixes": ["-"]}) == '`@misc = "x.v1"` (infixes = `["-"]`)'
    assert docs_pages.default_text(None) == "`null`"


def test_errors_page_has_every_code_with_its_fix():
    page = docs_pages.render_errors()
    all_codes = {**docs_pages.codes(Errors), **docs_pages.codes(Warnings)}
    assert "E001" in all_codes and "W001" in all_codes
    for code, message in all_codes.items():
        section = page.split(f"### {code}\n")[1].split("###")[0]
        meaning, fix = docs_pages.split_fix(message)
        assert docs_pages._md(meaning) in section
        if fix:
            assert f"**Fix:** {docs_pages._md(fix)}" in section
    assert docs_pages.split_fix("it broke. Fix: mend it.") == ("it broke.", "mend it.")
    assert "Raised in `spacy_hf_ner/ner.py`" in page.split("### E028")[1].split("###")[0]


def test_cli_page_has_every_command_and_flag():
    page = docs_pages.render_cli()
    for name, (_, add_arguments, _) in COMMANDS.items():
        assert f"## {name}\n" in page
        parser = argparse.ArgumentParser()
        add_arguments(parser)
        for action in parser._actions:
            for flag in action.option_strings:
                if flag not in ("-h", "--help"):
                    assert f"`{flag}" in page or f", {flag}" in page


def test_every_nav_page_exists_and_every_doc_page_is_in_the_nav():
    import yaml

    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text().replace("!!python", "#"))
    generated = {"reference/config.md", "reference/errors.md", "reference/cli.md", "reference/api.md", "models/en_conll03.md"}

    def pages(node):
        if isinstance(node, str):
            yield node
        elif isinstance(node, list):
            for item in node:
                yield from pages(item)
        elif isinstance(node, dict):
            for value in node.values():
                yield from pages(value)

    nav = set(pages(config["nav"]))
    on_disk = {str(p.relative_to(ROOT / "docs")) for p in (ROOT / "docs").rglob("*.md")}
    assert nav == on_disk | generated


def test_each_code_is_defined_once():
    """A second `E030 = ...` in errors.py (or `W001 = ...` in warning_codes.py)
    silently replaces the first (a class attribute), so that one code would
    name two messages."""
    import re

    from spacy_hf_ner import errors, warning_codes

    source = "".join(Path(m.__file__).read_text(encoding="utf8") for m in (errors, warning_codes))
    codes = re.findall(r"^    ([EW]\d{3}) = ", source, flags=re.M)
    assert codes and len(codes) == len(set(codes)), sorted(c for c in set(codes) if codes.count(c) > 1)
