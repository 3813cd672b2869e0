"""The `spacy-hf-ner` command line (also `python -m spacy_hf_ner`).

Each subcommand registers its arguments in `COMMANDS` and imports what it needs
only when it runs, so that one command's optional dependencies never break
another:

    python -m spacy_hf_ner serve PIPELINE_OR_MODEL --host 127.0.0.1 --port 8000
    python -m spacy_hf_ner export-onnx MODEL_OR_PIPELINE OUTPUT_DIR --quantize int8
    python -m spacy_hf_ner annotate corpus.jsonl out.parquet --engine ray --workers 4
    spacy-hf-ner init-config CONFIG --component hf_ner --model BASE_MODEL --train T --dev D
    spacy-hf-ner displacy PIPELINE DATA.spacy OUTPUT_DIR [--limit 25] [--errors-only]
    spacy-hf-ner package PIPELINE_DIR OUTPUT_DIR --name NAME --version X.Y.Z
    spacy-hf-ner --version
"""
import argparse
import sys
import warnings
from importlib import import_module
from typing import Any, Callable, Dict, List, Optional, Tuple, Type


def _add_serve(parser: argparse.ArgumentParser) -> None:
    from .serve.config import ServeConfig

    DEFAULTS = {name: field.default for name, field in ServeConfig.model_fields.items()}

    parser.add_argument(
        "pipeline",
        metavar="PIPELINE_OR_MODEL",
        help="a spaCy pipeline folder or package with hf_ner/hf_textcat, or a transformers token or "
        "sequence classifier (hub id, folder, or spacy-hf-ner:en_conll03) served in a blank pipeline",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default: %(default)s)")
    parser.add_argument("--port", type=int, default=8000, help="port (default: %(default)s)")
    parser.add_argument("--lang", default="xx", help="language of the blank pipeline around a bare model (default: %(default)s)")
    parser.add_argument("--decoding", default=None, help="hf_ner `decoding` of a bare model: auto, greedy or viterbi (default: the component's)")
    parser.add_argument("--threshold", type=float, default=None, help="hf_ner `threshold` of a bare model: entities scoring below it are not written to doc.ents (default: the component's)")
    parser.add_argument("--label-map", default=None, help='hf_ner `label_map` of a bare model: JSON such as \'{"PER": "PERSON"}\', or the path of a JSON file (default: none)')
    parser.add_argument("--max-batch", type=int, default=DEFAULTS["max_batch"], help="texts per batched model call; 1 = no batching (default: %(default)s)")
    parser.add_argument("--max-batch-tokens", type=int, default=DEFAULTS["max_batch_tokens"], help="model tokens per batched call: large requests are split at this size and share calls with others (default: %(default)s)")
    parser.add_argument("--max-wait-ms", type=float, default=DEFAULTS["max_wait_ms"], help="wait for more requests after the first (default: %(default)s)")
    parser.add_argument("--max-queue", type=int, default=DEFAULTS["max_queue"], help="requests waiting before 503 (default: %(default)s)")
    parser.add_argument("--max-inputs", type=int, default=DEFAULTS["max_inputs"], help="texts per request, 422 above (default: %(default)s)")
    parser.add_argument("--max-windows-per-request", type=int, default=DEFAULTS["max_windows_per_request"], help="model windows one request may need (all inputs, overlaps included), 413 above (default: %(default)s)")
    parser.add_argument("--max-windows-per-input", type=int, default=DEFAULTS["max_windows_per_input"], help="model windows one input may need, 413 above; one input is one model call, so this bounds how long others wait behind it (default: %(default)s)")
    parser.add_argument("--max-stride", type=int, default=DEFAULTS["max_stride"], help="largest parameters.stride a request may ask for, 422 above (default: half the model's window)")
    parser.add_argument("--max-body-bytes", type=int, default=DEFAULTS["max_body_bytes"], help="request body limit, 413 above (default: %(default)s)")
    parser.add_argument("--timeout-s", type=float, default=DEFAULTS["timeout_s"], help="per-request deadline, 504 after (default: %(default)s)")
    parser.add_argument("--read-timeout-s", type=float, default=DEFAULTS["read_timeout_s"], help="a request's line, headers and body must arrive within it, else the connection is closed (default: %(default)s)")
    parser.add_argument("--keep-alive-s", type=float, default=DEFAULTS["keep_alive_s"], help="idle keep-alive connections are closed after it (default: %(default)s)")
    parser.add_argument("--max-header-bytes", type=int, default=DEFAULTS["max_header_bytes"], help="largest request line and headers (default: %(default)s)")
    parser.add_argument("--limit-concurrency", type=int, default=DEFAULTS["limit_concurrency"], help="open connections and requests in progress, 503 above (default: %(default)s)")
    parser.add_argument(
        "--allowed-hosts",
        default=None,
        help="comma-separated names the Host header may carry, others get 400 (DNS rebinding defence); "
        "'*' accepts any (default: localhost,127.0.0.1,[::1] on a loopback --host, the address itself "
        "on another, any with a warning on 0.0.0.0/::)",
    )
    parser.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])


def _run_serve(args: argparse.Namespace) -> int:
    try:
        from .serve.app import serve
        from .serve.config import ServeConfig, allowed_hosts_for
    except ImportError as e:
        print(
            f"spacy-hf-ner serve needs the serve extra ({e}). Fix: pip install '.[serve]' in the "
            "spacy-hf-ner clone, or pip install fastapi 'uvicorn[standard]'",
            file=sys.stderr,
        )
        return 1
    try:
        values = {name: getattr(args, name) for name in ServeConfig.model_fields}
        values["allowed_hosts"] = allowed_hosts_for(args.host, args.allowed_hosts)
        config = ServeConfig(**values)
        settings = _component_settings(args)
        serve(
            args.pipeline,
            host=args.host,
            port=args.port,
            config=config,
            lang=args.lang,
            log_level=args.log_level,
            settings=settings,
        )
    except ValueError as e:
        print(str(e), file=sys.stderr)
        return 1
    return 0


def _component_settings(args: argparse.Namespace) -> Dict[str, Any]:
    """The component settings given on the command line (--decoding,
    --threshold, --label-map), validated by the component when it is made."""
    import json
    from pathlib import Path

    from .errors import Errors, SpacyHFNerError

    settings: Dict[str, Any] = {}
    if args.decoding is not None:
        settings["decoding"] = args.decoding
    if args.threshold is not None:
        settings["threshold"] = args.threshold
    if args.label_map is not None:
        source = args.label_map
        try:
            if not source.lstrip().startswith("{") and Path(source).is_file():
                source = Path(source).read_text(encoding="utf8")
            settings["label_map"] = json.loads(source)
        except (OSError, ValueError) as e:
            raise SpacyHFNerError(Errors.E124.format(value=args.label_map, error=e)) from None
    if settings:  # the component's own checks and coded errors (E009), before loading anything
        from .ner import HFNer
        from .settings import validate_keys

        validate_keys(HFNer.Settings, "hf_ner", **settings)
    return settings


# a command's two parts: add its arguments to its parser, and run it (the exit status)
AddArguments = Callable[[argparse.ArgumentParser], None]
Run = Callable[[argparse.Namespace], int]


def _lazy(module: str) -> Tuple[AddArguments, Run]:
    """The parts of the command whose module (relative to this package)
    defines `add_arguments(parser)` and `run(args)`: the module is imported
    only when a part is called."""

    def add_arguments(parser: argparse.ArgumentParser) -> None:
        import_module(module, __package__).add_arguments(parser)

    def run(args: argparse.Namespace) -> int:
        return import_module(module, __package__).run(args)

    return add_arguments, run


# name -> (help, add arguments, run)
COMMANDS: Dict[str, Tuple[str, AddArguments, Run]] = {
    "serve": ("serve a pipeline over HTTP (Inference API compatible, displaCy page)", _add_serve, _run_serve),
    "export-onnx": (
        "export a token/sequence classifier (or a pipeline's hf_* component) to ONNX, optionally int8",
        *_lazy(".backends.export_onnx"),
    ),
    "init-config": (
        "write a spacy train config that fine-tunes an encoder as hf_ner, hf_tagger or hf_textcat "
        "(warm-up + linear decay)",
        *_lazy(".init_config"),
    ),
    "displacy": (
        "render gold vs predicted entities of an evaluation set as HTML (spacy evaluate "
        "--displacy-path renders none for hf_ner)",
        *_lazy(".displacy"),
    ),
    "package": (
        "spacy package plus this plugin's wheel in the same dist folder: pip install --find-links DIST PIPELINE",
        *_lazy(".package"),
    ),
    "annotate": (
        "annotate a corpus (JSONL, Parquet, CSV, .txt folder) into one row per document, locally or on Ray",
        *_lazy(".bulk.cli"),
    ),
}


def plain_warning(message: Any, category: Type[Warning], filename: str, lineno: int, line: Optional[str] = None) -> str:
    """How the command line prints a warning: the plugin's own as
    `HFNerWarning: [Wnnn] ...`, the code and the fix, as the docs show them
    (not the file, line number and source line of the `warnings.warn` call);
    any other warning as Python prints it."""
    from .exceptions import HFNerWarning

    if issubclass(category, HFNerWarning):
        return f"{category.__name__}: {message}\n"
    return PYTHON_FORMATWARNING(message, category, filename, lineno, line)


PYTHON_FORMATWARNING = warnings.formatwarning


def main(argv: Optional[List[str]] = None) -> int:
    """Run a subcommand; returns the exit status."""
    from . import __version__

    parser = argparse.ArgumentParser(prog="spacy-hf-ner", description="spacy-hf-ner command line")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (help_text, add_arguments, run) in COMMANDS.items():
        sub = commands.add_parser(name, help=help_text, description=help_text)
        add_arguments(sub)
        sub.set_defaults(run=run)
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    formatwarning, warnings.formatwarning = warnings.formatwarning, plain_warning
    try:
        return args.run(args)
    finally:
        warnings.formatwarning = formatwarning


if __name__ == "__main__":
    sys.exit(main())
