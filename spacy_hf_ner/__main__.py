"""The `spacy-hf-ner` command line (also `python -m spacy_hf_ner`).

Each subcommand registers its arguments in `COMMANDS` and imports what it needs
only when it runs, so that one command's optional dependencies never break
another:

    python -m spacy_hf_ner serve PIPELINE_OR_MODEL --host 127.0.0.1 --port 8000
    python -m spacy_hf_ner export-onnx MODEL_OR_PIPELINE OUTPUT_DIR --quantize int8
    spacy-hf-ner init-config CONFIG --component hf_ner --model BASE_MODEL --train T --dev D
    spacy-hf-ner displacy PIPELINE DATA.spacy OUTPUT_DIR [--limit 25] [--errors-only]
    spacy-hf-ner --version
"""
import argparse
import sys
from typing import Callable, Dict, List, Optional, Tuple


def _add_serve(parser: argparse.ArgumentParser) -> None:
    from dataclasses import fields

    from .serve.config import ServeConfig

    DEFAULTS = {f.name: f.default for f in fields(ServeConfig)}

    parser.add_argument(
        "pipeline",
        metavar="PIPELINE_OR_MODEL",
        help="a spaCy pipeline folder or package with hf_ner/hf_textcat, or a transformers token or "
        "sequence classifier (hub id, folder, or spacy-hf-ner:en_conll03) served in a blank pipeline",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default: %(default)s)")
    parser.add_argument("--port", type=int, default=8000, help="port (default: %(default)s)")
    parser.add_argument("--lang", default="xx", help="language of the blank pipeline around a bare model (default: %(default)s)")
    parser.add_argument("--max-batch", type=int, default=DEFAULTS["max_batch"], help="texts per batched model call; 1 = no batching (default: %(default)s)")
    parser.add_argument("--max-wait-ms", type=float, default=DEFAULTS["max_wait_ms"], help="wait for more requests after the first (default: %(default)s)")
    parser.add_argument("--max-queue", type=int, default=DEFAULTS["max_queue"], help="requests waiting before 503 (default: %(default)s)")
    parser.add_argument("--max-inputs", type=int, default=DEFAULTS["max_inputs"], help="texts per request (default: %(default)s)")
    parser.add_argument("--max-body-bytes", type=int, default=DEFAULTS["max_body_bytes"], help="request body limit, 413 above (default: %(default)s)")
    parser.add_argument("--timeout-s", type=float, default=DEFAULTS["timeout_s"], help="per-request deadline, 504 after (default: %(default)s)")
    parser.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])


def _run_serve(args: argparse.Namespace) -> int:
    from dataclasses import fields

    try:
        from .serve.app import serve
        from .serve.config import ServeConfig
    except ImportError as e:
        print(
            f"spacy-hf-ner serve needs the serve extra ({e}). Fix: pip install '.[serve]' in the "
            "spacy-hf-ner clone, or pip install fastapi 'uvicorn[standard]'",
            file=sys.stderr,
        )
        return 1
    try:
        config = ServeConfig(**{f.name: getattr(args, f.name) for f in fields(ServeConfig)})
        serve(args.pipeline, host=args.host, port=args.port, config=config, lang=args.lang, log_level=args.log_level)
    except ValueError as e:
        print(str(e), file=sys.stderr)
        return 1
    return 0


def _add_export_onnx(parser: argparse.ArgumentParser) -> None:
    from .backends.export_onnx import add_arguments

    add_arguments(parser)


def _run_export_onnx(args: argparse.Namespace) -> int:
    from .backends.export_onnx import run

    return run(args)


def _add_init_config(parser: argparse.ArgumentParser) -> None:
    from .init_config import add_arguments

    add_arguments(parser)


def _run_init_config(args: argparse.Namespace) -> int:
    from .init_config import run

    return run(args)


def _add_displacy(parser: argparse.ArgumentParser) -> None:
    from .displacy import add_arguments

    add_arguments(parser)


def _run_displacy(args: argparse.Namespace) -> int:
    from .displacy import run

    return run(args)


# name -> (help, add arguments, run)
COMMANDS: Dict[str, Tuple[str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]] = {
    "serve": ("serve a pipeline over HTTP (Inference API compatible, displaCy page)", _add_serve, _run_serve),
    "export-onnx": (
        "export a token/sequence classifier (or a pipeline's hf_* component) to ONNX, optionally int8",
        _add_export_onnx,
        _run_export_onnx,
    ),
    "init-config": (
        "write a spacy train config that fine-tunes an encoder as hf_ner, hf_tagger or hf_textcat "
        "(warm-up + linear decay)",
        _add_init_config,
        _run_init_config,
    ),
    "displacy": (
        "render gold vs predicted entities of an evaluation set as HTML (spacy evaluate "
        "--displacy-path renders none for hf_ner)",
        _add_displacy,
        _run_displacy,
    ),
}


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
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
