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
  "onnx", as its kind's `ExportCheck` says (the settings of each run and what
  is compared): for hf_ner the entity-level F1 of the ONNX entities against
  the torch ones with words "spacy" (aggregation "first") and words "model"
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
from typing import Any, Dict, Hashable, List, Optional, Sequence, Tuple, get_args

import numpy as np

from ..errors import Errors, HFNerWarning, SpacyHFNerError, Warnings
from ..sources import quiet_transformers
from ..ty import Int8Mode, LoadRequest, Task
from . import ONNX
from .agreement import Agreement, agreement, summary_table, varied_texts
from .export_source import CHECK_TEXTS, MAX_DISAGREEMENT, OPSET, ExportOptions, Source, resolve_source
from .quantize import INT8_MODE, quantize_int8
from .torch import TorchBackend

FP32_FILE = "onnx/model.onnx"
INT8_FILE = "onnx/model_int8.onnx"
# traced with a batch of two texts of different lengths (padding included)
TRACE_TEXTS = ("My name is Sarah Jessica Parker.", "She works at Google in New York since 2019 .")


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


def component_predictions(
    source: Source, texts: Sequence[str], *, model: Optional[str] = None, onnx_file: Optional[str] = None,
    label: str = "torch", batch_size: int = 32,
) -> Dict[str, List[Dict[Hashable, float]]]:
    """Run the component (`source.factory`, each run of its kind's `ExportCheck`) over
    `texts` with backend "torch" on `source.model`, or with backend "onnx" on
    `onnx_file` inside `model`; a progress bar per run on stderr."""
    import spacy
    from tqdm import tqdm

    runs = {}
    check = source.kind.export
    if check is None:
        raise SpacyHFNerError(
            Errors.E163.format(
                path=source.model, problem=f"runs as {source.factory}, whose kind says no export check",
                fix=f"give `export=ExportCheck(...)` to the {source.factory} kind",
            )
        )
    for run, settings in check.runs.items():
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
            runs[run] = [check.predictions(doc) for doc in bar]
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
    """Export, optionally quantize, check against torch; returns the exit
    status (1 with the coded error on stderr for options or a source that
    cannot be exported)."""
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        print("export_onnx needs onnx and onnxruntime: pip install '.[onnx]' in the spacy-hf-ner clone", file=sys.stderr)
        return 2
    try:
        options = ExportOptions.from_args(args)
        return export_and_check(options)
    except SpacyHFNerError as e:
        print(str(e), file=sys.stderr)
        return 1


def export_and_check(options: ExportOptions) -> int:
    """The command's steps for checked options; returns the exit status."""
    steps = 4 if options.quantize else 3
    stage(1, steps, f"loading {options.model}")
    source = resolve_source(options.model, options.component)
    model, tokenizer = load_torch(source)
    output = options.output
    fp32 = output / FP32_FILE
    stage(2, steps, f"exporting float32 graph to {fp32}")
    export(model, tokenizer, fp32, source.task, options.opset)
    save_config_and_tokenizer(model, tokenizer, output)
    texts = varied_texts(options.check_texts)
    files = [FP32_FILE]
    if options.quantize == "int8":
        int8 = output / INT8_FILE
        stage(3, steps, f"quantizing to int8 ({options.int8_mode}) to {int8}")
        quantize_int8(fp32, int8, options.int8_mode)
        files.append(INT8_FILE)
    stage(steps, steps, f"checking {', '.join(files)} against torch on {len(texts)} varied texts")
    diffs = dict(zip(files, logit_diffs(model, tokenizer, [output / rel for rel in files], texts)))
    if diffs[FP32_FILE] > options.atol:
        print(Errors.E160.format(path=fp32, diff=diffs[FP32_FILE], atol=options.atol), file=sys.stderr)
        return 1
    rows = check_agreement(source, output, files, texts)
    print(f"{output}: {source.factory} with backend 'onnx' vs 'torch' on {len(texts)} varied texts")
    for rel, diff in diffs.items():
        print(f"  {rel}: {(output / rel).stat().st_size / 2**20:.1f} MiB, max abs logit diff {diff:.2e}")
    print(summary_table(rows))
    warn_disagreement(rows, options.max_disagreement)
    if options.quantize == "int8":
        print(f"int8 ({options.int8_mode}): select it with `file = \"{INT8_FILE}\"` in the backend block")
    print(f"use it with: model = \"{output}\" and [components.NAME.backend] @hf_backends = \"{ONNX}\"")
    return 0


def warn_disagreement(rows: Sequence[Tuple[str, str, Agreement]], tolerance: float) -> None:
    """W160 for each file and run whose F1 against torch is below 1 - `tolerance`."""
    floor = 1.0 - tolerance
    for rel, run_name, result in rows:
        if result.f1 < floor:
            warnings.warn(
                Warnings.W160.format(
                    file=rel, run=run_name, f1=result.f1, texts=result.texts, differing=result.texts_differing,
                    diff=result.max_score_diff, tolerance=tolerance, floor=floor,
                ),
                HFNerWarning,
            )


if __name__ == "__main__":
    sys.exit(main())
