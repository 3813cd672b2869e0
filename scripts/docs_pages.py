"""The generated pages of the documentation site, written at build time by the
mkdocs-gen-files plugin (see mkdocs.yml), so they are read from the code that is
there and cannot drift from it:

* reference/config.md: every config key of every hf_* component: its type, its
  default (from the factory's `default_config`) and what it does (from the
  docstrings of the component and its settings model);
* reference/errors.md: every error and warning code of `spacy_hf_ner.errors`:
  the message, what it means, the fix, and where the code raises it;
* reference/cli.md: every `spacy-hf-ner` command with its arguments;
* reference/api.md: the API reference (mkdocstrings directives);
* models/en_conll03.md: the bundled model's card.

A key without a description is reported as a warning, which `mkdocs build
--strict` turns into a failure. Tests import the `render_*` functions directly.
"""
import argparse
import inspect
import logging
import re
import sys
from pathlib import Path
from typing import Any, Dict, Iterator, List, Literal, Optional, Sequence, Tuple, Union, get_args, get_origin

from spacy_hf_ner import errors

ROOT = Path(__file__).resolve().parent.parent

log = logging.getLogger("mkdocs.plugins.spacy_hf_ner_docs")
FACTORIES = ("hf_ner", "hf_tagger", "hf_textcat")
CODE = re.compile(r"^[EW]\d{3}$")


# --- configuration reference -------------------------------------------------


def component_class(factory: str) -> Any:
    """The component class behind a registered factory (the class of the
    factory's module whose `factory` attribute is `factory`)."""
    from spacy.language import Language
    from spacy.util import registry

    registry._entry_point_factories.get_all()  # what Language() does: import the plugins' factories
    module = sys.modules[registry.factories.get(Language.get_factory_name(factory)).__module__]
    for _, obj in inspect.getmembers(module, inspect.isclass):
        if getattr(obj, "factory", None) == factory and hasattr(obj, "Settings"):
            return obj
    raise LookupError(f"no component class for factory {factory!r} in {module.__name__}")


def type_name(annotation: Any) -> str:
    """A config key's type as a reader writes it: `"a" | "b"`, `int ≥ 0 | null`."""
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Literal:
        return " | ".join(f'"{a}"' for a in args)
    if origin is Union:
        return " | ".join("null" if a is type(None) else type_name(a) for a in args)
    if str(origin).endswith("Annotated") or (origin is not None and hasattr(annotation, "__metadata__")):
        bounds = [_bound(m) for m in annotation.__metadata__]
        return " ".join([type_name(args[0]), *[b for b in bounds if b]])
    if origin in (list, List):
        return f"list[{type_name(args[0])}]" if args else "list"
    if origin in (dict, Dict):
        return f"dict[{', '.join(type_name(a) for a in args)}]" if args else "dict"
    if origin is not None and "Callable" in str(origin):
        return "registered function"
    if annotation is Any:
        return "any"
    return getattr(annotation, "__name__", str(annotation).replace("typing.", ""))


def _bound(meta: Any) -> str:
    """`Field(ge=0)` and friends as text."""
    parts = []
    for item in getattr(meta, "metadata", [meta]):
        for attr, sign in (("ge", "≥"), ("gt", ">"), ("le", "≤"), ("lt", "<")):
            if getattr(item, attr, None) is not None:
                parts.append(f"{sign} {getattr(item, attr)}")
    return ", ".join(parts)


def default_text(value: Any) -> str:
    """A default as it reads in a config file (`null`, `true`, a registered
    function by its name)."""
    if isinstance(value, dict) and any(k.startswith("@") for k in value):
        reg = next(k for k in value if k.startswith("@"))
        args = ", ".join(f"{k} = {default_text(v)}" for k, v in value.items() if k != reg)
        return f"`{reg} = \"{value[reg]}\"`" + (f" ({args})" if args else "")
    import json

    return f"`{json.dumps(value)}`"


def describe(keys: Sequence[str], docs: Sequence[str]) -> Dict[str, str]:
    """Each key's description, read from docstrings written as `key: text` or
    `key (type): text` (spaCy's style); the first docstring that has a key wins."""
    found: Dict[str, str] = {}
    pattern = re.compile(r"(?:^|(?<=\s))(" + "|".join(map(re.escape, keys)) + r")(?: \([^)]*\))?: ", re.M)
    for doc in docs:
        doc = inspect.cleandoc(doc or "")
        matches = list(pattern.finditer(doc))
        for i, match in enumerate(matches):
            end = matches[i + 1].start() if i + 1 < len(matches) else len(doc)
            text = doc[match.end() : end].split("\n\n")[0]
            found.setdefault(match.group(1), " ".join(text.split()))
    return found


def config_rows(factory: str) -> Iterator[Tuple[str, str, str, Optional[str]]]:
    """(key, type, default, description or None) for each key of `factory`."""
    from spacy.language import Language

    cls = component_class(factory)
    defaults = Language.get_factory_meta(factory).default_config
    fields = cls.Settings.model_fields
    docs = [klass.__doc__ for klass in cls.__mro__ if klass.__module__.startswith("spacy_hf_ner")]
    docs += [klass.__doc__ for klass in cls.Settings.__mro__ if klass.__module__.startswith("spacy_hf_ner")]
    texts = describe(list(fields), docs)
    for key, field in fields.items():
        annotation = field.annotation
        if field.metadata:
            annotation = _annotated(annotation, field.metadata)
        default = default_text(defaults[key]) if key in defaults else "(required)"
        yield key, type_name(annotation), default, texts.get(key)


def _annotated(annotation: Any, metadata: List[Any]) -> Any:
    from typing import Annotated

    return Annotated[(annotation, *metadata)]  # type: ignore[misc]


def config_table(factory: str) -> Tuple[List[str], List[str]]:
    """The Markdown table of `factory`'s keys, and the keys without a description."""
    lines, missing = ["| key | type | default | what it does |", "|---|---|---|---|"], []
    for key, typ, default, text in config_rows(factory):
        if text is None:
            missing.append(f"{factory}.{key}")
        cell = (text or "**undocumented**").replace("|", "\\|")
        lines.append(f"| `{key}` | {typ.replace('|', '&#124;')} | {default.replace('|', '&#124;')} | {cell} |")
    return lines, missing


def render_config(factories: Sequence[str] = FACTORIES) -> Tuple[str, List[str]]:
    """The configuration reference page, and the keys that have no description."""
    from spacy.language import Language

    lines = [
        "# Configuration reference",
        "",
        "Generated from the code at build time: the keys and types from each component's",
        "settings model, the defaults from its factory's `default_config`, the text from",
        "the docstrings. Set a key in `nlp.add_pipe(name, config={...})` or under",
        "`[components.NAME]` in a config file. A bad value fails with a coded error",
        "([E009](errors.md#e009) and others) that names the key and the fix.",
        "",
    ]
    missing = []
    for factory in factories:
        cls = component_class(factory)
        meta = Language.get_factory_meta(factory)
        assigns = ", ".join(f"`{a}`" for a in meta.assigns)
        lines += [f"## {factory}", "", f"`{cls.__module__}.{cls.__name__}`, assigns {assigns}.", ""]
        table, undocumented = config_table(factory)
        lines += table + [""]
        missing += undocumented
    return "\n".join(lines), missing


TABLE_MARK = re.compile(r"^<!-- config-table: (\w+) -->$", re.M)


def fill_tables(page: str) -> str:
    """A page with each `<!-- config-table: FACTORY -->` line replaced by the
    factory's generated key table."""
    return TABLE_MARK.sub(lambda m: "\n".join(config_table(m.group(1))[0]), page)


# --- errors and warnings ---------------------------------------------------------


def codes(klass: type) -> Dict[str, str]:
    """The raw message templates of `Errors` or `Warnings`, by code."""
    return {k: v for k, v in sorted(vars(klass).items()) if CODE.match(k) and isinstance(v, str)}


def raised_in(package: Path) -> Dict[str, List[str]]:
    """code -> the modules (paths in the package) whose source uses it."""
    where: Dict[str, List[str]] = {}
    for path in sorted(package.rglob("*.py")):
        if path.name in ("errors.py", "warning_codes.py"):
            continue
        for code in sorted(set(re.findall(r"\b(?:Errors|Warnings)\.([EW]\d{3})\b", path.read_text()))):
            where.setdefault(code, []).append(str(path.relative_to(package.parent)))
    return where


def split_fix(message: str) -> Tuple[str, str]:
    """(what it means, the fix) of a message written as "... Fix: ..."."""
    meaning, _, fix = message.partition("Fix:")
    return meaning.strip(), fix.strip()


def render_errors() -> str:
    """The error and warning reference page."""
    where = raised_in(ROOT / "spacy_hf_ner")
    lines = [
        "# Errors and warnings",
        "",
        "Generated from `spacy_hf_ner/errors.py` and `warning_codes.py` at build time. Every message starts with its",
        "code, names the component (or command) and the config key or file at fault, and ends",
        "with the fix; `{...}` are the values filled in when it is raised.",
        "",
        "Errors are raised as `ValueError` (or the exception named in the guide). Warnings are",
        "`spacy_hf_ner.HFNerWarning`, a `UserWarning`: silence them all with",
        '`warnings.filterwarnings("ignore", category=HFNerWarning)`, or one by its code with',
        '`warnings.filterwarnings("ignore", message=r"\\[W005\\]")`.',
        "",
    ]
    for title, klass in (("Errors", errors.Errors), ("Warnings", errors.Warnings)):
        lines += [f"## {title}", ""]
        for code, message in codes(klass).items():
            meaning, fix = split_fix(message)
            lines += [f"### {code}", "", f"**What it means:** {_md(meaning)}", ""]
            if fix:
                lines += [f"**Fix:** {_md(fix)}", ""]
            if code in where:
                lines += ["Raised in " + ", ".join(f"`{m}`" for m in where[code]) + ".", ""]
    return "\n".join(lines)


def _md(text: str) -> str:
    """A message template as Markdown text (its line breaks kept as spaces)."""
    return " ".join(text.split()).replace("<", "&lt;").replace(">", "&gt;")


# --- command line ----------------------------------------------------------------


def render_cli() -> str:
    """The `spacy-hf-ner` command reference, from the parsers the commands build."""
    from spacy_hf_ner.__main__ import COMMANDS

    lines = [
        "# Command line",
        "",
        "`spacy-hf-ner COMMAND ...` (or `python -m spacy_hf_ner COMMAND ...`); generated at build",
        "time from the commands' own argument parsers, so it is what `--help` prints.",
        "",
    ]
    for name, (help_text, add_arguments, _run) in COMMANDS.items():
        parser = argparse.ArgumentParser(prog=f"spacy-hf-ner {name}")
        add_arguments(parser)
        lines += [f"## {name}", "", help_text[0].upper() + help_text[1:] + ".", "", "```text", parser.format_usage().strip(), "```", ""]
        lines += ["| argument | default | what it does |", "|---|---|---|"]
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            flags = ", ".join(action.option_strings) or (action.metavar or action.dest)
            default = "" if action.default in (None, argparse.SUPPRESS) or not action.option_strings else f"`{action.default}`"
            text = (action.help or "").replace("%(default)s", str(action.default))
            if action.choices:
                text += f" (one of {', '.join(map(str, action.choices))})"
            lines.append(f"| `{flags}` | {default} | {_md(text).replace('|', '&#124;')} |")
        lines.append("")
    return "\n".join(lines)


# --- API --------------------------------------------------------------------------

API = {
    "Components": ["spacy_hf_ner.ner.HFNer", "spacy_hf_ner.tagger.HFTagger", "spacy_hf_ner.textcat.HFTextcat", "spacy_hf_ner.base.HFComponent"],
    "Settings and types": ["spacy_hf_ner.settings", "spacy_hf_ner.ty"],
    "Component kinds": ["spacy_hf_ner.kinds"],
    "Backends": ["spacy_hf_ner.backends.registry"],
    "Shared encoder": ["spacy_hf_ner.listeners"],
    "Word units": ["spacy_hf_ner.units"],
    "Bulk annotation": ["spacy_hf_ner.bulk"],
    "displaCy": ["spacy_hf_ner.displacy"],
    "Pure logic (no spaCy, no torch)": [
        "spacy_hf_ner.aggregation",
        "spacy_hf_ner.alignment",
        "spacy_hf_ner.placement",
        "spacy_hf_ner.tags",
        "spacy_hf_ner.windows",
        "spacy_hf_ner.classify",
    ],
    "Errors": ["spacy_hf_ner.errors"],
}


def render_api() -> str:
    """The API reference page: mkdocstrings renders each object from its docstrings."""
    lines = ["# API reference", "", "Generated from the docstrings at build time.", ""]
    for title, objects in API.items():
        lines += [f"## {title}", ""]
        for obj in objects:
            lines += [f"::: {obj}", ""]
    return "\n".join(lines)


def generate() -> None:
    """Write the generated pages into the site being built."""
    import mkdocs_gen_files

    config, missing = render_config()
    for key in missing:
        log.warning("reference/config.md: config key %s has no description in the docstrings", key)
    pages = {
        "reference/config.md": config,
        "reference/errors.md": render_errors(),
        "reference/cli.md": render_cli(),
        "reference/api.md": render_api(),
        "models/en_conll03.md": (ROOT / "spacy_hf_ner/models/en_conll03/README.md").read_text(),
    }
    for page in sorted((ROOT / "docs").rglob("*.md")):
        text = page.read_text()
        if TABLE_MARK.search(text):
            pages[str(page.relative_to(ROOT / "docs"))] = fill_tables(text)
    for path, text in pages.items():
        with mkdocs_gen_files.open(path, "w") as f:
            f.write(text)


if __name__ in ("__main__", "<run_path>"):
    generate()
