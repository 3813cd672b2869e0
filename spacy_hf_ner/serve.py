"""An HTTP server for pipelines with `hf_ner` / `hf_textcat`: the Hugging Face
Inference API's request and response shapes, a spaCy-native Doc endpoint and a
displaCy page.

    python -m spacy_hf_ner serve PIPELINE_OR_MODEL --host 127.0.0.1 --port 8000

Requests are answered by one model worker fed by a dynamic batcher: requests
that arrive within `max_wait_ms` of each other (up to `max_batch` texts) and ask
for the same thing share one batched forward pass, run in a worker thread so the
event loop keeps accepting requests. The queue is bounded (503 when full), every
request has a deadline (504), bodies are size-limited (413) and validated (422,
never a 500 for bad input).

Needs the `serve` extra: `pip install "spacy-hf-ner[serve]"`.
"""
import asyncio
import html
import json
import re
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Hashable, List, Literal, Optional, Sequence, Tuple, Union

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from spacy import displacy
from spacy.language import Language
from spacy.tokens import Doc, Span
from starlette.exceptions import HTTPException as StarletteHTTPException
from typing_extensions import Annotated

from .ner import SCORE_ATTR, HFNer
from .serve_config import ServeConfig
from .textcat import HFTextcat

PAGE = Path(__file__).parent / "serve_page.html"

Strategy = Literal["none", "simple", "first", "average", "max"]
Function = Literal["auto", "sigmoid", "softmax", "none"]
Text = Annotated[str, Field(min_length=1, description="A non-empty text.")]

# displaCy's entity template with the score in a tooltip (`title`)
TPL_ENT_SCORED = """
<mark class="entity" title="{title}" style="background: {bg}; padding: 0.45em 0.6em; margin: 0 0.25em; line-height: 1; border-radius: 0.35em;">
    {text}
    <span style="font-size: 0.8em; font-weight: bold; line-height: 1; border-radius: 0.35em; vertical-align: middle; margin-left: 0.5rem">{label}{kb_link}</span>
</mark>
"""


# -- dynamic batching ------------------------------------------------------------


class QueueFull(Exception):
    """The batcher's queue is full, or it is draining for shutdown."""


@dataclass
class _Job:
    key: Hashable
    items: List[Any]
    future: "asyncio.Future[List[Any]]"


@dataclass
class BatchStats:
    requests: int = 0
    inputs: int = 0
    batches: int = 0
    largest_batch: int = 0
    rejected: int = 0
    timed_out: int = 0


class Batcher:
    """Dynamic batching of requests for one model worker.

    `submit(key, items)` queues a job and waits for its results. A single worker
    task takes the first waiting job, then every job that arrives within
    `max_wait_ms` until `max_batch` items are gathered, groups them by `key` and
    runs `run(key, items)` once per group in a one-thread executor (the model is
    never entered twice at once), then hands each job its slice of the results.

    run (Callable[[Hashable, List[Any]], List[Any]]): one result per item.
    """

    def __init__(
        self,
        run: Callable[[Hashable, List[Any]], List[Any]],
        *,
        max_batch: int,
        max_wait_ms: float,
        max_queue: int,
    ) -> None:
        self.run = run
        self.max_batch = max_batch
        self.max_wait = max_wait_ms / 1000.0
        self.max_queue = max_queue
        self.stats = BatchStats()
        self.accepting = False
        self._queue: Optional["asyncio.Queue[Optional[_Job]]"] = None
        self._carry: Optional[_Job] = None
        self._worker: Optional["asyncio.Task[None]"] = None
        self._executor: Optional[ThreadPoolExecutor] = None

    @property
    def running(self) -> bool:
        return self._worker is not None and not self._worker.done()

    @property
    def queued(self) -> int:
        """Requests waiting for the model."""
        return self._queue.qsize() if self._queue is not None else 0

    def start(self) -> None:
        """Start the worker on the running event loop."""
        self._queue = asyncio.Queue(maxsize=self.max_queue)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="spacy-hf-ner-model")
        self._worker = asyncio.get_running_loop().create_task(self._loop())
        self.accepting = True

    async def stop(self) -> None:
        """Refuse new jobs, answer every queued one, then stop the worker."""
        self.accepting = False
        if self._worker is None or self._queue is None:
            return
        await self._queue.put(None)  # after every queued job
        await self._worker
        if self._executor is not None:
            self._executor.shutdown(wait=True)

    async def submit(self, key: Hashable, items: List[Any], timeout: float) -> List[Any]:
        """Queue `items` under `key` and wait for their results.

        Raises QueueFull when the queue is full or the batcher is stopping,
        asyncio.TimeoutError after `timeout` seconds, and whatever `run` raised.
        """
        if not self.accepting or self._queue is None:
            self.stats.rejected += 1
            raise QueueFull("the server is shutting down")
        future: "asyncio.Future[List[Any]]" = asyncio.get_running_loop().create_future()
        try:
            self._queue.put_nowait(_Job(key, items, future))
        except asyncio.QueueFull:
            self.stats.rejected += 1
            raise QueueFull(f"the queue is full ({self.max_queue} requests waiting)") from None
        self.stats.requests += 1
        self.stats.inputs += len(items)
        try:
            # a job that times out while queued is cancelled and never run
            return await asyncio.wait_for(future, timeout)
        except asyncio.TimeoutError:
            self.stats.timed_out += 1
            raise

    async def _next(self, timeout: Optional[float]) -> Optional[_Job]:
        assert self._queue is not None
        if self._carry is not None:
            job, self._carry = self._carry, None
            return job
        if timeout is None:
            return await self._queue.get()
        if timeout <= 0:
            return self._queue.get_nowait()
        return await asyncio.wait_for(self._queue.get(), timeout)

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        stopping = False
        while not stopping:
            first = await self._next(None)
            if first is None:
                break
            jobs = [first]
            size = len(first.items)
            deadline = loop.time() + self.max_wait
            while size < self.max_batch:
                try:
                    job = await self._next(deadline - loop.time())
                except (asyncio.TimeoutError, asyncio.QueueEmpty):
                    break
                if job is None:
                    stopping = True
                    break
                if size + len(job.items) > self.max_batch:
                    self._carry = job
                    break
                jobs.append(job)
                size += len(job.items)
            await self._run_jobs(jobs)
        if self._carry is not None:  # stop arrived right after a carried job
            await self._run_jobs([self._carry])
            self._carry = None

    async def _run_jobs(self, jobs: List[_Job]) -> None:
        loop = asyncio.get_running_loop()
        groups: Dict[Hashable, List[_Job]] = defaultdict(list)
        for job in jobs:
            if not job.future.done():  # cancelled by its deadline
                groups[job.key].append(job)
        for key, group in groups.items():
            items = [item for job in group for item in job.items]
            self.stats.batches += 1
            self.stats.largest_batch = max(self.stats.largest_batch, len(items))
            try:
                results = await loop.run_in_executor(self._executor, self.run, key, items)
            except Exception as error:  # each job gets the error of its group
                for job in group:
                    if not job.future.done():
                        job.future.set_exception(error)
                continue
            offset = 0
            for job in group:
                n = len(job.items)
                if not job.future.done():
                    job.future.set_result(results[offset : offset + n])
                offset += n


# -- request and response schemas ---------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TokenClassificationParameters(_Strict):
    aggregation_strategy: Optional[Strategy] = Field(
        None, description="none / simple / first / average / max; default: the component's"
    )
    ignore_labels: Optional[List[str]] = Field(None, description="labels left out; default: the component's")
    stride: Optional[Annotated[int, Field(ge=0, strict=True)]] = Field(
        None, description="overlap of the windows of a long text, in model tokens"
    )


class TextPair(_Strict):
    text: Text
    text_pair: Text


class TextClassificationParameters(_Strict):
    function_to_apply: Optional[Function] = Field(None, description="default: the component's")
    top_k: Optional[Annotated[int, Field(ge=1, strict=True)]] = Field(None, description="default: all labels")


class TokenEntity(BaseModel):
    entity_group: Optional[str] = None
    entity: Optional[str] = None
    score: float
    index: Optional[int] = None
    word: str
    start: int
    end: int


class LabelScore(BaseModel):
    label: str
    score: float


class DocEntity(BaseModel):
    start: int
    end: int
    label: str
    text: str
    score: Optional[float] = None


class DocJSON(BaseModel):
    model_config = ConfigDict(extra="allow")
    text: str
    ents: List[DocEntity]
    tokens: List[Dict[str, Any]]
    cats: Dict[str, float] = {}


class ErrorResponse(BaseModel):
    error: str


class RenderResponse(BaseModel):
    ents_html: str
    dep_html: Optional[str] = None
    cats: Dict[str, float] = {}
    entities: List[DocEntity]


class Health(BaseModel):
    status: str
    models: Dict[str, str]
    stats: Dict[str, Any]


def _request_models(max_inputs: int) -> Dict[str, Any]:
    """Request bodies with the server's `max_inputs` in their schema."""
    Many = Annotated[List[Text], Field(min_length=1, max_length=max_inputs)]

    class TokenClassificationRequest(_Strict):
        model_config = ConfigDict(
            extra="forbid",
            json_schema_extra={
                "examples": [
                    {"inputs": "My name is Sarah Jessica Parker and I work at Google in New York."},
                    {"inputs": ["Angela Merkel visited Paris."], "parameters": {"aggregation_strategy": "simple"}},
                ]
            },
        )
        inputs: Union[Text, Many]
        parameters: TokenClassificationParameters = TokenClassificationParameters()

    class TextClassificationRequest(_Strict):
        model_config = ConfigDict(
            extra="forbid",
            json_schema_extra={
                "examples": [
                    {"inputs": "I like you. I love you", "parameters": {"top_k": 1}},
                    {"inputs": {"text": "A man is eating.", "text_pair": "Someone eats."}},
                ]
            },
        )
        inputs: Union[
            Text,
            TextPair,
            Annotated[List[Union[Text, TextPair]], Field(min_length=1, max_length=max_inputs)],
        ]
        parameters: TextClassificationParameters = TextClassificationParameters()

    class DocRequest(_Strict):
        model_config = ConfigDict(
            extra="forbid", json_schema_extra={"examples": [{"inputs": "Angela Merkel visited Paris."}]}
        )
        inputs: Union[Text, Many]

    class RenderRequest(_Strict):
        text: Text
        model: Optional[str] = Field(None, description="a served model name; default: the first")
        aggregation_strategy: Optional[Strategy] = Field(
            None, description="render the model's entities with this strategy; default: the pipeline's doc.ents"
        )

    return {
        "token": TokenClassificationRequest,
        "text": TextClassificationRequest,
        "doc": DocRequest,
        "render": RenderRequest,
    }


# -- the pipeline side ---------------------------------------------------------


def served_components(nlp: Language) -> Dict[str, Union[HFNer, HFTextcat]]:
    """The pipeline's `hf_ner` and `hf_textcat` components by name, in pipeline
    order."""
    found = {name: pipe for name, pipe in nlp.pipeline if isinstance(pipe, (HFNer, HFTextcat))}
    if not found:
        raise ValueError(
            f"serve: the pipeline ({', '.join(nlp.pipe_names) or 'no components'}) has no `hf_ner` or "
            "`hf_textcat` component. Fix: add one, e.g. nlp.add_pipe('hf_ner'), or serve a transformers "
            "token/sequence classifier directly"
        )
    return found


def model_aliases(components: Dict[str, Union[HFNer, HFTextcat]]) -> Dict[str, str]:
    """URL names of the served models -> component names: each component's name,
    and its model id when that is a hub id or a bundled model (not a folder)."""
    aliases = {name: name for name in components}
    for name, pipe in components.items():
        model = pipe.engine.model_name
        if not Path(model).expanduser().is_absolute() and not model.startswith((".", "~")):
            aliases.setdefault(model, name)
    return aliases


def doc_json(doc: Doc) -> Dict[str, Any]:
    """`Doc.to_json()` (tokens with pos/tag/dep/head, sents, cats) with each
    entity's text and score."""
    data = doc.to_json()
    scored = Span.has_extension(SCORE_ATTR)
    data["ents"] = [
        {
            "start": ent.start_char,
            "end": ent.end_char,
            "label": ent.label_,
            "text": ent.text,
            "score": ent._.get(SCORE_ATTR) if scored else None,
        }
        for ent in doc.ents
    ]
    data.setdefault("cats", {})
    return data


def render_entities(text: str, entities: Sequence[Dict[str, Any]]) -> str:
    """displaCy's entity view of character-offset entities, each with its score
    in a tooltip."""
    ents = [
        {
            "start": e["start"],
            "end": e["end"],
            "label": e["label"],
            "params": {
                "title": html.escape(
                    f"{e['label']} {e['score']:.3f}" if e.get("score") is not None else e["label"], quote=True
                )
            },
        }
        for e in sorted(entities, key=lambda e: (e["start"], -e["end"]))
    ]
    ents = [e for i, e in enumerate(ents) if i == 0 or e["start"] >= ents[i - 1]["end"]]
    return displacy.render(
        {"text": text, "ents": ents, "title": None},
        style="ent",
        manual=True,
        page=False,
        options={"template": TPL_ENT_SCORED},
    )


def render_dependencies(doc: Doc) -> Optional[str]:
    """displaCy's dependency view of each sentence, or None without a parse."""
    if not doc.has_annotation("DEP"):
        return None
    return displacy.render(list(doc.sents), style="dep", page=False, options={"compact": True})


class PipelineRunner:
    """What the model worker runs, keyed by the batcher: ("token", component,
    parameters), ("text", component, parameters), ("doc",) or ("render",)."""

    def __init__(self, nlp: Language) -> None:
        self.nlp = nlp
        self.components = served_components(nlp)

    def warm_up(self) -> None:
        """Load every model and run each once."""
        list(self.nlp.pipe(["Warm up the models."]))

    def __call__(self, key: Hashable, items: List[Any]) -> List[Any]:
        kind = key[0]  # type: ignore[index]
        if kind == "doc":
            return [doc_json(doc) for doc in self.nlp.pipe(items)]
        if kind == "render":
            return [(doc_json(doc), render_dependencies(doc)) for doc in self.nlp.pipe(items)]
        params = dict(key[2])  # type: ignore[index]
        component = self.components[key[1]]  # type: ignore[index]
        if kind == "token":
            if "ignore_labels" in params and params["ignore_labels"] is not None:
                params["ignore_labels"] = list(params["ignore_labels"])
            return component.hf_entities(items, **params)  # type: ignore[union-attr]
        return component.hf_scores(items, **params)  # type: ignore[union-attr]


def _freeze(params: BaseModel) -> Tuple[Tuple[str, Any], ...]:
    """Request parameters as a hashable batching key."""
    values = params.model_dump()
    return tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in values.items()))


# -- the app -------------------------------------------------------------------


class BodyLimit:
    """ASGI middleware: 413 for request bodies over `max_bytes`, by the
    Content-Length header or while reading a chunked body (the body is read here,
    at most `max_bytes` of it, and handed to the app as one message)."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Dict[str, Any], receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        message = f"the request body is larger than the server's limit of {self.max_bytes} bytes (--max-body-bytes)"
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None:
            try:
                too_large = int(length) > self.max_bytes
            except ValueError:
                await _send_error(send, 400, "the Content-Length header is not a number")
                return
            if too_large:
                await _send_error(send, 413, message)
                return
        body = bytearray()
        more = True
        while more:
            event = await receive()
            if event["type"] != "http.request":  # the client went away
                return
            body += event.get("body", b"")
            more = event.get("more_body", False)
            if len(body) > self.max_bytes:
                await _send_error(send, 413, message)
                return
        replayed = False

        async def replay() -> Dict[str, Any]:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": bytes(body), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


async def _send_error(send: Callable, status: int, message: str) -> None:
    body = json.dumps({"error": message}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _validation_message(errors: Sequence[Dict[str, Any]]) -> str:
    """One line naming each invalid field; the alternatives of a union (e.g.
    `inputs`: a string or a list of strings) are joined with "or"."""
    by_field: Dict[str, List[str]] = {}
    for error in errors:
        where = ".".join(
            str(part)
            for part in error.get("loc", ())
            if part != "body" and not (isinstance(part, str) and _UNION_TAG.search(part))
        )
        messages = by_field.setdefault(where or "body", [])
        if error.get("msg") not in messages:
            messages.append(str(error.get("msg", "invalid")))
    return "invalid request: " + "; ".join(f"{where}: {' or '.join(msgs)}" for where, msgs in by_field.items())


_UNION_TAG = re.compile(r"[\[\]-]|^(str|int|TextPair)$")


ERRORS = {
    413: {"model": ErrorResponse, "description": "Request body too large"},
    422: {"model": ErrorResponse, "description": "Invalid request (the message names the field)"},
    503: {"model": ErrorResponse, "description": "Queue full or shutting down; retry later"},
    504: {"model": ErrorResponse, "description": "Not answered within the server's timeout"},
}


def create_app(nlp: Language, config: Optional[ServeConfig] = None, *, title: str = "spacy-hf-ner") -> FastAPI:
    """A FastAPI app serving the pipeline's `hf_ner` / `hf_textcat` components.

    nlp (Language): a pipeline with at least one `hf_ner` or `hf_textcat`.
    config (Optional[ServeConfig]): limits and batching; default ServeConfig().
    title (str): the API's title in the OpenAPI spec and on the page.
    RETURNS (FastAPI): the app; its models load and warm up on startup.
    """
    config = config or ServeConfig()
    runner = PipelineRunner(nlp)
    components = runner.components
    aliases = model_aliases(components)
    batcher = Batcher(runner, max_batch=config.max_batch, max_wait_ms=config.max_wait_ms, max_queue=config.max_queue)
    models = _request_models(config.max_inputs)
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
    app.add_middleware(BodyLimit, max_bytes=config.max_body_bytes)
    app.state.batcher = batcher
    app.state.config = config

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"error": _validation_message(exc.errors())}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers)

    async def run(key: Hashable, items: List[Any]) -> List[Any]:
        try:
            return await batcher.submit(key, items, config.timeout_s)
        except QueueFull as e:
            raise StarletteHTTPException(503, f"server busy: {e}; retry later", headers={"Retry-After": "1"})
        except asyncio.TimeoutError:
            raise StarletteHTTPException(504, f"the request was not answered within {config.timeout_s} s (--timeout-s)")
        except ValueError as e:  # parameters the model cannot take, e.g. a stride too large for its window
            raise StarletteHTTPException(422, f"invalid parameters: {e}")

    TokenRequest, TextRequest, DocRequest, RenderRequest = (
        models["token"],
        models["text"],
        models["doc"],
        models["render"],
    )

    def token_endpoint(component: str) -> Callable:
        async def classify_tokens(body: TokenRequest) -> Any:  # type: ignore[valid-type]
            single = isinstance(body.inputs, str)
            texts = [body.inputs] if single else list(body.inputs)
            found = await run(("token", component, _freeze(body.parameters)), texts)
            return found[0] if single else found

        return classify_tokens

    def text_endpoint(component: str) -> Callable:
        async def classify_text(body: TextRequest) -> Any:  # type: ignore[valid-type]
            single = not isinstance(body.inputs, list)
            items = [body.inputs] if single else list(body.inputs)
            texts = [(i.text, i.text_pair) if isinstance(i, TextPair) else i for i in items]
            found = await run(("text", component, _freeze(body.parameters)), texts)
            return found[0] if single else found

        return classify_text

    def add_model_route(path: str, component: str, name: str) -> None:
        pipe = components[component]
        if isinstance(pipe, HFNer):
            endpoint = token_endpoint(component)
            response: Any = Union[List[TokenEntity], List[List[TokenEntity]]]
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
    async def doc(body: DocRequest) -> Any:  # type: ignore[valid-type]
        """The whole pipeline's Doc as JSON: entities with scores, tokens with
        PoS, tag, dependency and head, sentences, cats."""
        single = isinstance(body.inputs, str)
        texts = [body.inputs] if single else list(body.inputs)
        docs = await run(("doc",), texts)
        return docs[0] if single else docs

    @app.post("/render", response_model=RenderResponse, responses=ERRORS, tags=["page"])  # type: ignore[arg-type]
    async def render(body: RenderRequest) -> Any:  # type: ignore[valid-type]
        """displaCy HTML for the page: entities with scores on hover, and the
        dependency parse when the pipeline has one."""
        if body.model is not None and body.model not in aliases:
            raise StarletteHTTPException(422, f"model: no model named {body.model!r}; use one of {', '.join(aliases)}")
        component = aliases[body.model] if body.model is not None else default
        data, dep_html = (await run(("render",), [body.text]))[0]
        entities = data["ents"]
        if body.aggregation_strategy is not None and isinstance(components[component], HFNer):
            params = TokenClassificationParameters(aggregation_strategy=body.aggregation_strategy)
            found = (await run(("token", component, _freeze(params)), [body.text]))[0]
            entities = [
                {
                    "start": e["start"],
                    "end": e["end"],
                    "label": e.get("entity_group", e.get("entity")),
                    "text": body.text[e["start"] : e["end"]],
                    "score": e["score"],
                }
                for e in found
            ]
        return {
            "ents_html": render_entities(body.text, entities),
            "dep_html": dep_html,
            "cats": data["cats"],
            "entities": entities,
        }

    @app.get("/health", response_model=Health, tags=["operations"])
    async def health() -> Any:
        """Liveness, the served models and the batching statistics."""
        return {
            "status": "ok",
            "models": {alias: components[c].engine.model_name for alias, c in aliases.items()},
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

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page() -> str:
        served = [
            {"name": alias, "task": "token" if isinstance(components[c], HFNer) else "text"}
            for alias, c in aliases.items()
        ]
        text = PAGE.read_text(encoding="utf8")
        return text.replace("{{TITLE}}", html.escape(title)).replace("{{MODELS}}", json.dumps(served))

    return app


def _stats(batcher: Batcher) -> Dict[str, Any]:
    s = batcher.stats
    return {
        "requests": s.requests,
        "inputs": s.inputs,
        "batches": s.batches,
        "largest_batch": s.largest_batch,
        "rejected": s.rejected,
        "timed_out": s.timed_out,
        "queued": batcher.queued,
        "max_batch": batcher.max_batch,
    }


def _version() -> str:
    from . import __version__

    return __version__


# -- loading what to serve ---------------------------------------------------------


def load_pipeline(name: str, *, lang: str = "xx") -> Language:
    """The pipeline to serve: a spaCy pipeline folder or installed package
    (`spacy.load`), else a transformers token or sequence classifier (hub id,
    folder, or `spacy-hf-ner:NAME`) in a blank `lang` pipeline as `hf_ner` or
    `hf_textcat`."""
    import spacy
    from spacy.util import is_package

    path = Path(name).expanduser()
    if (path / "config.cfg").is_file() or is_package(name):
        return spacy.load(name)
    from transformers import AutoConfig

    from .engine import resolve_model

    source = resolve_model(name, "serve")
    try:
        model_config = AutoConfig.from_pretrained(source)
    except (OSError, ValueError) as e:
        raise ValueError(
            f"serve: {name!r} is neither a spaCy pipeline (folder with config.cfg, or installed package) nor a "
            f"transformers model ({e}). Fix: give a pipeline folder, a package name, a hub id or a model folder"
        ) from e
    architectures = getattr(model_config, "architectures", None) or []
    if any(a.endswith("ForTokenClassification") for a in architectures):
        factory = "hf_ner"
    elif any(a.endswith("ForSequenceClassification") for a in architectures):
        factory = "hf_textcat"
    else:
        raise ValueError(
            f"serve: the model {name!r} ({'/'.join(architectures) or 'no architecture in its config'}) is neither "
            "a *ForTokenClassification nor a *ForSequenceClassification model. Fix: serve a token or sequence "
            "classifier, or a spaCy pipeline"
        )
    nlp = spacy.blank(lang)
    nlp.add_pipe(factory, config={"model": name})
    return nlp


def serve(name: str, *, host: str, port: int, config: ServeConfig, lang: str = "xx", log_level: str = "info") -> None:
    """Load `name` (see `load_pipeline`) and serve it with uvicorn until
    SIGINT/SIGTERM; in-flight and queued requests are answered before it exits."""
    import uvicorn

    started = time.perf_counter()
    nlp = load_pipeline(name, lang=lang)
    app = create_app(nlp, config, title=f"spacy-hf-ner: {name}")
    print(f"serving {name} ({', '.join(nlp.pipe_names)}), loaded in {time.perf_counter() - started:.1f} s", flush=True)
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level=log_level,
        timeout_graceful_shutdown=int(max(1, config.timeout_s)),
    )
