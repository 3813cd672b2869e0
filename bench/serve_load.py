"""Load benchmark of the HTTP server: the batching server against a naive one
that runs every request on its own (`--max-batch 1`), same model, same clients.

    .venv/bin/python bench/serve_load.py [--model spacy-hf-ner:en_conll03] \
        [--clients 32] [--requests 800] [--output bench/serve_load.json]

Each mode starts `python -m spacy_hf_ner serve` in a subprocess, waits for
/ready, warms up, then `--clients` concurrent clients send `--requests` token
classification requests in total (one short news sentence each, Inference API
payload) as fast as they are answered. Prints requests/s and p50/p99 latency per
mode, and writes them as JSON.
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
from pathlib import Path
from typing import Any, Dict, List

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
    ms = np.array(latencies) * 1000
    return {
        "requests": len(latencies),
        "seconds": round(elapsed, 2),
        "requests_per_s": round(len(latencies) / elapsed, 1),
        "p50_ms": round(float(np.percentile(ms, 50)), 1),
        "p99_ms": round(float(np.percentile(ms, 99)), 1),
        "model_calls": after["batches"] - before["batches"],
        "largest_batch": after["largest_batch"],
    }


def run_mode(model: str, max_batch: int, max_wait_ms: float, clients: int, total: int) -> Dict[str, Any]:
    port = free_port()
    command = [
        sys.executable, "-m", "spacy_hf_ner", "serve", model, "--port", str(port),
        "--max-batch", str(max_batch), "--max-wait-ms", str(max_wait_ms), "--log-level", "warning",
    ]
    server = subprocess.Popen(command)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 300
        while True:
            try:
                if httpx.get(f"{url}/ready", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if server.poll() is not None or time.time() > deadline:
                raise RuntimeError(f"the server did not start: {' '.join(command)}")
            time.sleep(0.5)
        return asyncio.run(load(url, clients, total))
    finally:
        server.terminate()
        server.wait(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="spacy-hf-ner:en_conll03", help="pipeline or model to serve")
    parser.add_argument("--clients", type=int, default=32, help="concurrent clients")
    parser.add_argument("--requests", type=int, default=800, help="requests per mode")
    parser.add_argument("--max-batch", type=int, default=32, help="the batching server's --max-batch")
    parser.add_argument("--max-wait-ms", type=float, default=5.0, help="the batching server's --max-wait-ms")
    parser.add_argument("--output", default="bench/serve_load.json", help="JSON results")
    args = parser.parse_args()
    modes = {
        f"batching (--max-batch {args.max_batch})": (args.max_batch, args.max_wait_ms),
        "naive (--max-batch 1)": (1, 0.0),
    }
    results = {name: run_mode(args.model, b, w, args.clients, args.requests) for name, (b, w) in modes.items()}
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
    report = {
        "model": args.model,
        "clients": args.clients,
        "requests": args.requests,
        "cpus": os.cpu_count(),
        "machine": platform.platform(),
        "results": results,
        "ratios": ratios,
    }
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(report, indent=2) + "\n")
    print(f"written: {args.output}")


if __name__ == "__main__":
    main()
