"""Benchmark the provider sandbox: create-post requests per second for each provider.

Starts a SandboxServer in this process (or uses --url), then drives creates from a few
client processes, each with one keep-alive requests.Session, all starting at the same
instant and stopping after --seconds. Every request is a distinct post (unique
external_id / x-request-id and content) so nothing is short-circuited.

    .venv/bin/python bench/sandbox.py --seconds 5 --clients 3
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import sys
import time
from collections import Counter
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from bench.harness import percentile  # noqa: E402

KEYS = {"postforme": "bench_postforme_key_0001", "late": "bench_late_key_0001"}


def _client(
    provider: str, base: str, start_at: float, seconds: float, worker: int
) -> tuple[int, dict[int, int], list[float]]:
    """One client process: creates as fast as one keep-alive connection allows."""
    import requests

    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {KEYS[provider]}"
    if provider == "postforme":
        accounts = session.get(f"{base}/postforme/v1/social-accounts", timeout=10).json()["data"]
        account = next(a for a in accounts if a["platform"] == "x")
        url = f"{base}/postforme/v1/social-posts"
    else:
        accounts = session.get(f"{base}/late/api/v1/accounts", timeout=10).json()["accounts"]
        account = next(a for a in accounts if a["platform"] == "twitter")
        url = f"{base}/late/api/v1/posts"
    statuses: Counter[int] = Counter()
    latencies: list[float] = []
    time.sleep(max(0.0, start_at - time.time()))
    deadline = start_at + seconds
    i = 0
    while True:
        now = time.perf_counter()
        if time.time() >= deadline:
            break
        ident = f"bench-{os.getpid()}-{worker}-{i}"
        if provider == "postforme":
            payload: dict[str, Any] = {
                "caption": f"benchmark post {ident}",
                "social_accounts": [account["id"]],
                "external_id": ident,
            }
            resp = session.post(url, json=payload, timeout=10)
        else:
            payload = {
                "content": f"benchmark post {ident}",
                "platforms": [{"platform": "twitter", "accountId": account["_id"]}],
                "publishNow": True,
            }
            resp = session.post(url, json=payload, headers={"x-request-id": ident}, timeout=10)
        latencies.append(time.perf_counter() - now)
        statuses[resp.status_code] += 1
        i += 1
    return i, dict(statuses), latencies


def run(provider: str, base: str, clients: int, seconds: float) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    start_at = time.time() + 2.0  # time for the spawned interpreters to import requests
    with ctx.Pool(clients) as pool:
        results = pool.starmap(
            _client, [(provider, base, start_at, seconds, n) for n in range(clients)]
        )
    total = sum(r[0] for r in results)
    statuses: Counter[int] = Counter()
    latencies: list[float] = []
    for _, codes, lats in results:
        statuses.update(codes)
        latencies.extend(lats)
    return {
        "provider": provider,
        "requests": total,
        "rps": total / seconds,
        "statuses": dict(statuses),
        "p50_ms": percentile(latencies, 50) * 1000,
        "p99_ms": percentile(latencies, 99) * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="measured time per provider")
    parser.add_argument("--clients", type=int, default=3, help="client processes per provider")
    parser.add_argument(
        "--url", help="bench a running sandbox (started with --accept-any-key) instead"
    )
    parser.add_argument("--provider", choices=["postforme", "late", "both"], default="both")
    args = parser.parse_args()

    server = None
    base = args.url
    if base is None:
        from providers.sandbox import SandboxServer

        server = SandboxServer(accept_any_key=True).start()
        base = server.url
    else:
        base = base.rstrip("/")
    providers = ["postforme", "late"] if args.provider == "both" else [args.provider]
    try:
        print(f"sandbox at {base}; {args.clients} client processes, {args.seconds:g} s each")
        for provider in providers:
            result = run(provider, base, args.clients, args.seconds)
            print(
                f"{provider:>9} creates: {result['rps']:8.0f} req/s "
                f"({result['requests']} requests, statuses {result['statuses']}, "
                f"p50 {result['p50_ms']:.2f} ms, p99 {result['p99_ms']:.2f} ms)"
            )
        if server is not None:
            stats = server.stats()
            print(
                "server counted creates:",
                {p: stats[p]["creates"] for p in providers},
            )
    finally:
        if server is not None:
            server.stop()


if __name__ == "__main__":
    main()
