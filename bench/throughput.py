"""Benchmark: posts end to end vs Celery alone vs the one unavoidable HTTP call.

In one run, on one broker and one sandbox:
  * noop:  N tasks that do nothing (Celery's own cost per task), on a worker of its own
           (threads x8, its own queue);
  * floor: N tasks that make only the create-post HTTP call to the sandbox, same worker;
  * e2e:   N `social.publish_post` messages sent by name to a worker at the shipped
           defaults (pool and concurrency from celeryconfig unless --pool/--concurrency),
           timed until every post is final in PostgreSQL (validation, ledger, failover
           bookkeeping, the create call, and the confirmation: a post is final only once
           beat's sweep has read every platform's result from PostForMe). The moment the
           last create reached the sandbox is printed too ("created").
Prints the rates, e2e / floor beside its target (>= 0.8x), the confirmation lag, and the
CPU per post of each of our processes (worker, beat, private Redis, this process with the
producer and the sandbox) and of PostgreSQL (every postgres process on the machine: on a
shared machine it includes other users' work). Last, the CPU ceiling: the machine's cores
divided by e2e's CPU per post in all programs, the most e2e could reach here with every
core busy; when it is below the target, no worker change alone can meet it.

Usage: .venv/bin/python bench/throughput.py [--posts 2000] [--pool threads] [--concurrency 8]
                                            [--workers 1]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psutil  # noqa: E402
from celery import Celery  # noqa: E402

from bench.harness import Env, bench_env, bench_user, count_final, until_final  # noqa: E402

TARGET = 0.8  # e2e / floor
FLOOR_QUEUE = "bench.floor"


def _wait_counter(env: Env, counter: str, n: int, timeout: float) -> None:
    import redis

    r = redis.Redis.from_url(env.redis_url)
    deadline = time.monotonic() + timeout
    while int(r.get(counter) or 0) < n:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{counter}: {int(r.get(counter) or 0)}/{n} after {timeout}s")
        time.sleep(0.02)


def _tree_cpu(pid: int, children: bool = True) -> float:
    """CPU seconds of a process and, with `children`, of its descendants (a prefork
    worker's pool)."""
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)] if children else [root]
    except psutil.NoSuchProcess:
        return 0.0
    total = 0.0
    for proc in procs:
        try:
            t = proc.cpu_times()
            total += t.user + t.system
        except psutil.NoSuchProcess:
            continue
    return total


def cpu_by_program(pids: dict[str, int]) -> dict[str, float]:
    """CPU seconds used so far by each of our labelled process trees, and by PostgreSQL
    (all its processes: the server is shared)."""
    # This process started the workers, beat and Redis: its own tree would count them
    # all a second time.
    out = {label: _tree_cpu(pid, children=pid != os.getpid()) for label, pid in pids.items()}
    out["postgres*"] = 0.0
    for proc in psutil.process_iter(["name"]):
        if proc.info["name"] in ("postgres", "postmaster"):
            try:
                t = proc.cpu_times()
                out["postgres*"] += t.user + t.system
            except psutil.NoSuchProcess:
                continue
    return out


def cpu_delta(before: dict[str, float], after: dict[str, float], n: int) -> str:
    diff = {k: after.get(k, 0.0) - before.get(k, 0.0) for k in after}
    top = sorted(((v, k) for k, v in diff.items() if v > 0.0), reverse=True)
    total = sum(v for v, k in top if k != "postgres*")
    return ", ".join(f"{k} {v * 1000 / n:.2f}" for v, k in top) + (
        f"   (ours without postgres: {total * 1000 / n:.2f})")


def cpu_per_item(before: dict[str, float], after: dict[str, float], n: int) -> float:
    """Seconds of CPU per item, every program measured (PostgreSQL included)."""
    return sum(max(0.0, after.get(k, 0.0) - before.get(k, 0.0)) for k in after) / n


def cpu_ceiling(cores: int, floor: float, per_post: float) -> str:
    """The most any run could reach if it spent `per_post` CPU seconds a post across all
    programs and kept every core busy: the ratio e2e / floor cannot exceed this here."""
    most = cores / per_post
    return (f"CPU ceiling for e2e on {cores} cores: {per_post * 1000:.2f} ms a post in all "
            f"-> at most {most:.0f}/s = {most / floor:.2f}x the floor")


def run_noop(env: Env, app: Celery, n: int) -> float:
    counter = f"noop-{uuid.uuid4().hex[:6]}"
    start = time.perf_counter()
    for _ in range(n):
        app.send_task("bench.noop", (counter,), queue=FLOOR_QUEUE)
    _wait_counter(env, counter, n, 300)
    return n / (time.perf_counter() - start)


def run_floor(env: Env, app: Celery, n: int, key: str, accounts: list[str]) -> float:
    counter = f"floor-{uuid.uuid4().hex[:6]}"
    start = time.perf_counter()
    for i in range(n):
        app.send_task(
            "bench.floor",
            (counter, env.sandbox.postforme_url, key, accounts, i),
            queue=FLOOR_QUEUE,
        )
    _wait_counter(env, counter, n, 300)
    return n / (time.perf_counter() - start)


def run_e2e(env: Env, app: Celery, n: int, user: str) -> tuple[float, float, dict[str, int]]:
    """(posts/s until the last create reached the sandbox, posts/s until all final,
    final statuses)."""
    before = sum(count_final(env.dsn).values())
    creates = env.sandbox.creates("postforme")
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
    created = 0.0

    def watch_creates() -> None:
        nonlocal created
        if not created and env.sandbox.creates("postforme") - creates >= n:
            created = time.perf_counter() - start

    counts = until_final(env.dsn, before + n, 600, on_poll=watch_creates)
    final = time.perf_counter() - start
    return n / (created or final), n / final, counts


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
    parser.add_argument("--concurrency", type=int, default=None,
                        help="the e2e worker's (default: the shipped one)")
    parser.add_argument("--pool", default=None, help="the e2e worker's (default: the shipped one)")
    parser.add_argument("--workers", type=int, default=1,
                        help="e2e worker processes (default 1: one `socialpost worker`; a "
                             "worker is one process, so more use more cores)")
    args = parser.parse_args()

    with bench_env({"SOCIALPOST_RESULTS_DELAY": "1"}) as env:
        from worker.celery_app import app

        user, key, accounts = bench_user(env)
        env.stack.env["SOCIALPOST_ACCOUNTS_CACHE_SECONDS"] = "300"
        floor_worker = env.stack.worker(concurrency=8, pool="threads", queues=FLOOR_QUEUE,
                                        extra=["-I", "bench.benchtasks"], loglevel="warning")
        workers = [env.stack.worker(concurrency=args.concurrency, pool=args.pool,
                                    loglevel="warning") for _ in range(max(1, args.workers))]
        beat = env.stack.beat()  # its sweep confirms: a post is final once its platforms answered
        pids = {"floor-worker": floor_worker.popen.pid, "beat": beat.popen.pid,
                "bench+sandbox": os.getpid()}
        for i, worker in enumerate(workers):
            pids["worker" if i == 0 else f"worker{i + 1}"] = worker.popen.pid
        if env.redis_pid:
            pids["redis"] = env.redis_pid
        # warm up: connections, account cache, imports in every child
        run_noop(env, app, 50)
        run_floor(env, app, 50, key, accounts)
        run_e2e(env, app, 50, user)

        n = args.posts
        c0 = cpu_by_program(pids)
        noop = run_noop(env, app, n)
        c1 = cpu_by_program(pids)
        floor = run_floor(env, app, n, key, accounts)
        c2 = cpu_by_program(pids)
        created, e2e, counts = run_e2e(env, app, n, user)
        c3 = cpu_by_program(pids)
        shape = (f"-P {args.pool or 'shipped'} -c {args.concurrency or 'shipped'}"
                 + (f" x{args.workers} processes" if args.workers > 1 else ""))
        print(f"posts={n}; noop/floor worker -P threads -c 8; e2e worker {shape}")
        print(f"{'noop tasks':<24}{noop:>8.0f} /s")
        print(f"{'floor (1 HTTP call)':<24}{floor:>8.0f} /s")
        print(f"{'end to end: created':<24}{created:>8.0f} /s   (every create at the provider)")
        print(f"{'end to end: final':<24}{e2e:>8.0f} /s   (every post confirmed)")
        print(f"e2e / floor = {e2e / floor:.2f}x (target >= {TARGET}x: "
              f"{'met' if e2e / floor >= TARGET else 'NOT met'});  created / floor = "
              f"{created / floor:.2f}x;  e2e / noop = {e2e / noop:.2f}x")
        print(f"final statuses: {counts}")
        lag = confirmation_lag(env.dsn)
        if lag:
            print(f"confirmation lag (platform result -> recorded): p50 {lag[0]:.2f} s, "
                  f"p99 {lag[1]:.2f} s")
        print("CPU ms per item, by program (postgres*: machine-wide):")
        print(f"  noop:  {cpu_delta(c0, c1, n)}")
        print(f"  floor: {cpu_delta(c1, c2, n)}")
        print(f"  e2e:   {cpu_delta(c2, c3, n)}")
        print(cpu_ceiling(psutil.cpu_count() or 1, floor, cpu_per_item(c2, c3, n)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
