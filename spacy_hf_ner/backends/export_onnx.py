"""Export a transformers token or sequence classifier to ONNX for backend "onnx".

    spacy-hf-ner export-onnx MODEL_OR_PIPELINE OUTPUT_DIR [--quantize int8] [--component NAME]

MODEL_OR_PIPELINE is a model directory or hub id, a bundled model
("spacy-hf-ner:en_conll03"), or a saved spaCy pipeline (its hf_ner, hf_tagger or
hf_textcat component; `--component` picks one when there are several).
OUTPUT_DIR gets `onnx/model.onnx` (float32, dynamic batch and sequence axes),
the model's config and its tokenizer, so it works as `model` of a component with
`backend = "onnx"`. `--quantize int8` adds `onnx/model_int8.onnx` (dynamic
int8 quantization of the weights, per channel), selected with `onnx_file`.

Both exports are checked against the torch model on texts other than the ones
traced: the largest absolute logit difference is printed, and a float32 export
that differs by more than `--atol` fails the command.

The graph is traced with torch's TorchScript exporter (`dynamo=False`): it needs
no package beyond torch and onnx, and exports BERT-family encoders
exactly (differences ~1e-6).
"""
import argparse
import inspect
import sys
import warnings
from pathlib import Path
from typing import Any, Dict, List, NamedTuple, Optional, Sequence

import numpy as np

from ..sources import quiet_transformers, resolve_model, task_of

FACTORIES = {"hf_ner": "token", "hf_tagger": "token", "hf_textcat": "sequence"}
FP32_FILE = "onnx/model.onnx"
INT8_FILE = "onnx/model_int8.onnx"
OPSET = 17
# traced with a batch of two texts of different lengths (padding included)
TRACE_TEXTS = ("My name is Sarah Jessica Parker.", "She works at Google in New York since 2019 .")
CHECK_TEXTS = (
    "Angela Merkel met Emmanuel Macron in Paris on Tuesday.",
    "EU rejects German call to boycott British lamb .",
    "x",
    "The European Commission said on Thursday it disagreed with German advice to "
    "consumers to shun British lamb until scientists determine whether mad cow "
    "disease can be transmitted to sheep.",
)


class Source(NamedTuple):
    """What to export: a transformers model (directory or hub id) and its task."""

    model: str
    task: str  # "token" or "sequence"


class Check(NamedTuple):
    """How an ONNX export compares with the torch model on `CHECK_TEXTS`."""

    max_abs_diff: float  # largest |logit difference| over real (unpadded) tokens
    argmax_agreement: float  # share of tokens (or texts) with the same top label


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
        return Source(model, task)
    raise SystemExit(
        f"{model_or_pipeline} is a {'/'.join(architectures) or 'model of unknown architecture'}, "
        "not a *ForTokenClassification or *ForSequenceClassification model"
    )


def _pipeline_source(path: Path, component: Optional[str]) -> Source:
    from spacy.util import load_config

    components = load_config(path / "config.cfg", interpolate=False).get("components", {})
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
    if cfg.get("backend", "torch") != "torch":
        raise SystemExit(f"component '{name}' already runs backend '{cfg['backend']}'; export a torch component")
    model_dir = path / name / "model"
    if not (model_dir / "config.json").is_file():
        raise SystemExit(f"{model_dir} holds no saved model (config.json): save the pipeline with nlp.to_disk")
    return Source(str(model_dir), FACTORIES[cfg["factory"]])


def load_torch(source: Source) -> Any:
    """The float32 torch model and fast tokenizer, in eval mode on the CPU."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoModelForTokenClassification, AutoTokenizer

    auto = AutoModelForTokenClassification if source.task == "token" else AutoModelForSequenceClassification
    with quiet_transformers():
        model = auto.from_pretrained(source.model, dtype=torch.float32, attn_implementation="eager")
        tokenizer = AutoTokenizer.from_pretrained(source.model)
    return model.eval(), tokenizer


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


def quantize_int8(fp32: Path, int8: Path, per_channel: bool = True) -> None:
    """Dynamic int8 quantization of the weights of MatMul/Gemm (activations are
    quantized on the fly), as `onnxruntime.quantization.quantize_dynamic`."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(fp32), str(int8), weight_type=QuantType.QInt8, per_channel=per_channel)


def check(model: Any, tokenizer: Any, path: Path, texts: Sequence[str] = CHECK_TEXTS) -> Check:
    """Compare an ONNX file with the torch model on `texts` (one padded batch)."""
    import onnxruntime
    import torch

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    feeds = encode(tokenizer, texts, names)
    got = session.run(None, feeds)[0]
    with torch.inference_mode():
        want = model(**{k: torch.from_numpy(v) for k, v in feeds.items()}).logits.float().numpy()
    if got.ndim == 3:  # token classification: real tokens only
        real = feeds["attention_mask"].astype(bool)
        got, want = got[real], want[real]
    return Check(float(np.abs(got - want).max()), float((got.argmax(-1) == want.argmax(-1)).mean()))


def save_config_and_tokenizer(model: Any, tokenizer: Any, output: Path) -> None:
    with quiet_transformers():
        model.config.save_pretrained(output)
        tokenizer.save_pretrained(output)


def add_arguments(ap: argparse.ArgumentParser) -> None:
    """The command's arguments (also `spacy-hf-ner export-onnx`)."""
    ap.add_argument("model", help="model dir, hub id, spacy-hf-ner:NAME, or a saved spaCy pipeline")
    ap.add_argument("output", type=Path, help="directory to write (a model for backend 'onnx')")
    ap.add_argument("--quantize", choices=["int8"], help="also write an int8 export")
    ap.add_argument("--component", help="the hf_* component of a pipeline to export")
    ap.add_argument("--opset", type=int, default=OPSET, help=f"ONNX opset (default {OPSET})")
    ap.add_argument(
        "--per-tensor", action="store_true", help="int8 with one scale per tensor instead of per channel"
    )
    ap.add_argument("--atol", type=float, default=1e-3, help="largest logit difference a float32 export may have")


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(
        prog="spacy-hf-ner export-onnx", description=__doc__.splitlines()[0]
    )
    add_arguments(ap)
    return run(ap.parse_args(argv))


def run(args: argparse.Namespace) -> int:
    """Export, check against torch, optionally quantize; returns the exit status."""
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        print("export_onnx needs onnx and onnxruntime: pip install spacy-hf-ner[onnx]", file=sys.stderr)
        return 2
    source = resolve_source(args.model, args.component)
    model, tokenizer = load_torch(source)
    output: Path = args.output
    fp32 = output / FP32_FILE
    export(model, tokenizer, fp32, source.task, args.opset)
    save_config_and_tokenizer(model, tokenizer, output)
    result = check(model, tokenizer, fp32)
    print(
        f"{fp32}: {fp32.stat().st_size / 2**20:.1f} MiB, max abs logit diff vs torch "
        f"{result.max_abs_diff:.2e}, argmax agreement {result.argmax_agreement:.4f}"
    )
    if result.max_abs_diff > args.atol:
        print(f"float32 export differs from torch by more than --atol {args.atol}", file=sys.stderr)
        return 1
    if args.quantize == "int8":
        int8 = output / INT8_FILE
        quantize_int8(fp32, int8, per_channel=not args.per_tensor)
        result = check(model, tokenizer, int8)
        print(
            f"{int8}: {int8.stat().st_size / 2**20:.1f} MiB, max abs logit diff vs torch "
            f"{result.max_abs_diff:.2e}, argmax agreement {result.argmax_agreement:.4f} "
            f"(select it with onnx_file = \"{INT8_FILE}\")"
        )
    print(f"use it with: model = \"{output}\", backend = \"onnx\"")
    return 0


if __name__ == "__main__":
    sys.exit(main())
