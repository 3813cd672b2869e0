"""Load benchmarks of the HTTP server, each side by side in one run.

    .venv/bin/python -m bench.serve_load fairness [--model spacy-hf-ner:en_conll03] \
        [--clients 4] [--seconds 10] [--big 2] [--output bench/results/serve_load.json]
    .venv/bin/python -m bench.serve_load batching [--clients 32] [--requests 800]
    .venv/bin/python -m bench.serve_load abuse [--silent 200]

fairness: p50/p99 latency of small requests (one news sentence each) from
`--clients` concurrent clients, alone for `--seconds`, then while a
maximum-size request is in flight (`--max-inputs` inputs, each as long as the
server's --max-windows-per-request allows; `--big` of them, one after
another), on the default server (large requests split into calls of at most
--max-batch-tokens, round-robin with the others) and on the same server with
splitting turned off (`--max-batch 64 --max-batch-tokens 10000000`: the large
request runs as one call, as before).

abuse: the requests of issue 16 against the default server: the next small
request after 20 requests of 4,000 characters abandoned by their clients after
0.5 s, the issue's maximum-size request (64 x 15,000 characters), a 3 KB text
at stride window - 1, at the stride cap and at the default, a client sending
its headers at a byte a second and `--silent` connections that send nothing.

batching: the batching server against a naive one that runs every request on
its own (`--max-batch 1`): requests/s and p50/p99 of `--requests` small
requests from `--clients` clients.

Each server is `python -m spacy_hf_ner serve` in a subprocess; results are
printed and written as JSON (merged into `--output` by scenario).
"""
import argparse
import asyncio
import json
import os
import platform
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

import httpx
import numpy as np

SENTENCES = [
    "Japan began the defence of their Asian Cup title with a lucky 2-1 win against Syria on Friday.",
    "German Chancellor Angela Merkel met French President Emmanuel Macron in Berlin.",
    "Shares of Apple and Microsoft rose on the Nasdaq after the Federal Reserve kept rates unchanged.",
    "The European Commission said on Thursday it disagreed with German advice to consumers.",
    "Rafael Nadal beat Novak Djokovic in the final of the French Open in Paris.",
    "Reuters reported that Toyota will build a new plant in Kentucky.",
    "The United Nations Security Council met in New York to discuss the crisis in Sudan.",
    "Peter Blackburn, a spokesman for the World Health Organization, spoke in Geneva.",
    "Manchester United signed the Dutch striker from Ajax Amsterdam for 40 million pounds.",
    "Prime Minister Narendra Modi visited Tokyo and met executives of Sony and Honda.",
    "Brazil's central bank in Brasilia cut its benchmark rate for the third time this year.",
    "The Boston Celtics defeated the Los Angeles Lakers 112-104 at TD Garden.",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def server(model: str, flags: List[str]) -> Iterator[str]:
    """`spacy-hf-ner serve model *flags` on a free loopback port, until /ready."""
    port = free_port()
    command = [sys.executable, "-m", "spacy_hf_ner", "serve", model, "--port", str(port), "--log-level", "warning", *flags]
    process = subprocess.Popen(command)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 300
        while True:
            try:
                if httpx.get(f"{url}/ready", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.time() > deadline:
                raise RuntimeError(f"the server did not start: {' '.join(command)}")
            time.sleep(0.5)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=60)


def percentiles(latencies: List[float]) -> Dict[str, Any]:
    ms = np.array(latencies) * 1000
    return {
        "requests": len(latencies),
        "p50_ms": round(float(np.percentile(ms, 50)), 1) if len(ms) else None,
        "p99_ms": round(float(np.percentile(ms, 99)), 1) if len(ms) else None,
        "max_ms": round(float(ms.max()), 1) if len(ms) else None,
    }


# -- batching: the batching server against --max-batch 1 -----------------------------------


async def load(url: str, clients: int, total: int) -> Dict[str, Any]:
    latencies: List[float] = []
    counter = iter(range(total))

    async def client(http: httpx.AsyncClient) -> None:
        for i in counter:
            text = SENTENCES[i % len(SENTENCES)]
            start = time.perf_counter()
            response = await http.post("/", json={"inputs": text})
            response.raise_for_status()
            latencies.append(time.perf_counter() - start)

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=300) as http:
        for text in SENTENCES:  # warm-up
            (await http.post("/", json={"inputs": text})).raise_for_status()
        before = (await http.get("/stats")).json()
        start = time.perf_counter()
        await asyncio.gather(*[client(http) for _ in range(clients)])
        elapsed = time.perf_counter() - start
        after = (await http.get("/stats")).json()
    return {
        **percentiles(latencies),
        "seconds": round(elapsed, 2),
        "requests_per_s": round(len(latencies) / elapsed, 1),
        "model_calls": after["batches"] - before["batches"],
        "largest_batch": after["largest_batch"],
    }


def batching(args: argparse.Namespace) -> Dict[str, Any]:
    modes = {
        f"batching (--max-batch {args.max_batch})": ["--max-batch", str(args.max_batch), "--max-wait-ms", str(args.max_wait_ms)],
        "naive (--max-batch 1)": ["--max-batch", "1", "--max-wait-ms", "0"],
    }
    results = {}
    for name, flags in modes.items():
        with server(args.model, flags) as url:
            results[name] = asyncio.run(load(url, args.clients, args.requests))
    batched, naive = results.values()
    print(f"\n{args.model}, {args.clients} concurrent clients, {args.requests} requests per mode, {os.cpu_count()} CPUs")
    print(f"{'server':<28} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'model calls':>12} {'largest batch':>14}")
    for name, r in results.items():
        print(
            f"{name:<28} {r['requests_per_s']:>8} {r['p50_ms']:>8} {r['p99_ms']:>8} "
            f"{r['model_calls']:>12} {r['largest_batch']:>14}"
        )
    ratios = {
        "throughput": round(batched["requests_per_s"] / naive["requests_per_s"], 2),
        "p50": round(naive["p50_ms"] / batched["p50_ms"], 2),
        "p99": round(naive["p99_ms"] / batched["p99_ms"], 2),
    }
    print(f"batching vs naive: {ratios['throughput']}x requests/s, p50 {ratios['p50']}x and p99 {ratios['p99']}x lower")
    return {"clients": args.clients, "requests": args.requests, "results": results, "ratios": ratios}


# -- fairness: small requests alone, and beside a maximum-size request --------------------------


def news(chars: int, offset: int) -> str:
    """About `chars` characters of news sentences."""
    out: List[str] = []
    i = offset
    while sum(len(s) + 1 for s in out) < chars:
        out.append(SENTENCES[i % len(SENTENCES)])
        i += 1
    return " ".join(out)[:chars]


def largest_request(model: str, inputs: int, max_windows: int, max_per_input: int) -> Tuple[Dict[str, Any], int]:
    """The longest `inputs` texts of news whose model windows, counted as the
    server counts them, fit in `max_windows` and `max_per_input` each (binary
    search on the length)."""
    from spacy_hf_ner.serve.schemas import TokenClassificationParameters
    from spacy_hf_ner.serve.worker import PipelineWorker, freeze
    from spacy_hf_ner.sources import load_pipeline

    nlp = load_pipeline(model)
    worker = PipelineWorker(nlp)
    worker.warm_up()
    name = next(iter(worker.components))
    key = ("model", name, freeze(TokenClassificationParameters()))
    low, high = 1, 200_000
    while low < high:
        mid = (low + high + 1) // 2
        costs = worker.cost(key, [news(mid, i) for i in range(inputs)])
        if sum(c.windows for c in costs) > max_windows or max(c.windows for c in costs) > max_per_input:
            high = mid - 1
        else:
            low = mid
    return {"inputs": [news(low, i) for i in range(inputs)]}, low


async def small_load(url: str, clients: int, until: "asyncio.Future[Any]", seconds: Optional[float]) -> List[float]:
    """Latencies of small requests from `clients` clients, sent until `until`
    is done (or for `seconds`)."""
    latencies: List[float] = []
    stop_at = None if seconds is None else time.perf_counter() + seconds

    async def client(http: httpx.AsyncClient, c: int) -> None:
        i = c
        while not until.done() and (stop_at is None or time.perf_counter() < stop_at):
            start = time.perf_counter()
            response = await http.post("/", json={"inputs": SENTENCES[i % len(SENTENCES)]})
            response.raise_for_status()
            latencies.append(time.perf_counter() - start)  # every request started while the big one ran
            i += clients

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=600) as http:
        await asyncio.gather(*[client(http, c) for c in range(clients)])
    return latencies


async def fairness_run(url: str, args: argparse.Namespace, big: Dict[str, Any]) -> Dict[str, Any]:
    async with httpx.AsyncClient(base_url=url, timeout=600) as http:
        for text in SENTENCES:  # warm-up
            (await http.post("/", json={"inputs": text})).raise_for_status()
    never: "asyncio.Future[Any]" = asyncio.get_running_loop().create_future()
    alone = await small_load(url, args.clients, never, args.seconds)
    big_latencies: List[float] = []
    statuses: List[int] = []

    async def big_requests() -> None:
        async with httpx.AsyncClient(base_url=url, timeout=600) as http:
            for _ in range(args.big):
                start = time.perf_counter()
                response = await http.post("/", json=big)
                statuses.append(response.status_code)
                big_latencies.append(time.perf_counter() - start)

    in_flight = asyncio.ensure_future(big_requests())
    await asyncio.sleep(0.2)  # the big request is queued first
    beside = await small_load(url, args.clients, in_flight, None)
    await in_flight
    stats = httpx.get(f"{url}/stats").json()
    return {
        "small_alone": percentiles(alone),
        "small_with_max_request": percentiles(beside),
        "max_requests": {"statuses": statuses, "seconds": [round(t, 2) for t in big_latencies]},
        "model_calls": stats["batches"],
    }


def fairness(args: argparse.Namespace) -> Dict[str, Any]:
    servers = {
        "split (default)": [],
        "unsplit (--max-batch 64 --max-batch-tokens 10000000)": ["--max-batch", "64", "--max-batch-tokens", "10000000"],
    }
    from spacy_hf_ner.serve.config import ServeConfig

    max_windows = ServeConfig().max_windows_per_request
    max_per_input = ServeConfig().max_windows_per_input
    big_inputs = args.big_inputs or args.max_inputs
    big, chars = largest_request(args.model, big_inputs, max_windows, max_per_input)
    results: Dict[str, Any] = {}
    for name, flags in servers.items():
        with server(args.model, [*flags, "--max-inputs", str(args.max_inputs)]) as url:
            results[name] = asyncio.run(fairness_run(url, args, big))
    print(
        f"\n{args.model}: {args.clients} clients of small requests; the maximum-size request: "
        f"{big_inputs} input(s) x {chars} chars (the default --max-windows-per-request and --max-windows-per-input); {os.cpu_count()} CPUs"
    )
    print(f"{'server':<56} {'small alone p50/p99 ms':>24} {'beside max request p50/p99 ms':>31} {'max request s':>14}")
    for name, r in results.items():
        a, b = r["small_alone"], r["small_with_max_request"]
        print(
            f"{name:<56} {a['p50_ms']:>11}/{a['p99_ms']:<12} {b['p50_ms']:>15}/{b['p99_ms']:<15} "
            f"{', '.join(map(str, r['max_requests']['seconds'])):>14}"
        )
    split = results["split (default)"]
    ratio = round(split["small_with_max_request"]["p99_ms"] / split["small_alone"]["p99_ms"], 1)
    print(f"split server: p99 of small requests beside a maximum-size request is {ratio}x their p99 alone")
    return {
        "clients": args.clients,
        "seconds_alone": args.seconds,
        "max_request": {
            "inputs": big_inputs,
            "chars_each": chars,
            "max_windows_per_request": max_windows,
            "max_windows_per_input": max_per_input,
        },
        "results": results,
        "p99_beside_over_alone": ratio,
    }


# -- abuse: the requests of issue 16 against the default server ---------------------------------


async def timed_post(url: str, body: Dict[str, Any], timeout: float = 600) -> Tuple[int, float]:
    async with httpx.AsyncClient(timeout=timeout) as http:
        start = time.perf_counter()
        response = await http.post(f"{url}/", json=body)
        return response.status_code, round(time.perf_counter() - start, 3)


def slow_clients(port: int, connections: int) -> Dict[str, float]:
    """Seconds until the server closes a client sending its headers at one
    byte a second, and until it has closed `connections` silent connections."""
    slow = socket.create_connection(("127.0.0.1", port))
    silent = [socket.create_connection(("127.0.0.1", port)) for _ in range(connections)]
    start = time.time()
    slow.settimeout(1.0)
    for byte in b"POST / HTTP/1.1\r\nHost: localhost\r\nX-Slow: " + b"a" * 600:
        try:
            slow.sendall(bytes([byte]))
            if slow.recv(1) == b"":
                break
        except socket.timeout:
            continue
        except OSError:
            break
    slow_closed = time.time() - start
    for sock in silent:
        sock.settimeout(max(0.1, 600 - (time.time() - start)))
        try:
            sock.recv(1)
        except OSError:
            pass
        sock.close()
    return {"slow_headers_closed_after_s": round(slow_closed, 1), "silent_connections_closed_after_s": round(time.time() - start, 1)}


async def abuse_run(url: str) -> Dict[str, Any]:
    small = {"inputs": SENTENCES[1]}
    await timed_post(url, small)  # warm-up
    out: Dict[str, Any] = {"small_alone": (await timed_post(url, small))}

    async def abandoned(i: int) -> None:
        try:
            await timed_post(url, {"inputs": news(4000, i)}, timeout=0.5)
        except httpx.TimeoutException:
            pass

    await asyncio.gather(*[abandoned(i) for i in range(20)])
    out["small_after_20_abandoned_4k_requests"] = await timed_post(url, small)
    out["issue_max_request_64_x_15k_chars"] = await timed_post(url, {"inputs": [news(15_000, i) for i in range(64)]})
    out["small_after_it"] = await timed_post(url, small)
    text = news(3000, 0)
    out["stride_window_minus_1_3kb"] = await timed_post(url, {"inputs": text, "parameters": {"stride": 253}})
    out["stride_at_the_cap_3kb"] = await timed_post(url, {"inputs": text, "parameters": {"stride": 127}})
    out["stride_default_3kb"] = await timed_post(url, {"inputs": text})
    out["stats"] = httpx.get(f"{url}/stats").json()  # abandoned requests, inputs dropped
    return out


def abuse(args: argparse.Namespace) -> Dict[str, Any]:
    with server(args.model, []) as url:
        results = asyncio.run(abuse_run(url))
        results.update(slow_clients(int(url.rsplit(":", 1)[1]), args.silent))
    print(f"\n{args.model}, the default server, {os.cpu_count()} CPUs (status, seconds):")
    for name, value in results.items():
        if name != "stats":
            print(f"  {name:<40} {value}")
    return {"results": results}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("scenario", choices=["fairness", "batching", "abuse"], nargs="?", default="fairness")
    parser.add_argument("--model", default="spacy-hf-ner:en_conll03", help="pipeline or model to serve")
    parser.add_argument("--clients", type=int, default=None, help="concurrent clients (fairness 4, batching 32)")
    parser.add_argument("--requests", type=int, default=800, help="batching: requests per mode")
    parser.add_argument("--max-batch", type=int, default=32, help="batching: the batching server's --max-batch")
    parser.add_argument("--max-wait-ms", type=float, default=5.0, help="batching: the batching server's --max-wait-ms")
    parser.add_argument("--seconds", type=float, default=10.0, help="fairness: seconds of small requests alone")
    parser.add_argument("--big", type=int, default=2, help="fairness: maximum-size requests, one after another")
    parser.add_argument("--max-inputs", type=int, default=64, help="fairness: the server's --max-inputs (inputs of the maximum-size request)")
    parser.add_argument("--big-inputs", type=int, default=None, help="fairness: inputs of the maximum-size request, each as long as the window limit allows (default: --max-inputs)")
    parser.add_argument("--silent", type=int, default=200, help="abuse: silent connections opened")
    parser.add_argument("--output", default="bench/results/serve_load.json", help="JSON results (merged by scenario)")
    args = parser.parse_args()
    if args.clients is None:
        args.clients = 4 if args.scenario == "fairness" else 32
    report = {"fairness": fairness, "batching": batching, "abuse": abuse}[args.scenario](args)
    output = Path(args.output)
    merged = json.loads(output.read_text()) if output.exists() else {}
    merged[args.scenario] = {
        "model": args.model,
        "cpus": os.cpu_count(),
        "machine": platform.platform(),
        "command": " ".join([".venv/bin/python", "bench/serve_load.py", *sys.argv[1:]]),
        **report,
    }
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(merged, indent=2) + "\n")
    print(f"written: {output}")


if __name__ == "__main__":
    main()
