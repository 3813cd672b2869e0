"""`spacy-hf-ner init-config`: write a `spacy train` config that fine-tunes a
transformers encoder as `hf_ner`, `hf_tagger` or `hf_textcat`.

    spacy-hf-ner init-config config.cfg --component hf_ner --model bert-base-cased \\
        --train corpus/train.spacy --dev corpus/dev.spacy --max-steps 3000

spaCy's own `spacy init config -p hf_ner` writes its CNN recipe (a constant
learning rate of 0.001, no warm-up, 20,000 steps), which is wrong for a
transformer. This writes the fine-tuning recipe instead: Adam with weight decay
and gradient clipping, a linear warm-up to `--learn-rate` then a linear decay to
0 at the last step (`warmup_linear.v1`, `total_steps` a literal as spaCy's
templates write it), batches of `--batch-words` words. The component's keys
are its factory's defaults, with `model = ${paths.base_model}`.

One template (templates/finetune.cfg.jinja) for the three components; the
shipped configs/*.cfg are its output (each names the command that wrote it, and
tests/test_configs.py checks that they still equal what it writes).
"""
import argparse
import json
import math
import shlex
import sys
from pathlib import Path
from typing import Any, Dict, List, Tuple

from .errors import Errors, SpacyHFNerError
from .heads import DEFAULT_WIDTH, LAYER_MODES, base_config, head_sections, parse_heads, score_weights
from .kinds import ComponentKind, Recipe, all_kinds, kind_of

TEMPLATE = Path(__file__).parent / "templates" / "finetune.cfg.jinja"


# a comment above a component key in the config
KEY_COMMENTS = {
    "decoding": "'auto' (Viterbi with words = 'spacy'): the best label sequence the tag "
    "scheme allows; 'greedy': each word's best label",
}
LEARN_RATE = 1e-4
# `--encoder joint`: the component's encoder learns at this rate (its backend's
# `learn_rate_scale` times `--learn-rate`, the heads' rate): on CoNLL-2003, a
# tagger joint with en_conll03 at 1e-3 / 2e-5 reached 88.4% tag accuracy (frozen:
# 83.9%) with entity F1 -0.19; at one shared rate the heads' gradients swamped it
ENCODER_LEARN_RATE = 2e-5
WARMUP_FRACTION = 0.1  # of max_steps, unless --warmup-steps
EVALUATIONS = 10  # dev evaluations per run, unless --eval-frequency


def cfg_value(value: Any) -> str:
    """A value as a spaCy config writes it (JSON; null, true, 0.0001)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def component_settings(component: str) -> Tuple[List[Tuple[str, Any]], List[Tuple[str, Dict[str, Any]]]]:
    """The factory's default config (registered functions filled with their
    defaults), without `model`: (plain keys, registered-function sections).
    A registered function without arguments stays inline, as spaCy writes
    `scorer = {"@scorers": ...}`."""
    from spacy import util
    from spacy.language import Language

    defaults = dict(Language.get_factory_meta(component).default_config or {})
    defaults.pop("model")
    promises = {k: v for k, v in defaults.items() if isinstance(v, dict) and any(a.startswith("@") for a in v)}
    filled = util.registry.fill({"c": promises}, validate=False)["c"] if promises else {}
    plain: List[Tuple[str, Any]] = []
    sections: List[Tuple[str, Dict[str, Any]]] = []
    for key, value in defaults.items():
        section = filled.get(key)
        if section is not None and len(section) > 1:
            sections.append((key, section))
        else:
            plain.append((key, value))
    return plain, sections


def count_words(path: str) -> int:
    """Tokens in the training corpus at `path` (a .spacy file or a folder of them)."""
    import spacy
    from spacy.tokens import DocBin

    target = Path(path)
    files = sorted(target.rglob("*.spacy")) if target.is_dir() else [target]
    if not files or not all(f.is_file() for f in files):
        raise SpacyHFNerError(Errors.E142.format(path=path))
    vocab = spacy.blank("xx").vocab
    return sum(len(doc) for f in files for doc in DocBin().from_disk(f).get_docs(vocab))


def component_kind(component: str) -> ComponentKind:
    """The kind `--component` names (E145 for an unknown one)."""
    kind = kind_of(component)
    if kind is None:
        raise SpacyHFNerError(Errors.E145.format(component=component, known=", ".join(sorted(all_kinds()))))
    return kind


def plan_steps(args: argparse.Namespace, recipe: Recipe) -> Dict[str, int]:
    """max_steps, warmup_steps, eval_frequency and batch_words from the flags."""
    batch_words = args.batch_words or recipe.batch_words
    if args.epochs is not None:
        if not args.train:
            raise SpacyHFNerError(Errors.E140)
        max_steps = max(1, math.ceil(args.epochs * count_words(args.train) / batch_words))
    else:
        max_steps = args.max_steps or recipe.max_steps
    warmup = args.warmup_steps if args.warmup_steps is not None else max(1, round(WARMUP_FRACTION * max_steps))
    if not 0 <= warmup < max_steps:
        raise SpacyHFNerError(Errors.E141.format(warmup=warmup, max_steps=max_steps))
    every = args.eval_frequency or max(1, max_steps // EVALUATIONS)
    return {"max_steps": max_steps, "warmup_steps": warmup, "eval_frequency": every, "batch_words": batch_words}


def command_line(args: argparse.Namespace) -> str:
    """The command that writes this config (only the flags that were given)."""
    parts = ["spacy-hf-ner", "init-config", str(args.output), "--component", args.component]
    for flag, value in (
        ("--model", args.model),
        ("--train", args.train),
        ("--dev", args.dev),
        ("--lang", None if args.lang == "en" else args.lang),
        ("--max-steps", args.max_steps),
        ("--epochs", args.epochs),
        ("--warmup-steps", args.warmup_steps),
        ("--eval-frequency", args.eval_frequency),
        ("--batch-words", args.batch_words),
        ("--learn-rate", None if args.learn_rate == LEARN_RATE else args.learn_rate),
        ("--encoder-learn-rate", getattr(args, "encoder_learn_rate", None)),
        ("--with", getattr(args, "heads", None)),
        ("--encoder", getattr(args, "heads", None) and getattr(args, "encoder", None)),
        ("--layers", args.layers if getattr(args, "heads", None) and getattr(args, "layers", "last") != "last" else None),
    ):
        if value is not None:
            parts += [flag, format(value, "g") if isinstance(value, float) else str(value)]
    return shlex.join(parts)


def render(args: argparse.Namespace) -> str:
    """The config text for parsed `init-config` arguments.

    RAISES (ValueError): E140-E142 for flags that do not fit together, E144
        for `--with` heads that do not fit, E145 for an unknown component.
    """
    import jinja2

    kind = component_kind(args.component)
    settings, sections = component_settings(args.component)
    shared = _shared_heads(args, kind)
    if shared["learn_rate_scale"] is not None:
        sections = [(k, {**v, "learn_rate_scale": shared["learn_rate_scale"]} if k == "backend" else v) for k, v in sections]
    env = jinja2.Environment(keep_trailing_newline=True, undefined=jinja2.StrictUndefined)
    env.filters["cfg"] = cfg_value
    template = env.from_string(TEMPLATE.read_text(encoding="utf8"))
    return template.render(
        component=args.component,
        kind=kind,
        recipe=kind.recipe,
        command=command_line(args),
        output=str(args.output),
        base_model=args.model,
        train=args.train,
        dev=args.dev,
        lang=args.lang,
        learn_rate=args.learn_rate,
        settings=settings,
        comments=KEY_COMMENTS,
        sections=sections,
        **shared,
        **plan_steps(args, kind.recipe),
    )


def _shared_heads(args: argparse.Namespace, kind: ComponentKind) -> Dict[str, Any]:
    """What `--with` / `--encoder` add to the template: spaCy heads listening
    to the component (`heads.py`), frozen or trained with it."""
    heads = parse_heads(getattr(args, "heads", None), args.component)
    mode = getattr(args, "encoder", None) or "frozen"
    config = base_config(args.model) if heads else None
    width = getattr(config, "hidden_size", None)
    layers = getattr(args, "layers", None) or "last"
    n_layers = getattr(config, "num_hidden_layers", None) or 12
    frozen = [args.component] if heads and mode == "frozen" else []
    return {
        "learn_rate_scale": encoder_scale(args, heads, mode),
        "pipeline": [args.component, *heads],
        "heads": heads,
        "encoder_mode": mode,
        "heads_text": head_sections(heads, args.component, width or DEFAULT_WIDTH, layers, n_layers) if heads else "",
        "width_known": width is not None,
        "frozen": frozen,
        "weights": score_weights(dict(kind.score_weights), heads, mode) if heads else kind.score_weights,
    }


def encoder_scale(args: argparse.Namespace, heads: List[str], mode: str) -> Any:
    """With `--encoder joint`: the backend's `learn_rate_scale`, the encoder's
    rate over the heads' (`--encoder-learn-rate`, default 2e-5 or the heads'
    rate where that is lower, over `--learn-rate`); else None (E146 for
    `--encoder-learn-rate` without joint heads, or above the heads')."""
    given = getattr(args, "encoder_learn_rate", None)
    if not heads or mode != "joint":
        if given is not None:
            raise SpacyHFNerError(Errors.E146.format(value=given, problem="but no heads train with it", fix="add `--with HEADS --encoder joint`, or drop the flag"))
        return None
    rate = min(ENCODER_LEARN_RATE, args.learn_rate) if given is None else given
    if not 0 < rate <= args.learn_rate:
        fix = f"give a rate in (0, {args.learn_rate:g}] (`--learn-rate`, the heads' rate), e.g. {ENCODER_LEARN_RATE:g}"
        raise SpacyHFNerError(Errors.E146.format(value=rate, problem=f"and must be above 0 and at most the heads' {args.learn_rate:g}", fix=fix))
    return float(f"{rate / args.learn_rate:.6g}")


def add_arguments(ap: argparse.ArgumentParser) -> None:
    """The command's arguments (`spacy-hf-ner init-config`)."""
    ap.add_argument("output", type=Path, help="config file to write ('-' for stdout)")
    ap.add_argument("--component", "-c", required=True, help="the component to fine-tune: hf_ner, hf_tagger, hf_textcat or another registered kind")
    ap.add_argument("--model", "-m", default=None, help="base model: hub id or local folder (default: give --paths.base_model to spacy train)")
    ap.add_argument("--train", default=None, help="training corpus (.spacy file or folder; default: give --paths.train)")
    ap.add_argument("--dev", default=None, help="development corpus (.spacy; default: give --paths.dev)")
    ap.add_argument("--lang", default="en", help="language of the pipeline (default: %(default)s)")
    steps = ap.add_mutually_exclusive_group()
    steps.add_argument("--max-steps", type=int, default=None, help="training steps (default: the component's recipe, e.g. hf_ner 3300)")
    steps.add_argument("--epochs", type=float, default=None, help="training steps from passes over --train: epochs x its words / --batch-words")
    ap.add_argument("--warmup-steps", type=int, default=None, help=f"linear warm-up steps (default: {round(100 * WARMUP_FRACTION)}%% of the steps)")
    ap.add_argument("--eval-frequency", type=int, default=None, help=f"steps between dev evaluations (default: {EVALUATIONS} per run)")
    ap.add_argument("--batch-words", type=int, default=None, help="words per batch (default: the component's recipe, e.g. hf_ner 500)")
    ap.add_argument("--learn-rate", type=float, default=LEARN_RATE, help="peak learning rate (default: %(default)s)")
    ap.add_argument(
        "--with",
        dest="heads",
        default=None,
        help="spaCy heads listening to the component's hidden states, comma-separated: "
        "tagger, morphologizer, parser, textcat (one forward pass for all)",
    )
    ap.add_argument(
        "--encoder",
        choices=["frozen", "joint"],
        default="frozen",
        help="with --with: 'frozen' trains the heads only (the component's predictions stay as they are), "
        "'joint' trains the component with them (default: %(default)s)",
    )
    ap.add_argument(
        "--encoder-learn-rate",
        type=float,
        default=None,
        help=f"with --encoder joint: the peak learning rate of the component's encoder, --learn-rate being the "
        f"heads' (written as the backend's learn_rate_scale; default: {ENCODER_LEARN_RATE:g})",
    )
    ap.add_argument(
        "--layers",
        choices=list(LAYER_MODES),
        default="last",
        help="with --with: the heads read the component's last layer, or 'weighted': a learned weighting of "
        "the embeddings and every layer (the last layer of a fine-tuned model is specialized to its labels; "
        "default: %(default)s)",
    )


def run(args: argparse.Namespace) -> int:
    """Write the config; returns the exit status."""
    try:
        text = render(args)
    except ValueError as e:
        print(str(e), file=sys.stderr)
        return 1
    if str(args.output) == "-":
        sys.stdout.write(text)
        return 0
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text, encoding="utf8")
    print(f"wrote {args.output}: {args.component}, {text.count(chr(10))} lines; train with: python -m spacy train {args.output} --output training/{args.component}", file=sys.stderr)
    return 0
