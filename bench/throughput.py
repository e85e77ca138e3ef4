"""Benchmark: posts end to end vs Celery alone vs the one unavoidable HTTP call.

In one run, on one broker, one worker and one sandbox:
  * noop:  N tasks that do nothing (Celery's own cost per task);
  * floor: N tasks that make only the create-post HTTP call to the sandbox;
  * e2e:   N `social.publish_post` messages sent by name, timed until every post is final
           in PostgreSQL (validation, ledger, failover bookkeeping, the create call, and
           the confirmation: a post is final only once beat's sweep has read every
           platform's result from PostForMe).
Prints the three rates and e2e / floor (target: e2e >= 0.8x floor), and the confirmation
lag: from the platform's publish time (the sandbox's result) to our record of it.

Usage: .venv/bin/python bench/throughput.py [--posts 2000] [--concurrency 4] [--pool prefork]
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from celery import Celery  # noqa: E402

from bench.harness import Env, bench_env, count_final, proc_stats  # noqa: E402


def _wait_counter(env: Env, counter: str, n: int, timeout: float) -> None:
    import redis

    r = redis.Redis.from_url(env.redis_url)
    deadline = time.monotonic() + timeout
    while int(r.get(counter) or 0) < n:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{counter}: {int(r.get(counter) or 0)}/{n} after {timeout}s")
        time.sleep(0.02)


def cpu_by_program() -> dict[str, float]:
    """CPU seconds used so far by every process on the machine, summed by program name,
    so a phase's cost can be split between Celery, PostgreSQL, Redis and this process."""
    import os

    tick = os.sysconf("SC_CLK_TCK")
    out: dict[str, float] = {}
    for pid, name, fields in proc_stats():
        used = (int(fields[11]) + int(fields[12])) / tick
        key = "bench+sandbox" if pid == os.getpid() else name.split(":")[0][:15]
        out[key] = out.get(key, 0.0) + used
    return out


def cpu_delta(before: dict[str, float], after: dict[str, float], n: int) -> str:
    diff = {k: after.get(k, 0.0) - before.get(k, 0.0) for k in after}
    top = sorted(((v, k) for k, v in diff.items() if v > 0.05), reverse=True)[:6]
    return ", ".join(f"{k} {v * 1000 / n:.2f}" for v, k in top)


def run_noop(env: Env, app: Celery, n: int) -> float:
    counter = f"noop-{uuid.uuid4().hex[:6]}"
    start = time.perf_counter()
    for _ in range(n):
        app.send_task("bench.noop", (counter,), queue="social.publish")
    _wait_counter(env, counter, n, 300)
    return n / (time.perf_counter() - start)


def run_floor(env: Env, app: Celery, n: int, key: str, accounts: list[str]) -> float:
    counter = f"floor-{uuid.uuid4().hex[:6]}"
    start = time.perf_counter()
    for i in range(n):
        app.send_task(
            "bench.floor",
            (counter, env.sandbox.postforme_url, key, accounts, i),
            queue="social.publish",
        )
    _wait_counter(env, counter, n, 300)
    return n / (time.perf_counter() - start)


def run_e2e(env: Env, app: Celery, n: int, user: str) -> tuple[float, dict[str, int]]:
    before = sum(count_final(env.dsn).values())
    start = time.perf_counter()
    for i in range(n):
        app.send_task(
            "social.publish_post",
            kwargs={
                "user_id": user,
                "content": f"bench post {i}",
                "platforms": ["twitter", "linkedin"],
                "post_id": str(uuid.uuid4()),
            },
        )
    deadline = time.monotonic() + 600
    while True:
        counts = count_final(env.dsn)
        done = sum(v for k, v in counts.items() if k not in ("queued", "publishing", "scheduled"))
        if done - before >= n:
            break
        if time.monotonic() > deadline:
            raise TimeoutError(f"e2e: {counts}")
        time.sleep(0.05)
    return n / (time.perf_counter() - start), counts


def confirmation_lag(dsn: str) -> tuple[float, float] | None:
    """p50 / p99 seconds from a platform's publish time to the target's recorded posted."""
    import psycopg

    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            """SELECT percentile_cont(ARRAY[0.5, 0.99]) WITHIN GROUP (
                          ORDER BY extract(epoch FROM updated_at - published_at))
               FROM post_targets WHERE status = 'posted' AND published_at IS NOT NULL"""
        ).fetchone()
    return (float(row[0][0]), float(row[0][1])) if row and row[0] else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--pool", default="prefork")
    args = parser.parse_args()

    with bench_env({"SOCIALPOST_RESULTS_DELAY": "1"}) as env:
        from db import credentials
        from db.pool import connect
        from db.vault import Vault
        from worker.celery_app import app

        app.conf.broker_url = env.redis_url
        app.conf.result_backend = env.redis_url
        key = "bench-pfm-" + uuid.uuid4().hex
        accounts = [
            a["id"] for a in env.sandbox.register_key("postforme", key, ["twitter", "linkedin"])
        ]
        user = str(uuid.uuid4())
        with connect(env.dsn) as conn:
            credentials.save_credentials(conn, Vault.from_env(), user, "postforme", key)
        env.stack.env["SOCIALPOST_ACCOUNTS_CACHE_SECONDS"] = "300"
        env.stack.worker(
            concurrency=args.concurrency,
            pool=args.pool,
            extra=["-I", "bench.benchtasks"],
            loglevel="warning",
        )
        env.stack.beat()  # its sweep confirms: a post is final once its platforms answered
        # warm up: connections, account cache, imports in every child
        run_noop(env, app, 50)
        run_floor(env, app, 50, key, accounts)
        run_e2e(env, app, 50, user)

        n = args.posts
        c0 = cpu_by_program()
        noop = run_noop(env, app, n)
        c1 = cpu_by_program()
        floor = run_floor(env, app, n, key, accounts)
        c2 = cpu_by_program()
        e2e, counts = run_e2e(env, app, n, user)
        c3 = cpu_by_program()
        print(f"posts={n} worker: -P {args.pool} -c {args.concurrency}")
        print(f"{'noop tasks':<22}{noop:>10.0f} /s")
        print(f"{'floor (1 HTTP call)':<22}{floor:>10.0f} /s")
        print(f"{'end to end':<22}{e2e:>10.0f} /s")
        print(f"e2e / floor = {e2e / floor:.2f}x   e2e / noop = {e2e / noop:.2f}x")
        print(f"final statuses: {counts}")
        lag = confirmation_lag(env.dsn)
        if lag:
            print(f"confirmation lag (platform result -> recorded): p50 {lag[0]:.2f} s, "
                  f"p99 {lag[1]:.2f} s")
        print("CPU ms per item, by program:")
        print(f"  noop:  {cpu_delta(c0, c1, n)}")
        print(f"  floor: {cpu_delta(c1, c2, n)}")
        print(f"  e2e:   {cpu_delta(c2, c3, n)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
