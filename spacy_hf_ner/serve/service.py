"""What the server's routes share: the pipeline worker, the batcher in front of
it, the served models by URL name, and `run`, which takes a request's work
from its limits to its answer."""
import asyncio
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator, Dict, Hashable, List, Optional

from spacy.language import Language
from starlette.exceptions import HTTPException
from starlette.requests import Request

from ..errors import Errors
from ..kinds import ComponentKind
from .batcher import COUNTS, Batcher, QueueFull
from .config import ServeConfig
from .worker import Cost, PipelineWorker, model_aliases


class Service:
    """The served pipeline behind the routes.

    nlp (Language): a pipeline with at least one spacy-hf-ner component.
    config (ServeConfig): limits and batching.
    """

    def __init__(self, nlp: Language, config: ServeConfig) -> None:
        self.config = config
        self.runner = PipelineWorker(nlp, max_stride=config.max_stride)
        self.components = self.runner.components
        self.kinds: Dict[str, ComponentKind] = self.runner.kinds
        # URL names -> component names
        self.aliases = model_aliases(self.components)
        self.batcher = Batcher(self.runner, config)
        self.ready = False

    @property
    def default(self) -> str:
        """The component of `/` (and of the page): the first with an Inference
        API route, else the first."""
        with_route = [name for name, kind in self.kinds.items() if kind.serving.route]
        return (with_route or list(self.components))[0]

    def route_of(self, component: str) -> Optional[str]:
        """The Inference API route (task) a component answers, or None."""
        return self.kinds[component].serving.route

    def for_task(self, task: str) -> Optional[str]:
        """The first served component answering `task`, or None."""
        return next((name for name in self.components if self.route_of(name) == task), None)

    def described(self) -> str:
        """The served components and their tasks, for messages."""
        return ", ".join(f"{name} ({self.route_of(name) or 'in /doc only'})" for name in self.components)

    @asynccontextmanager
    async def lifespan(self, app: Any) -> AsyncIterator[None]:
        """Load and warm up the models, run the batcher; on shutdown every
        queued request is answered first."""
        await asyncio.get_running_loop().run_in_executor(None, self.runner.warm_up)
        self.batcher.start()
        self.ready = True
        try:
            yield
        finally:
            self.ready = False
            await self.batcher.stop()

    async def run(self, request: Request, key: Hashable, items: List[Any]) -> List[Any]:
        """Count the request's model work (413 over the limit), queue it, and
        wait for the answer, the deadline (504) or the client leaving, whichever
        comes first; in the last two cases what is left of the work is dropped."""
        loop = asyncio.get_running_loop()
        try:
            costs = await loop.run_in_executor(None, self.runner.cost, key, items)
        except ValueError as e:  # a stride over the server's limit, or one the model cannot take
            raise HTTPException(422, f"invalid parameters: {e}") from None
        self._check_limits(key, items, costs)
        answer = asyncio.ensure_future(
            self.batcher.submit(key, items, self.config.timeout_s, [c.tokens for c in costs])
        )
        gone = asyncio.ensure_future(_disconnected(request))
        await asyncio.wait({answer, gone}, return_when=asyncio.FIRST_COMPLETED)
        gone.cancel()
        if not answer.done():  # the client went away: drop its work
            answer.cancel()
            self.batcher.stats["abandoned"] += 1
            raise HTTPException(499, "the client closed the connection")
        try:
            return answer.result()
        except QueueFull as e:
            raise HTTPException(503, f"server busy: {e}; retry later", headers={"Retry-After": "1"}) from None
        except asyncio.TimeoutError:
            raise HTTPException(504, f"the request was not answered within {self.config.timeout_s} s (--timeout-s)") from None
        except ValueError as e:  # parameters the model cannot take
            raise HTTPException(422, f"invalid parameters: {e}") from None

    def _check_limits(self, key: Hashable, items: List[Any], costs: List[Cost]) -> None:
        """413 for an input or a request over the server's window limits."""
        config = self.config
        name = key[1] if key[0] == "model" else self.default  # type: ignore[index]
        window = self.components[name].runtime.window
        largest = max(range(len(costs)), key=lambda i: costs[i].windows)
        if costs[largest].windows > config.max_windows_per_input:
            raise HTTPException(
                413,
                Errors.E125.format(
                    index=largest, windows=costs[largest].windows, window=window, limit=config.max_windows_per_input
                ),
            )
        windows = sum(c.windows for c in costs)
        if windows > config.max_windows_per_request:
            raise HTTPException(
                413,
                Errors.E122.format(
                    windows=windows,
                    texts=len(items),
                    largest=costs[largest].windows,
                    window=window,
                    limit=config.max_windows_per_request,
                ),
            )

    def stats(self) -> Dict[str, Any]:
        """Batching statistics: requests, inputs, batched model calls."""
        counts = {name: self.batcher.stats[name] for name in COUNTS}
        return {**counts, "queued": self.batcher.queued, "max_batch": self.config.max_batch}


async def _disconnected(request: Request) -> None:
    """Return when the client closes the connection (the body is read by
    then, so the next ASGI message is the disconnect)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass
