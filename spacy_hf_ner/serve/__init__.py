"""The HTTP server (`spacy-hf-ner serve`): the Hugging Face Inference API, a
spaCy Doc endpoint and a displaCy page, over one batched model worker.

    config.py      limits, batching and allowed hosts (no web framework imported)
    batcher.py     fair dynamic batching for one model worker
    schemas.py     request and response bodies
    formats.py     Doc JSON, displaCy HTML (the Inference API records: ../payloads.py)
    worker.py      what the worker runs for each kind of request
    service.py     what the routes share: worker, batcher, limits, `run`
    middleware.py  ASGI middleware: body limit, Host check, security headers
    connection.py  uvicorn with read deadlines and connection limits
    app.py         the FastAPI app and `serve`

Needs the `serve` extra: `pip install '.[serve]'` in the clone (or the wheel with `[serve]`). `create_app` and
`serve` are imported from `app` on first use, so that `ServeConfig` is
available without FastAPI.
"""
from typing import Any

from .config import ServeConfig

__all__ = ["ServeConfig", "create_app", "serve"]


def __getattr__(name: str) -> Any:
    if name in ("create_app", "serve"):
        from . import app

        return getattr(app, name)
    raise AttributeError(name)
