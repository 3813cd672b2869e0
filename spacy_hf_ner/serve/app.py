"""The server: FastAPI app over a pipeline's `hf_ner` / `hf_textcat`
components, speaking the Hugging Face Inference API, spaCy's Doc JSON and a
displaCy page.

    spacy-hf-ner serve PIPELINE_OR_MODEL --host 127.0.0.1 --port 8000

Requests are answered by one model worker fed by a fair dynamic batcher
(`batcher.py`). The queue is bounded (503 when full), bodies are size-limited
(413) and validated (422, never a 500 for bad input), a request's model work is
counted before it is queued and capped (413 over --max-windows-per-request or
--max-windows-per-input, 422
for a stride over --max-stride), and every request has a deadline (504); the
work left of a request past its deadline or whose client disconnected is
dropped. Every answer carries security headers, and the Host header is checked
(`middleware.py`); uvicorn runs with read deadlines (`connection.py`).
"""
import asyncio
import base64
import hashlib
import html
import json
import re
import time
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Callable, Dict, Hashable, List, Optional, Union

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from spacy.language import Language
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import Errors
from ..ner import HFNer
from ..sources import load_pipeline
from .batcher import Batcher, QueueFull
from .config import ServeConfig
from .formats import render_entities
from .middleware import BodyLimit, HostCheck, SecurityHeaders
from .schemas import (
    ERRORS,
    DocJSON,
    EntityOut,
    ErrorResponse,
    Health,
    LabelScore,
    RenderResponse,
    TextPair,
    TokenClassificationParameters,
    request_models,
    validation_message,
)
from .worker import PipelineWorker, freeze, model_aliases, public_name

PAGE = Path(__file__).parent / "page.html"


def create_app(nlp: Language, config: Optional[ServeConfig] = None, *, title: str = "spacy-hf-ner") -> FastAPI:
    """A FastAPI app serving the pipeline's `hf_ner` / `hf_textcat` components.

    nlp (Language): a pipeline with at least one `hf_ner` or `hf_textcat`.
    config (Optional[ServeConfig]): limits and batching; default ServeConfig().
    title (str): the API's title in the OpenAPI spec and on the page.
    RETURNS (FastAPI): the app; its models load and warm up on startup.
    """
    config = config or ServeConfig()
    runner = PipelineWorker(nlp, max_stride=config.max_stride)
    components = runner.components
    aliases = model_aliases(components)
    batcher = Batcher(
        runner,
        max_batch=config.max_batch,
        max_wait_ms=config.max_wait_ms,
        max_queue=config.max_queue,
        max_batch_tokens=config.max_batch_tokens,
    )
    models = request_models(config.max_inputs)
    state = {"ready": False}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> Any:
        await asyncio.get_running_loop().run_in_executor(None, runner.warm_up)
        batcher.start()
        state["ready"] = True
        try:
            yield
        finally:
            state["ready"] = False
            await batcher.stop()  # every queued request is answered first

    app = FastAPI(
        title=title,
        description="Hugging Face Inference API compatible token and text classification, "
        "spaCy Doc JSON and a displaCy page, served by spacy-hf-ner.",
        version=_version(),
        lifespan=lifespan,
    )
    # the last added runs first: security headers on every answer, then the
    # Host check, then the body limit
    app.add_middleware(BodyLimit, max_bytes=config.max_body_bytes)
    app.add_middleware(HostCheck, allowed=config.hosts)
    app.add_middleware(SecurityHeaders)
    app.state.batcher = batcher
    app.state.config = config

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"error": validation_message(exc.errors())}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers)

    async def run(request: Request, key: Hashable, items: List[Any]) -> List[Any]:
        """Count the request's model work (413 over the limit), queue it, and
        wait for the answer, the deadline (504) or the client leaving, whichever
        comes first; in the last two cases what is left of the work is dropped."""
        loop = asyncio.get_running_loop()
        try:
            costs = await loop.run_in_executor(None, runner.cost, key, items)
        except ValueError as e:  # a stride over the server's limit, or one the model cannot take
            raise StarletteHTTPException(422, f"invalid parameters: {e}")
        windows = sum(c.windows for c in costs)
        engine = components[key[1] if key[0] in ("token", "text") else default].engine  # type: ignore[index]
        largest = max(range(len(costs)), key=lambda i: costs[i].windows)
        if costs[largest].windows > config.max_windows_per_input:
            raise StarletteHTTPException(
                413,
                Errors.E125.format(
                    index=largest,
                    windows=costs[largest].windows,
                    window=engine.window,
                    limit=config.max_windows_per_input,
                ),
            )
        if windows > config.max_windows_per_request:
            raise StarletteHTTPException(
                413,
                Errors.E122.format(
                    windows=windows,
                    texts=len(items),
                    largest=costs[largest].windows,
                    window=engine.window,
                    limit=config.max_windows_per_request,
                ),
            )
        answer = asyncio.ensure_future(batcher.submit(key, items, config.timeout_s, [c.tokens for c in costs]))
        gone = asyncio.ensure_future(_disconnected(request))
        await asyncio.wait({answer, gone}, return_when=asyncio.FIRST_COMPLETED)
        gone.cancel()
        if not answer.done():  # the client went away: drop its work
            answer.cancel()
            batcher.stats.abandoned += 1
            raise StarletteHTTPException(499, "the client closed the connection")
        try:
            return answer.result()
        except QueueFull as e:
            raise StarletteHTTPException(503, f"server busy: {e}; retry later", headers={"Retry-After": "1"})
        except asyncio.TimeoutError:
            raise StarletteHTTPException(504, f"the request was not answered within {config.timeout_s} s (--timeout-s)")
        except ValueError as e:  # parameters the model cannot take
            raise StarletteHTTPException(422, f"invalid parameters: {e}")

    TokenRequest, TextRequest, DocRequest, RenderRequest = (
        models["token"],
        models["text"],
        models["doc"],
        models["render"],
    )

    def token_endpoint(component: str) -> Callable:
        async def classify_tokens(body: TokenRequest, request: Request) -> Any:  # type: ignore[valid-type]
            single = isinstance(body.inputs, str)
            texts = [body.inputs] if single else list(body.inputs)
            found = await run(request, ("token", component, freeze(body.parameters)), texts)
            return found[0] if single else found

        return classify_tokens

    def text_endpoint(component: str) -> Callable:
        async def classify_text(body: TextRequest, request: Request) -> Any:  # type: ignore[valid-type]
            single = not isinstance(body.inputs, list)
            items = [body.inputs] if single else list(body.inputs)
            texts = [(i.text, i.text_pair) if isinstance(i, TextPair) else i for i in items]
            found = await run(request, ("text", component, freeze(body.parameters)), texts)
            return found[0] if single else found

        return classify_text

    def add_model_route(path: str, component: str, name: str) -> None:
        pipe = components[component]
        if isinstance(pipe, HFNer):
            endpoint = token_endpoint(component)
            response: Any = Union[List[EntityOut], List[List[EntityOut]]]
            summary = f"Token classification with `{component}` (Inference API)"
        else:
            endpoint = text_endpoint(component)
            response = Union[List[LabelScore], List[List[LabelScore]]]
            summary = f"Text classification with `{component}` (Inference API)"
        app.post(
            path,
            response_model=response,
            response_model_exclude_none=True,
            responses=ERRORS,  # type: ignore[arg-type]
            summary=summary,
            operation_id=name,
            tags=["Inference API"],
        )(endpoint)

    default = next(iter(components))
    add_model_route("/", default, "predict_default")
    for i, (alias, component) in enumerate(aliases.items()):
        add_model_route(f"/models/{alias}", component, f"predict_{i}_{component}")

    @app.post("/models/{name:path}", include_in_schema=False)
    async def unknown_model(name: str) -> None:
        raise StarletteHTTPException(404, f"no model named {name!r}; this server has: {', '.join(aliases)}")

    @app.post("/doc", response_model=Union[DocJSON, List[DocJSON]], responses=ERRORS, tags=["spaCy"])  # type: ignore[arg-type]
    async def doc(body: DocRequest, request: Request) -> Any:  # type: ignore[valid-type]
        """The whole pipeline's Doc as JSON: entities with scores, tokens with
        PoS, tag, dependency and head, sentences, cats."""
        single = isinstance(body.inputs, str)
        texts = [body.inputs] if single else list(body.inputs)
        docs = await run(request, ("doc",), texts)
        return docs[0] if single else docs

    @app.post("/render", response_model=RenderResponse, responses=ERRORS, tags=["page"])  # type: ignore[arg-type]
    async def render(body: RenderRequest, request: Request) -> Any:  # type: ignore[valid-type]
        """The page's view of one text, `{"inputs": text}` (`{"text": ...}` is
        the deprecated form): its entities with scores (and as displaCy HTML),
        the categories, and the dependency parse as SVG when the pipeline has
        one."""
        if body.model is not None and body.model not in aliases:
            raise StarletteHTTPException(422, f"model: no model named {body.model!r}; use one of {', '.join(aliases)}")
        component = aliases[body.model] if body.model is not None else default
        text = body.inputs
        data, dep_html = (await run(request, ("render",), [text]))[0]
        entities = data["ents"]
        if body.aggregation_strategy is not None and isinstance(components[component], HFNer):
            params = TokenClassificationParameters(aggregation_strategy=body.aggregation_strategy)
            found = (await run(request, ("token", component, freeze(params)), [text]))[0]
            entities = [
                {
                    "start": e["start"],
                    "end": e["end"],
                    "label": e.get("entity_group", e.get("entity")),
                    "text": text[e["start"] : e["end"]],
                    "score": e["score"],
                }
                for e in found
            ]
        return {
            "ents_html": render_entities(text, entities),
            "dep_html": dep_html,
            "cats": data["cats"],
            "entities": entities,
        }

    @app.get("/health", response_model=Health, tags=["operations"])
    async def health() -> Any:
        """Liveness, the served models and the batching statistics."""
        return {
            "status": "ok",
            "models": {alias: public_name(components[c].engine.model_name) for alias, c in aliases.items()},
            "stats": _stats(batcher),
        }

    @app.get("/ready", responses={503: {"model": ErrorResponse}}, tags=["operations"])
    async def ready() -> Any:
        """200 once the models are loaded and the worker runs; 503 while starting
        or shutting down."""
        if not (state["ready"] and batcher.running and batcher.accepting):
            raise StarletteHTTPException(503, "not ready")
        return {"status": "ready"}

    @app.get("/stats", tags=["operations"])
    async def stats() -> Dict[str, Any]:
        """Batching statistics: requests, inputs, batched model calls."""
        return _stats(batcher)

    served = [
        {"name": alias, "task": "token" if isinstance(components[c], HFNer) else "text"} for alias, c in aliases.items()
    ]
    page_html, page_csp = _page(title, served)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page() -> HTMLResponse:
        return HTMLResponse(page_html, headers={"Content-Security-Policy": page_csp})

    return app


def _page(title: str, models: List[Dict[str, str]]) -> "tuple[str, str]":
    """The page's HTML and its Content-Security-Policy: only its own inline
    script runs (by hash), it talks only to this server, and no other site
    may frame it. Inline styles are allowed (displaCy's markup uses them)."""
    # "<" in the JSON is escaped so that a model name cannot close the script
    models_json = json.dumps(models).replace("<", "\\u003c")
    from spacy.displacy.render import EntityRenderer

    # displaCy's palette as its renderer builds it: spaCy's defaults plus every
    # `spacy_displacy_colors` entry point (ours colours PER and MISC)
    colors_json = json.dumps(EntityRenderer({}).colors).replace("<", "\\u003c")
    text = (
        PAGE.read_text(encoding="utf8")
        .replace("{{TITLE}}", html.escape(title))
        .replace("{{MODELS}}", models_json)
        .replace("{{COLORS}}", colors_json)
    )
    hashes = [
        "'sha256-" + base64.b64encode(hashlib.sha256(script.encode("utf8")).digest()).decode() + "'"
        for script in re.findall(r"<script>(.*?)</script>", text, flags=re.S)
    ]
    csp = (
        f"default-src 'none'; script-src {' '.join(hashes)}; style-src 'unsafe-inline'; img-src data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )
    return text, csp


async def _disconnected(request: Request) -> None:
    """Return when the client closes the connection (the body is read by
    then, so the next ASGI message is the disconnect)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


def _stats(batcher: Batcher) -> Dict[str, Any]:
    s = batcher.stats
    return {
        "requests": s.requests,
        "inputs": s.inputs,
        "batches": s.batches,
        "largest_batch": s.largest_batch,
        "rejected": s.rejected,
        "timed_out": s.timed_out,
        "abandoned": s.abandoned,
        "dropped_inputs": s.dropped,
        "queued": batcher.queued,
        "max_batch": batcher.max_batch,
    }


def _version() -> str:
    from .. import __version__

    return __version__


def serve(
    name: str,
    *,
    host: str,
    port: int,
    config: ServeConfig,
    lang: str = "xx",
    log_level: str = "info",
    settings: Optional[Dict[str, Any]] = None,
) -> None:
    """Load `name` (see `load_pipeline`; `settings` configure the component
    around a bare model, e.g. {"threshold": 0.5}) and serve it with uvicorn
    until SIGINT/SIGTERM; in-flight and queued requests are answered before it
    exits."""
    import uvicorn

    from .connection import uvicorn_config

    started = time.perf_counter()
    nlp = load_pipeline(name, lang=lang, config=settings or None)
    app = create_app(nlp, config, title=f"spacy-hf-ner: {public_name(name)}")
    print(f"serving {name} ({', '.join(nlp.pipe_names)}), loaded in {time.perf_counter() - started:.1f} s", flush=True)
    uvicorn.Server(uvicorn_config(app, host=host, port=port, config=config, log_level=log_level)).run()
