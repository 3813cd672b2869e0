"""The server: FastAPI app over a pipeline's spacy-hf-ner components
(`hf_ner`, `hf_tagger`, `hf_textcat`: each on the Inference API route its kind
names), speaking the Hugging Face Inference API, spaCy's Doc JSON and a
displaCy page. The routes share a `Service` (`service.py`).

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
import base64
import hashlib
import html
import json
import re
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Union

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from spacy.language import Language
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import Errors
from ..kinds import Route
from ..sources import load_pipeline
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
    TextClassificationParameters,
    TextPair,
    TokenClassificationParameters,
    request_models,
    validation_message,
)
from .service import Service
from .worker import freeze, public_name

PAGE = Path(__file__).parent / "page.html"
# each Inference API route: the request model's key in `request_models`, the
# parameters it takes, the response model, and the summary's words
ROUTES: Dict[str, Any] = {
    "token-classification": (
        "token", TokenClassificationParameters, Union[List[EntityOut], List[List[EntityOut]]], "Token classification",
    ),
    "text-classification": (
        "text", TextClassificationParameters, Union[List[LabelScore], List[List[LabelScore]]], "Text classification",
    ),
}


def create_app(nlp: Language, config: Optional[ServeConfig] = None, *, title: str = "spacy-hf-ner") -> FastAPI:
    """A FastAPI app serving the pipeline's spacy-hf-ner components: each on
    its kind's Inference API route (`/`, `/models/NAME`, `/pipeline/TASK`),
    the whole pipeline at `/doc`, and the page.

    nlp (Language): a pipeline with at least one `hf_ner`, `hf_tagger` or
        `hf_textcat` (or a component of another registered kind).
    config (Optional[ServeConfig]): limits and batching; default ServeConfig().
    title (str): the API's title in the OpenAPI spec and on the page.
    RETURNS (FastAPI): the app; its models load and warm up on startup.
    """
    config = config or ServeConfig()
    service = Service(nlp, config)
    app = FastAPI(
        title=title,
        description="Hugging Face Inference API compatible token and text classification, "
        "spaCy Doc JSON and a displaCy page, served by spacy-hf-ner.",
        version=_version(),
        lifespan=service.lifespan,
    )
    # the last added runs first: security headers on every answer, then the
    # Host check, then the body limit
    app.add_middleware(BodyLimit, max_bytes=config.max_body_bytes)
    app.add_middleware(HostCheck, allowed=config.hosts)
    app.add_middleware(SecurityHeaders)
    app.state.batcher = service.batcher
    app.state.config = config
    app.state.service = service
    models = request_models(config.max_inputs)
    _add_error_handlers(app, service)
    _add_model_routes(app, service, models)
    _add_pipeline_routes(app, service, models)
    _add_operation_routes(app, service)
    _add_page(app, service, title)
    return app


def _add_error_handlers(app: FastAPI, service: Service) -> None:
    """Every error as `{"error": message}`; a request with parameters of a
    task no served component has gets E126 (naming what is served)."""

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        task = _other_task(list(exc.errors()))
        if task is not None and service.for_task(task) is None:
            return JSONResponse({"error": _not_served(service, task)}, status_code=422)
        return JSONResponse({"error": validation_message(exc.errors())}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers)


def _other_task(errors: List[Dict[str, Any]]) -> Optional[str]:
    """The task whose parameter a request named where its route takes no such
    parameter (e.g. `top_k` sent to a token classifier), or None."""
    for error in errors:
        loc = tuple(error.get("loc", ()))
        if error.get("type") == "extra_forbidden" and loc[:2] == ("body", "parameters") and len(loc) == 3:
            for task, (_, parameters, _, _) in ROUTES.items():
                if loc[2] in parameters.model_fields:
                    return task
    return None


def _not_served(service: Service, task: str) -> str:
    """E126: `task` is served by no component."""
    served = sorted({r for r in map(service.route_of, service.components) if r})
    routes = f" ({', '.join(f'/pipeline/{r}' for r in served)})" if served else ""
    return Errors.E126.format(task=task, served=service.described(), routes=routes)


def _model_endpoint(service: Service, component: str, models: Dict[str, Any]) -> Callable:
    """The Inference API endpoint of `component`, for its kind's route."""
    route = service.route_of(component)
    assert route is not None, f"{component} is served on a route"
    Body = models[ROUTES[route][0]]

    async def predict(body: Body, request: Request) -> Any:  # type: ignore[valid-type]
        single = not isinstance(body.inputs, list)
        items = [body.inputs] if single else list(body.inputs)
        items = [(i.text, i.text_pair) if isinstance(i, TextPair) else i for i in items]
        found = await service.run(request, ("model", component, freeze(body.parameters)), items)
        return found[0] if single else found

    return predict


def _add_model_route(app: FastAPI, service: Service, models: Dict[str, Any], path: str, component: str, name: str) -> None:
    route: Route = service.route_of(component)  # type: ignore[assignment]
    _, _, response, words = ROUTES[route]
    app.post(
        path,
        response_model=response,
        response_model_exclude_none=True,
        responses=ERRORS,  # type: ignore[arg-type]
        summary=f"{words} with `{component}` (Inference API)",
        operation_id=name,
        tags=["Inference API"],
    )(_model_endpoint(service, component, models))


def _add_model_routes(app: FastAPI, service: Service, models: Dict[str, Any]) -> None:
    """`/` (the default component), `/models/NAME` for each served model with
    an Inference API route, `/pipeline/TASK` for each task (E126 for one no
    component serves), and 404 for an unknown model."""
    if service.route_of(service.default):
        _add_model_route(app, service, models, "/", service.default, "predict_default")
    for i, (alias, component) in enumerate(service.aliases.items()):
        if service.route_of(component):
            _add_model_route(app, service, models, f"/models/{alias}", component, f"predict_{i}_{component}")
    for task in ROUTES:
        first = service.for_task(task)
        if first is not None:
            _add_model_route(app, service, models, f"/pipeline/{task}", first, f"pipeline_{task.replace('-', '_')}")

    @app.post("/pipeline/{task:path}", include_in_schema=False)
    async def task_not_served(task: str) -> None:
        raise StarletteHTTPException(404, _not_served(service, task))

    @app.post("/models/{name:path}", include_in_schema=False)
    async def unknown_model(name: str) -> None:
        raise StarletteHTTPException(404, f"no model named {name!r}; this server has: {', '.join(service.aliases)}")


def _add_pipeline_routes(app: FastAPI, service: Service, models: Dict[str, Any]) -> None:
    """`/doc` (the whole pipeline's Doc JSON) and `/render` (the page's view)."""
    DocRequest, RenderRequest = models["doc"], models["render"]

    @app.post("/doc", response_model=Union[DocJSON, List[DocJSON]], responses=ERRORS, tags=["spaCy"])  # type: ignore[arg-type]
    async def doc(body: DocRequest, request: Request) -> Any:  # type: ignore[valid-type]
        """The whole pipeline's Doc as JSON: entities with scores, tokens with
        PoS, tag, dependency and head, sentences, cats."""
        single = isinstance(body.inputs, str)
        texts = [body.inputs] if single else list(body.inputs)
        docs = await service.run(request, ("doc",), texts)
        return docs[0] if single else docs

    @app.post("/render", response_model=RenderResponse, responses=ERRORS, tags=["page"])  # type: ignore[arg-type]
    async def render(body: RenderRequest, request: Request) -> Any:  # type: ignore[valid-type]
        """The page's view of one text, `{"inputs": text}` (`{"text": ...}` is
        the deprecated form): its entities with scores (and as displaCy HTML),
        the categories, and the dependency parse as SVG when the pipeline has
        one."""
        return await _render(service, request, body)


async def _render(service: Service, request: Request, body: Any) -> Dict[str, Any]:
    aliases = service.aliases
    if body.model is not None and body.model not in aliases:
        raise StarletteHTTPException(422, f"model: no model named {body.model!r}; use one of {', '.join(aliases)}")
    component = aliases[body.model] if body.model is not None else service.default
    text = body.inputs
    data, dep_html = (await service.run(request, ("render",), [text]))[0]
    entities = data["ents"]
    if body.aggregation_strategy is not None and service.kinds[component].serving.page == "token":
        params = TokenClassificationParameters(aggregation_strategy=body.aggregation_strategy)
        found = (await service.run(request, ("model", component, freeze(params)), [text]))[0]
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


def _add_operation_routes(app: FastAPI, service: Service) -> None:
    """`/health`, `/ready` and `/stats`."""

    @app.get("/health", response_model=Health, tags=["operations"])
    async def health() -> Any:
        """Liveness, the served models and the batching statistics."""
        return {
            "status": "ok",
            "models": {alias: public_name(service.components[c].runtime.model_name) for alias, c in service.aliases.items()},
            "stats": service.stats(),
        }

    @app.get("/ready", responses={503: {"model": ErrorResponse}}, tags=["operations"])
    async def ready() -> Any:
        """200 once the models are loaded and the worker runs; 503 while starting
        or shutting down."""
        batcher = service.batcher
        if not (service.ready and batcher.running and batcher.accepting):
            raise StarletteHTTPException(503, "not ready")
        return {"status": "ready"}

    @app.get("/stats", tags=["operations"])
    async def stats() -> Dict[str, Any]:
        """Batching statistics: requests, inputs, batched model calls."""
        return service.stats()


def _add_page(app: FastAPI, service: Service, title: str) -> None:
    """The displaCy page at `GET /`, listing the models its kinds show."""
    served = [
        {"name": alias, "task": service.kinds[c].serving.page}
        for alias, c in service.aliases.items()
        if service.kinds[c].serving.page
    ]
    page_html, page_csp = _page(title, served)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page() -> HTMLResponse:
        return HTMLResponse(page_html, headers={"Content-Security-Policy": page_csp})


def _page(title: str, models: List[Dict[str, Any]]) -> "tuple[str, str]":
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
