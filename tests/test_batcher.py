"""The batcher on its own (asyncio, no web framework, no model): keys and
`max_batch`, the queue bound, deadlines and drain, fair interleaving of a large
request with small ones, the token budget, and work dropped when a request
times out or is cancelled."""
import asyncio
import threading
import time

import pytest

from spacy_hf_ner.serve.batcher import Batcher, QueueFull
from spacy_hf_ner.serve.config import BatchLimits


def test_limits_are_checked_with_coded_errors():
    # as the server's: E123 names the flag
    with pytest.raises(ValueError, match="E123.*--max-queue"):
        BatchLimits(max_queue=0)
    with pytest.raises(ValueError, match="E123.*--max-batch-tokens"):
        BatchLimits(max_batch_tokens=0)
    assert BatchLimits(max_batch_tokens=None).max_batch_tokens is None  # no token budget


# -- the batcher -----------------------------------------------------------------------


def test_batcher_groups_keys_and_respects_max_batch():
    calls = []

    def run(key, items):
        calls.append((key, list(items)))
        return [f"{key}:{item}" for item in items]

    async def scenario():
        batcher = Batcher(run, BatchLimits(max_batch=4, max_wait_ms=50, max_queue=100, max_batch_tokens=None))
        batcher.start()
        jobs = [batcher.submit(k, [i, i], timeout=5) for i, k in enumerate("aabab")]
        results = await asyncio.gather(*jobs)
        await batcher.stop()
        return results

    results = asyncio.run(scenario())
    assert results == [[f"{k}:{i}", f"{k}:{i}"] for i, k in enumerate("aabab")]
    assert all(len(items) <= 4 for _, items in calls)
    assert all(len(set(k for k, _ in [c])) == 1 for c in calls)
    assert len(calls) < 5  # requests shared calls


def test_batcher_queue_bound_timeout_and_drain():
    """A full queue refuses (QueueFull), a job past its deadline is never run,
    and stop() answers every queued job before the worker ends."""
    ran = []
    gate = threading.Event()

    def run(key, items):
        gate.wait(5)
        ran.extend(items)
        return items

    async def scenario():
        batcher = Batcher(run, BatchLimits(max_batch=1, max_wait_ms=0, max_queue=2, max_batch_tokens=None))
        batcher.start()
        first = asyncio.ensure_future(batcher.submit("k", ["first"], timeout=5))
        await asyncio.sleep(0.05)  # the worker holds "first"
        late = asyncio.ensure_future(batcher.submit("k", ["late"], timeout=0.05))
        queued = asyncio.ensure_future(batcher.submit("k", ["queued"], timeout=5))
        await asyncio.sleep(0.01)
        with pytest.raises(QueueFull):
            await batcher.submit("k", ["refused"], timeout=5)
        with pytest.raises(asyncio.TimeoutError):
            await late
        gate.set()
        stopping = asyncio.ensure_future(batcher.stop())
        answers = await asyncio.gather(first, queued)
        await stopping
        with pytest.raises(QueueFull):
            await batcher.submit("k", ["after stop"], timeout=5)
        return answers

    assert asyncio.run(scenario()) == [["first"], ["queued"]]
    assert ran == ["first", "queued"]


# -- fair batching, deadlines, cancellation -----------------------------------------------------


def recording_run(calls, delay=0.0):
    def run(key, items):
        calls.append(list(items))
        time.sleep(delay)
        return [f"{key}:{item}" for item in items]

    return run


def test_a_large_request_does_not_starve_a_small_one():
    """The small request, arriving while the large one runs, shares the next
    call and is answered long before the large one."""
    calls = []

    async def scenario():
        batcher = Batcher(recording_run(calls, 0.02), BatchLimits(max_batch=4, max_wait_ms=0, max_queue=10, max_batch_tokens=None))
        batcher.start()
        big = asyncio.ensure_future(batcher.submit("k", [f"big{i}" for i in range(40)], timeout=30))
        await asyncio.sleep(0.03)  # the first call of the big request runs
        submitted_at = len(calls)  # calls started before the small request arrived
        small = await batcher.submit("k", ["small"], timeout=30)
        waited = len(calls) - submitted_at
        results = await big
        await batcher.stop()
        return small, waited, results

    small, waited, results = asyncio.run(scenario())
    assert small == ["k:small"] and results == [f"k:big{i}" for i in range(40)]
    # answered within two calls of its arrival (the one running, then its own), of 10+
    assert waited <= 2 and len(calls) >= 10
    assert all(len(c) <= 4 for c in calls)


def test_a_large_request_gets_its_share_of_a_shared_call():
    """Three requests beside a large one share the token budget equally: the
    large one gets a quarter of the call, not all the room the others leave."""
    calls = []

    async def scenario():
        batcher = Batcher(recording_run(calls, 0.05), BatchLimits(max_batch=32, max_wait_ms=0, max_queue=10, max_batch_tokens=400))
        batcher.start()
        big = asyncio.ensure_future(batcher.submit("k", [f"big{i}" for i in range(20)], timeout=30, costs=[100] * 20))
        await asyncio.sleep(0.02)  # the first call (4 big items) runs
        others = [batcher.submit("k", [f"r{r}.{i}" for i in range(2)], timeout=30, costs=[100, 100]) for r in range(3)]
        await asyncio.gather(big, *others)
        await batcher.stop()

    asyncio.run(scenario())
    assert calls[0] == ["big0", "big1", "big2", "big3"]
    assert sorted(calls[1]) == ["big4", "r0.0", "r1.0", "r2.0"]


def test_short_items_never_wait_behind_more_than_one_long_call():
    """Short items (an eighth of the budget at most) are not padded into long
    calls, and calls alternate between short and long while both wait."""
    calls = []

    async def scenario():
        batcher = Batcher(recording_run(calls, 0.05), BatchLimits(max_batch=32, max_wait_ms=0, max_queue=10, max_batch_tokens=400))
        batcher.start()
        big = asyncio.ensure_future(batcher.submit("k", [f"big{i}" for i in range(12)], timeout=30, costs=[100] * 12))
        await asyncio.sleep(0.02)
        for round in range(3):  # a new short request while each long call runs
            await batcher.submit("k", [f"small{round}"], timeout=30, costs=[10])
        await big
        await batcher.stop()

    asyncio.run(scenario())
    kinds = ["small" if all(i.startswith("small") for i in c) else "big" for c in calls]
    assert all(all(i.startswith("big") for i in c) or all(i.startswith("small") for i in c) for c in calls)
    assert kinds[:6] == ["big", "small", "big", "small", "big", "small"]


def test_token_budget_splits_large_requests():
    calls = []

    async def scenario():
        batcher = Batcher(recording_run(calls), BatchLimits(max_batch=100, max_wait_ms=0, max_queue=10, max_batch_tokens=100))
        batcher.start()
        out = await batcher.submit("k", list(range(10)), timeout=30, costs=[40] * 9 + [500])
        await batcher.stop()
        return out

    assert asyncio.run(scenario()) == [f"k:{i}" for i in range(10)]
    assert [len(c) for c in calls] == [2, 2, 2, 2, 1, 1]  # the item over the budget runs alone


def test_deadline_drops_the_rest_of_a_request():
    calls = []

    async def scenario():
        batcher = Batcher(recording_run(calls, 0.05), BatchLimits(max_batch=1, max_wait_ms=0, max_queue=10, max_batch_tokens=None))
        batcher.start()
        with pytest.raises(asyncio.TimeoutError):
            await batcher.submit("k", list(range(50)), timeout=0.2)
        after = await batcher.submit("k", ["next"], timeout=5)
        await batcher.stop()
        return batcher, after

    batcher, after = asyncio.run(scenario())
    assert after == ["k:next"]
    assert len(calls) <= 7  # ~4 calls fit in 0.2 s; the other ~46 items never ran
    assert batcher.stats["dropped_inputs"] >= 40 and batcher.stats["timed_out"] == 1


def test_cancelled_request_is_dropped():
    calls = []

    async def scenario():
        batcher = Batcher(recording_run(calls, 0.05), BatchLimits(max_batch=1, max_wait_ms=0, max_queue=10, max_batch_tokens=None))
        batcher.start()
        job = asyncio.ensure_future(batcher.submit("k", list(range(50)), timeout=30))
        await asyncio.sleep(0.12)
        job.cancel()
        await asyncio.sleep(0.2)
        await batcher.stop()
        return batcher

    batcher = asyncio.run(scenario())
    assert len(calls) <= 5 and batcher.stats["dropped_inputs"] >= 45
