"""Dynamic batching of requests for one model worker (asyncio; no web
framework).

Requests that arrive within `max_wait_ms` of each other (up to `max_batch`
items) and ask for the same thing (`key`) share one call of the worker
function, run in a one-thread executor so the event loop keeps accepting
requests and the model is never entered twice at once.
"""
import asyncio
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, Dict, Hashable, List, Optional


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
