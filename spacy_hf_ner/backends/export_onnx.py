"""Export a transformers token or sequence classifier to ONNX for backend "onnx".

    spacy-hf-ner export-onnx MODEL_OR_PIPELINE OUTPUT_DIR [--quantize int8] [--int8-mode MODE]
        [--component NAME] [--check-texts N] [--max-disagreement F]

MODEL_OR_PIPELINE is a model directory or hub id, a bundled model
("spacy-hf-ner:en_conll03"), or a saved spaCy pipeline (its hf_ner, hf_tagger or
hf_textcat component; `--component` picks one when there are several).
OUTPUT_DIR gets `onnx/model.onnx` (float32, dynamic batch and sequence axes),
the model's config and its tokenizer, so it works as `model` of a component with
the onnx backend (`@hf_backends = "spacy-hf-ner.onnx.v1"`). `--quantize int8`
adds `onnx/model_int8.onnx` (int8 quantization with the settings of
`--int8-mode`, see `quantize.INT8_MODES`), selected with the block's `file`.

Every export is checked against the torch model on `--check-texts` varied
texts (`agreement.varied_texts`, none of them the traced ones):

* logits: the largest absolute difference; a float32 export that differs by
  more than `--atol` fails the command;
* the component's own output, run with backend "torch" and with backend
  "onnx": for hf_ner the entity-level F1 of the ONNX entities against the
  torch ones with words "spacy" (aggregation "first") and words "model"
  ("simple"), for hf_tagger the tags, for hf_textcat the top category, and the
  largest score difference of what both predict. The summary table is printed;
  a file whose F1 is below 1 - `--max-disagreement` gets warning W160.

The graph is traced with torch's TorchScript exporter (`dynamo=False`): it needs
no package beyond torch and onnx, and exports BERT-family encoders
exactly (differences ~1e-6).
"""
import argparse
import inspect
import sys
import warnings
from pathlib import Path
from typing import Any, Dict, Hashable, List, NamedTuple, Optional, Sequence, Tuple, get_args

import numpy as np

from ..errors import Errors, HFNerWarning, Warnings
from ..sources import TASK_FACTORY, quiet_transformers, resolve_model, task_of
from ..ty import Int8Mode, LoadRequest, Task
from . import ALIASES, ONNX, TORCH
from .agreement import Agreement, agreement, summary_table, varied_texts
from .quantize import INT8_MODE, quantize_int8
from .torch import TorchBackend

FACTORIES = {"hf_ner": "token", "hf_tagger": "token", "hf_textcat": "sequence"}
FP32_FILE = "onnx/model.onnx"
INT8_FILE = "onnx/model_int8.onnx"
OPSET = 17
# traced with a batch of two texts of different lengths (padding included)
TRACE_TEXTS = ("My name is Sarah Jessica Parker.", "She works at Google in New York since 2019 .")
CHECK_TEXTS = 300  # `--check-texts`
MAX_DISAGREEMENT = 0.02  # `--max-disagreement`
# the component settings each check runs (hf_ner: both `words` modes, all
# entities in doc.spans, overlapping ones included)
CHECK_SPANS_KEY = "check"
CHECK_RUNS: Dict[str, Dict[str, Dict[str, str]]] = {
    "hf_ner": {
        run: {"words": words, "aggregation_strategy": strategy, "annotate": "spans", "spans_key": CHECK_SPANS_KEY}
        for run, words, strategy in (("words=spacy first", "spacy", "first"), ("words=model simple", "model", "simple"))
    },
    "hf_tagger": {"tags": {}},
    "hf_textcat": {"top category": {}},
}


class Source(NamedTuple):
    """What to export: a transformers model (directory or hub id), its task, the
    component that runs it and the language the check tokenizes with."""

    model: str
    task: str  # "token" or "sequence"
    factory: str  # "hf_ner", "hf_tagger" or "hf_textcat"
    lang: str = "en"


def resolve_source(model_or_pipeline: str, component: Optional[str] = None) -> Source:
    """The transformers model behind a model directory, hub id, bundled model or
    saved spaCy pipeline."""
    path = Path(model_or_pipeline).expanduser()
    if (path / "config.cfg").is_file():
        return _pipeline_source(path, component)
    if component is not None:
        raise SystemExit(f"--component applies to a saved spaCy pipeline; {model_or_pipeline} is not one")
    from transformers import AutoConfig

    model = resolve_model(model_or_pipeline, "export_onnx")
    architectures = getattr(AutoConfig.from_pretrained(model), "architectures", None) or []
    task = task_of(architectures)
    if task is not None:
        return Source(model, task, TASK_FACTORY[task])
    raise SystemExit(
        f"{model_or_pipeline} is a {'/'.join(architectures) or 'model of unknown architecture'}, "
        "not a *ForTokenClassification or *ForSequenceClassification model"
    )


def _pipeline_source(path: Path, component: Optional[str]) -> Source:
    from spacy.util import load_config

    config = load_config(path / "config.cfg", interpolate=False)
    components = config.get("components", {})
    ours = {n: c for n, c in components.items() if c.get("factory") in FACTORIES}
    if component is not None:
        if component not in ours:
            raise SystemExit(
                f"--component {component}: the pipeline's hf_* components are {', '.join(ours) or 'none'}"
            )
        ours = {component: ours[component]}
    if len(ours) != 1:
        raise SystemExit(
            f"{path} has {len(ours)} hf_* components ({', '.join(ours) or 'none'}): "
            "pick one with --component NAME"
        )
    (name, cfg), = ours.items()
    backend = _backend_name(cfg.get("backend"))
    if backend != TORCH:
        raise SystemExit(f"component '{name}' already runs backend '{backend}'; export a torch component")
    model_dir = path / name / "model"
    if not (model_dir / "config.json").is_file():
        raise SystemExit(f"{model_dir} holds no saved model (config.json): save the pipeline with nlp.to_disk")
    return Source(str(model_dir), FACTORIES[cfg["factory"]], cfg["factory"], config["nlp"].get("lang") or "en")


def _backend_name(backend: Any) -> str:
    """The registered name of a saved component's `backend` (a block, or an
    old-form name)."""
    if isinstance(backend, dict):
        return str(backend.get("@hf_backends"))
    return ALIASES.get(backend or "torch", str(backend))


def load_torch(source: Source) -> Any:
    """The float32 torch model (the torch backend's loader, with the "eager"
    attention that traces) and fast tokenizer, in eval mode on the CPU."""
    from transformers import AutoConfig, AutoTokenizer

    with quiet_transformers():
        tokenizer = AutoTokenizer.from_pretrained(source.model)
        task: Task = "token" if source.task == "token" else "sequence"
        request = LoadRequest(
            source=source.model, config=AutoConfig.from_pretrained(source.model), task=task,
            input_names=list(tokenizer.model_input_names), device="cpu", revision=None, local_only=False,
            labels=None, problem_type=None, name="export-onnx",
        )
        backend = TorchBackend.load(request, "float32", attn_implementation="eager")
    return backend.module, tokenizer


def input_names(model: Any, tokenizer: Any) -> List[str]:
    """The batch inputs the graph takes: input_ids, attention_mask, and
    token_type_ids when the tokenizer produces them and the model accepts them
    (the torch backend feeds the same)."""
    accepted = inspect.signature(model.forward).parameters
    names = ["input_ids", "attention_mask"]
    if "token_type_ids" in getattr(tokenizer, "model_input_names", []) and "token_type_ids" in accepted:
        names.append("token_type_ids")
    return names


def encode(tokenizer: Any, texts: Sequence[str], names: Sequence[str]) -> Dict[str, np.ndarray]:
    enc = tokenizer(list(texts), padding=True, truncation=True, return_tensors="np", return_token_type_ids=True)
    return {k: np.asarray(enc[k], dtype=np.int64) if k in enc else np.zeros_like(enc["input_ids"]) for k in names}


def export(model: Any, tokenizer: Any, path: Path, task: str, opset: int = OPSET) -> None:
    """Trace `model` into an ONNX graph at `path` with dynamic batch and
    sequence axes; inputs as `input_names`, output "logits" ((batch, sequence,
    labels) for task "token", (batch, labels) for "sequence")."""
    import torch

    names = input_names(model, tokenizer)
    example = {k: torch.from_numpy(v) for k, v in encode(tokenizer, TRACE_TEXTS, names).items()}
    dynamic = {k: {0: "batch_size", 1: "sequence_length"} for k in names}
    dynamic["logits"] = {0: "batch_size", 1: "sequence_length"} if task == "token" else {0: "batch_size"}
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and tracer warnings
        torch.onnx.export(
            model,
            (),
            str(path),
            kwargs=example,
            input_names=names,
            output_names=["logits"],
            dynamic_axes=dynamic,
            opset_version=opset,
            do_constant_folding=True,
            dynamo=False,
        )


def logit_diffs(
    model: Any, tokenizer: Any, paths: Sequence[Path], texts: Sequence[str], batch_size: int = 32
) -> List[float]:
    """The largest |logit difference| between each ONNX file and the torch
    model on `texts` (padded batches, torch run once; real tokens only for
    token classifiers)."""
    import onnxruntime
    import torch

    sessions = [onnxruntime.InferenceSession(str(p), providers=["CPUExecutionProvider"]) for p in paths]
    names = input_names(model, tokenizer)
    worst = [0.0] * len(sessions)
    for start in range(0, len(texts), batch_size):
        feeds = encode(tokenizer, texts[start : start + batch_size], names)
        with torch.inference_mode():
            want = model(**{k: torch.from_numpy(v) for k, v in feeds.items()}).logits.float().numpy()
        real = feeds["attention_mask"].astype(bool) if want.ndim == 3 else slice(None)
        for i, session in enumerate(sessions):
            got = session.run(None, {k.name: feeds[k.name] for k in session.get_inputs()})[0]
            worst[i] = max(worst[i], float(np.abs(got[real] - want[real]).max()))
    return worst


def predictions(doc: Any, factory: str) -> Dict[Hashable, float]:
    """What a component predicted for one doc, as {item: score}: entities
    (start_char, end_char, label) for hf_ner (annotate "spans": all of them),
    (token, pos, tag) for hf_tagger, the top category for hf_textcat."""
    if factory == "hf_ner":
        return {(e.start_char, e.end_char, e.label_): float(e._.hf_score) for e in doc.spans.get(CHECK_SPANS_KEY, [])}
    if factory == "hf_tagger":
        return {(t.i, t.pos_, t.tag_): float(t._.hf_tag_score or 0.0) for t in doc}
    if not doc.cats:
        return {}
    top = max(doc.cats, key=doc.cats.get)
    return {top: float(doc.cats[top])}


def component_predictions(
    source: Source, texts: Sequence[str], *, model: Optional[str] = None, onnx_file: Optional[str] = None,
    label: str = "torch", batch_size: int = 32,
) -> Dict[str, List[Dict[Hashable, float]]]:
    """Run the component (`source.factory`, each setting of `CHECK_RUNS`) over
    `texts` with backend "torch" on `source.model`, or with backend "onnx" on
    `onnx_file` inside `model`; a progress bar per run on stderr."""
    import spacy
    from tqdm import tqdm

    runs = {}
    for run, settings in CHECK_RUNS[source.factory].items():
        nlp = spacy.blank(source.lang)
        config: Dict[str, Any] = {"model": model or source.model, "device": "cpu", "batch_size": batch_size, **settings}
        if onnx_file is not None:
            config["backend"] = {"@hf_backends": ONNX, "file": onnx_file}
        nlp.add_pipe(source.factory, config=config)
        docs = nlp.pipe(texts, batch_size=batch_size)
        bar = tqdm(docs, total=len(texts), desc=f"  {label} {run}", unit=" texts", file=sys.stderr, mininterval=0.5)
        with warnings.catch_warnings():
            # W001 counts entities doc.ents cannot take; the check reads all of them from doc.spans
            warnings.filterwarnings("ignore", message=r"\[W001\]", category=HFNerWarning)
            runs[run] = [predictions(doc, source.factory) for doc in bar]
    return runs


def check_agreement(
    source: Source, output: Path, files: Sequence[str], texts: Sequence[str]
) -> List[Tuple[str, str, Agreement]]:
    """(file, run, agreement) of each ONNX file in `output` against the torch
    model, through the component itself."""
    want = component_predictions(source, texts)
    rows: List[Tuple[str, str, Agreement]] = []
    for rel in files:
        got = component_predictions(source, texts, model=str(output), onnx_file=rel, label=rel)
        rows.extend((rel, run, agreement(want[run], got[run])) for run in want)
    return rows


def save_config_and_tokenizer(model: Any, tokenizer: Any, output: Path) -> None:
    with quiet_transformers():
        model.config.save_pretrained(output)
        tokenizer.save_pretrained(output)


def add_arguments(ap: argparse.ArgumentParser) -> None:
    """The command's arguments (also `spacy-hf-ner export-onnx`)."""
    ap.add_argument("model", help="model dir, hub id, spacy-hf-ner:NAME, or a saved spaCy pipeline")
    ap.add_argument("output", type=Path, help="directory to write (a model for backend 'onnx')")
    ap.add_argument("--quantize", choices=["int8"], help="also write an int8 export")
    ap.add_argument(
        "--int8-mode", choices=get_args(Int8Mode), default=INT8_MODE,
        help="int8 settings: onnxruntime's quantize_dynamic with per-channel or per-tensor weight scales "
        "or reduce-range (fast), or blockwise (MatMul weights in blocks of 32: agrees best with torch, "
        "no faster than float32; blockwise-embeddings: also int8 embeddings) (default: %(default)s)",
    )
    ap.add_argument("--component", help="the hf_* component of a pipeline to export")
    ap.add_argument("--opset", type=int, default=OPSET, help=f"ONNX opset (default {OPSET})")
    ap.add_argument("--atol", type=float, default=1e-3, help="largest logit difference a float32 export may have")
    ap.add_argument(
        "--check-texts", type=int, default=CHECK_TEXTS,
        help="how many varied texts the exports are checked on (default: %(default)s)",
    )
    ap.add_argument(
        "--max-disagreement", type=float, default=MAX_DISAGREEMENT,
        help="warn (W160) when a file's F1 against torch is below 1 minus this (default: %(default)s)",
    )


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(
        prog="spacy-hf-ner export-onnx", description=__doc__.splitlines()[0]
    )
    add_arguments(ap)
    return run(ap.parse_args(argv))


def stage(step: int, steps: int, text: str) -> None:
    print(f"[{step}/{steps}] {text}", file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    """Export, optionally quantize, check against torch; returns the exit status."""
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        print("export_onnx needs onnx and onnxruntime: pip install '.[onnx]' in the spacy-hf-ner clone", file=sys.stderr)
        return 2
    if args.check_texts < 1:
        raise SystemExit(f"--check-texts {args.check_texts}: give at least 1 text")
    if not 0.0 <= args.max_disagreement <= 1.0:
        raise SystemExit(f"--max-disagreement {args.max_disagreement}: give a share between 0 and 1, e.g. 0.02")
    steps = 4 if args.quantize else 3
    stage(1, steps, f"loading {args.model}")
    source = resolve_source(args.model, args.component)
    model, tokenizer = load_torch(source)
    output: Path = args.output
    fp32 = output / FP32_FILE
    stage(2, steps, f"exporting float32 graph to {fp32}")
    export(model, tokenizer, fp32, source.task, args.opset)
    save_config_and_tokenizer(model, tokenizer, output)
    texts = varied_texts(args.check_texts)
    files = [FP32_FILE]
    if args.quantize == "int8":
        int8 = output / INT8_FILE
        stage(3, steps, f"quantizing to int8 ({args.int8_mode}) to {int8}")
        quantize_int8(fp32, int8, args.int8_mode)
        files.append(INT8_FILE)
    stage(steps, steps, f"checking {', '.join(files)} against torch on {len(texts)} varied texts")
    diffs = dict(zip(files, logit_diffs(model, tokenizer, [output / rel for rel in files], texts)))
    if diffs[FP32_FILE] > args.atol:
        print(Errors.E160.format(path=fp32, diff=diffs[FP32_FILE], atol=args.atol), file=sys.stderr)
        return 1
    rows = check_agreement(source, output, files, texts)
    print(f"{output}: {source.factory} with backend 'onnx' vs 'torch' on {len(texts)} varied texts")
    for rel, diff in diffs.items():
        print(f"  {rel}: {(output / rel).stat().st_size / 2**20:.1f} MiB, max abs logit diff {diff:.2e}")
    print(summary_table(rows))
    floor = 1.0 - args.max_disagreement
    for rel, run_name, result in rows:
        if result.f1 < floor:
            warnings.warn(
                Warnings.W160.format(
                    file=rel, run=run_name, f1=result.f1, texts=result.texts, differing=result.texts_differing,
                    diff=result.max_score_diff, tolerance=args.max_disagreement, floor=floor,
                ),
                HFNerWarning,
            )
    if args.quantize == "int8":
        print(f"int8 ({args.int8_mode}): select it with `file = \"{INT8_FILE}\"` in the backend block")
    print(f"use it with: model = \"{output}\" and [components.NAME.backend] @hf_backends = \"{ONNX}\"")
    return 0


if __name__ == "__main__":
    sys.exit(main())
