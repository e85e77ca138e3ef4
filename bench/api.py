"""Benchmark: posts accepted per second through the HTTP API vs `send_task`, in one run.

In one run, on one private Redis and one scratch database (no worker: this measures
acceptance, not publishing):
  * send_task: N `social.publish_post` messages sent by name (a producer that only has the
    broker: nothing is stored until a worker takes the message);
  * client:    N posts through tasks.client.PublishClient in this process (validation, the
    row written, then the message sent: the code the API runs);
  * api:       N `POST /v1/posts` to `socialpost api` from --clients concurrent keep-alive
    connections (bearer token, the same validation, row and message, plus HTTP).
Prints the three rates, api / send_task (target >= 0.5x), api / client, and the API's
accept latency (p50, p99) as its callers see it.

Usage: .venv/bin/python bench/api.py [--posts 2000] [--clients 8] [--api-workers 2]
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import requests  # noqa: E402

from bench.harness import Env, bench_env, free_port, percentile  # noqa: E402

PLATFORMS = ["twitter", "linkedin"]


def body(user: str, i: int) -> dict[str, object]:
    return {"user_id": user, "content": f"bench post {i}", "platforms": PLATFORMS}


def run_send_task(n: int, user: str) -> float:
    from worker.celery_app import app

    start = time.perf_counter()
    for i in range(n):
        app.send_task("social.publish_post", ignore_result=True,
                      kwargs={**body(user, i), "post_id": str(uuid.uuid4())})
    return n / (time.perf_counter() - start)


def run_client(n: int, user: str) -> float:
    from tasks.client import PublishClient

    client = PublishClient()
    start = time.perf_counter()
    for i in range(n):
        client.enqueue_post(user, f"bench post {i}", PLATFORMS)
    return n / (time.perf_counter() - start)


def run_api(url: str, token: str, n: int, user: str, clients: int
            ) -> tuple[float, list[float]]:
    """N posts from `clients` threads, each on its own keep-alive session."""
    latencies: list[float] = []
    failures: list[str] = []
    lock = threading.Lock()
    counter = iter(range(n))

    def caller() -> None:
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {token}"
        mine: list[float] = []
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                break
            t0 = time.perf_counter()
            answer = session.post(f"{url}/v1/posts", json=body(user, i), timeout=30)
            mine.append(time.perf_counter() - t0)
            if answer.status_code != 202:
                failures.append(f"{answer.status_code}: {answer.text[:200]}")
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=caller) for _ in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    if failures:
        raise RuntimeError(f"{len(failures)} requests refused, e.g. {failures[0]}")
    return n / elapsed, latencies


def start(env: Env, workers: int) -> tuple[str, str, str]:
    """The API process, a user and a token scoped to that user."""
    from db import tokens
    from db.pool import connect

    port = free_port()
    env.stack.api(port, workers=workers)
    user = str(uuid.uuid4())
    with connect(env.dsn) as conn:
        token = tokens.create_token(conn, "bench", [user])[1]
    return f"http://127.0.0.1:{port}", user, token


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=8, help="concurrent API callers")
    parser.add_argument("--api-workers", type=int, default=2, help="uvicorn processes")
    args = parser.parse_args()

    with bench_env({"SOCIALPOST_DB_POOL_MAX": "8"}) as env:
        from worker.celery_app import app

        app.conf.broker_url = env.redis_url
        url, user, token = start(env, args.api_workers)
        # warm up: connections, pools, imports in every server process
        run_send_task(50, user)
        run_client(50, user)
        run_api(url, token, 100, user, args.clients)

        n = args.posts
        sent = run_send_task(n, user)
        client = run_client(n, user)
        api, latencies = run_api(url, token, n, user, args.clients)
        print(f"posts={n} api: --workers {args.api_workers}, {args.clients} clients")
        print(f"{'send_task by name':<24}{sent:>10.0f} /s")
        print(f"{'PublishClient':<24}{client:>10.0f} /s")
        print(f"{'POST /v1/posts':<24}{api:>10.0f} /s")
        print(f"api / send_task = {api / sent:.2f}x (target >= 0.5x)   "
              f"api / client = {api / client:.2f}x")
        print(f"accept latency: p50 {percentile(latencies, 50) * 1000:.1f} ms, "
              f"p99 {percentile(latencies, 99) * 1000:.1f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
