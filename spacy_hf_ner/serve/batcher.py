"""Dynamic, fair batching of requests for one model worker (asyncio; no web
framework).

A request's items (texts) are scheduled one by one: each model call takes
items round-robin from the waiting requests that ask for the same thing
(`key`), one item per request per round, until `max_batch` items or
`max_batch_tokens` model tokens are gathered. A large request is therefore
split over many calls and a small request that arrives meanwhile shares the
next one: it waits for at most one call of the large request, never for all of
it. Between calls, requests that passed their deadline or were abandoned
(their future cancelled, e.g. the client disconnected) are dropped with their
remaining items. Calls run in a one-thread executor, so the event loop keeps
accepting requests and the model is never entered twice at once.
"""
import asyncio
from collections import Counter, deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Deque, Hashable, List, Optional, Sequence, Tuple

from .config import BatchLimits


class QueueFull(Exception):
    """The batcher's queue is full, or it is draining for shutdown."""


@dataclass
class _Job:
    key: Hashable
    items: List[Any]
    costs: List[int]  # model tokens of each item
    future: "asyncio.Future[List[Any]]"
    deadline: float  # event loop time
    results: List[Any] = field(default_factory=list)
    scheduled: int = 0  # items handed to model calls so far
    answered: int = 0  # items with a result

    @property
    def waiting(self) -> bool:
        """Items not yet handed to a model call."""
        return self.scheduled < len(self.items)


# what the batcher counts (`Batcher.stats`, the server's /stats): requests,
# their inputs, batched model calls and the largest; requests refused (queue
# full), timed out and abandoned (the client went away before the answer); and
# inputs never run (their request timed out or was abandoned)
COUNTS = ("requests", "inputs", "batches", "largest_batch", "rejected", "timed_out", "abandoned", "dropped_inputs")


class Batcher:
    """Dynamic, fair batching of requests for one model worker.

    `submit(key, items, timeout, costs)` queues a job and waits for its
    results. The worker task waits `max_wait_ms` after the first job arrives
    on an idle worker, then makes model calls `run(key, items)` (one result per
    item) of at most `max_batch` items and `max_batch_tokens` tokens (a single
    item over the budget runs alone), taking items round-robin from the jobs
    of the key at the head of the line, each job up to an equal share of the
    token budget (at least one item); the jobs served go to the back. Short
    items (an eighth of the budget at most) never share a call with long
    ones, and calls alternate between the two while both wait.

    run (Callable[[Hashable, List[Any]], List[Any]]): one result per item.
    limits (BatchLimits): `max_batch`, `max_batch_tokens` (None: no token
        budget), `max_wait_ms`, and `max_queue` (jobs with items waiting; more
        are refused with QueueFull); the server passes its `ServeConfig`.
    """

    def __init__(self, run: Callable[[Hashable, List[Any]], List[Any]], limits: BatchLimits) -> None:
        self.run = run
        self.limits = limits
        # the COUNTS so far
        self.stats: Counter[str] = Counter()
        self.accepting = False
        self._jobs: Deque[_Job] = deque()
        self._wake: Optional[asyncio.Event] = None
        self._stopping = False
        self._last_short: Optional[bool] = None  # the kind of items of the last call
        self._worker: Optional["asyncio.Task[None]"] = None
        self._executor: Optional[ThreadPoolExecutor] = None

    @property
    def running(self) -> bool:
        return self._worker is not None and not self._worker.done()

    @property
    def queued(self) -> int:
        """Requests with items waiting for the model."""
        return sum(1 for job in self._jobs if job.waiting and not job.future.done())

    def start(self) -> None:
        """Start the worker on the running event loop."""
        self._wake = asyncio.Event()
        self._stopping = False
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="spacy-hf-ner-model")
        self._worker = asyncio.get_running_loop().create_task(self._loop())
        self.accepting = True

    async def stop(self) -> None:
        """Refuse new jobs, answer every queued one, then stop the worker."""
        self.accepting = False
        if self._worker is None or self._wake is None:
            return
        self._stopping = True
        self._wake.set()
        await self._worker
        if self._executor is not None:
            self._executor.shutdown(wait=True)

    async def submit(
        self, key: Hashable, items: List[Any], timeout: float, costs: Optional[Sequence[int]] = None
    ) -> List[Any]:
        """Queue `items` under `key` and wait for their results.

        costs: model tokens of each item (the `max_batch_tokens` budget); None
            counts every item as one.
        Raises QueueFull when the queue is full or the batcher is stopping,
        asyncio.TimeoutError after `timeout` seconds, and whatever `run` raised.
        Cancelling the caller drops the job's items that have not run.
        """
        if not self.accepting or self._wake is None:
            self.stats["rejected"] += 1
            raise QueueFull("the server is shutting down")
        if self.queued >= self.limits.max_queue:
            self.stats["rejected"] += 1
            raise QueueFull(f"the queue is full ({self.limits.max_queue} requests waiting)")
        loop = asyncio.get_running_loop()
        future: "asyncio.Future[List[Any]]" = loop.create_future()
        costs = list(costs) if costs is not None else [1] * len(items)
        job = _Job(key, list(items), costs, future, loop.time() + timeout, [None] * len(items))
        self._jobs.append(job)
        self._wake.set()
        self.stats["requests"] += 1
        self.stats["inputs"] += len(items)
        try:
            # on timeout or cancellation the future is cancelled, and the worker
            # drops what is left of the job before its next call
            return await asyncio.wait_for(future, timeout)
        except asyncio.TimeoutError:
            self.stats["timed_out"] += 1
            raise

    def _drop_finished(self, now: float) -> None:
        """Forget jobs that are answered, abandoned or past their deadline."""
        kept: Deque[_Job] = deque()
        for job in self._jobs:
            if not job.future.done() and now >= job.deadline:
                job.future.set_exception(asyncio.TimeoutError())
            if job.future.done():
                self.stats["dropped_inputs"] += len(job.items) - job.scheduled
                job.scheduled = len(job.items)
            if job.waiting or (job.answered < job.scheduled and not job.future.done()):
                kept.append(job)
        self._jobs = kept

    def _pick(self) -> Tuple[Hashable, List[Tuple[_Job, int]]]:
        """The next model call: items of one kind (short or long, the other
        kind than the last call's when both wait) taken round-robin from the
        waiting jobs of the first such job's key, each job up to its share of
        the token budget; the jobs served move to the back."""
        candidates = [job for job in self._jobs if job.waiting]
        # short items never share a call with long ones (the model pads a batch
        # to its longest window), and when both wait, calls alternate between
        # them: a short request waits for at most one long call
        kinds = {self._next_is_short(job) for job in candidates}
        short = self._next_is_short(candidates[0])
        if len(kinds) == 2 and self._last_short is not None:
            short = not self._last_short
        candidates = [job for job in candidates if self._next_is_short(job) == short]
        self._last_short = short
        key = candidates[0].key
        same = [job for job in candidates if job.key == key]
        # each job's share of the call: one item, then up to an equal part of
        # the token budget, so small requests are not held by a large one's items
        budget = self.limits.max_batch_tokens
        share = None if budget is None else budget / len(same)
        spent = {id(job): 0 for job in same}
        taken: List[Tuple[_Job, int]] = []
        tokens = 0
        full = False
        while not full:
            progress = False
            for job in same:
                if not job.waiting or (share is not None and spent[id(job)] and spent[id(job)] >= share):
                    continue
                if self._next_is_short(job) != short:
                    continue
                cost = job.costs[job.scheduled]
                over = budget is not None and tokens + cost > budget
                if len(taken) >= self.limits.max_batch or (taken and over):
                    full = True
                    break
                taken.append((job, job.scheduled))
                job.scheduled += 1
                tokens += cost
                spent[id(job)] += cost
                progress = True
            full = full or not progress
        served = {id(job) for job, _ in taken}
        self._jobs = deque([j for j in self._jobs if id(j) not in served] + [j for j in self._jobs if id(j) in served])
        return key, taken

    def _next_is_short(self, job: _Job) -> bool:
        """Whether the job's next item is short: at most an eighth of the token budget."""
        budget = self.limits.max_batch_tokens
        return budget is not None and job.costs[job.scheduled] * 8 <= budget

    def _ready_size(self) -> Tuple[int, int]:
        items = [(job, i) for job in self._jobs if not job.future.done() for i in range(job.scheduled, len(job.items))]
        return len(items), sum(job.costs[i] for job, i in items)

    async def _loop(self) -> None:
        assert self._wake is not None
        loop = asyncio.get_running_loop()
        while True:
            self._drop_finished(loop.time())
            if not any(job.waiting for job in self._jobs):
                if self._stopping:
                    return
                self._wake.clear()
                await self._wake.wait()
                # after an idle spell, gather the requests arriving together
                size, tokens = self._ready_size()
                budget = self.limits.max_batch_tokens
                full = size >= self.limits.max_batch or (budget is not None and tokens >= budget)
                if self.limits.max_wait_ms > 0 and not full and not self._stopping:
                    await asyncio.sleep(self.limits.max_wait_ms / 1000.0)
                continue
            key, taken = self._pick()
            await self._call(key, taken)

    async def _call(self, key: Hashable, taken: List[Tuple[_Job, int]]) -> None:
        loop = asyncio.get_running_loop()
        items = [job.items[i] for job, i in taken]
        self.stats["batches"] += 1
        self.stats["largest_batch"] = max(self.stats["largest_batch"], len(items))
        try:
            results = await loop.run_in_executor(self._executor, self.run, key, items)
        except Exception as error:  # each job of the call gets the error, and is over
            for job, _ in taken:
                if not job.future.done():
                    job.future.set_exception(error)
            return
        for (job, i), result in zip(taken, results):
            job.results[i] = result
            job.answered += 1
            if job.answered == len(job.items) and not job.future.done():
                job.future.set_result(job.results)
