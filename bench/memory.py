"""Benchmark: does a worker's memory stay flat over many posts and many users' keys?

Runs one worker (the shipped pool and concurrency unless told) and beat against the
sandbox, and publishes posts for `--users` users, each with a PostForMe key of their own
(round robin, so the per-key caches see every key again and again, and more keys than
SOCIALPOST_CLIENT_CACHE_SIZE when told). After each checkpoint (every post final in
PostgreSQL) it reads the resident memory of the worker's whole process tree. Target: RSS
after the last checkpoint within 10 % of RSS after the first (10,000 and 100,000 posts
by default; `--posts 20000 --first 2000` for a quick run).

Usage: .venv/bin/python bench/memory.py [--posts 100000] [--first 10000] [--users 1500]
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psutil  # noqa: E402

from bench.harness import bench_env, bench_user, wait_final  # noqa: E402

TARGET = 0.10  # RSS growth allowed from the first checkpoint to the last


def tree_rss(pid: int) -> int:
    """Resident bytes of a process and all its children (prefork children included)."""
    root = psutil.Process(pid)
    total = 0
    for proc in [root, *root.children(recursive=True)]:
        try:
            total += proc.memory_info().rss
        except psutil.NoSuchProcess:
            continue
    return total


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=100_000)
    parser.add_argument("--first", type=int, default=10_000, help="the first checkpoint")
    parser.add_argument("--checkpoints", type=int, default=4,
                        help="RSS readings from --first to --posts")
    parser.add_argument("--users", type=int, default=1500,
                        help="users, each with a key of their own")
    parser.add_argument("--pool", default=None, help="worker pool (default: the shipped one)")
    parser.add_argument("--concurrency", type=int, default=None)
    args = parser.parse_args()

    with bench_env({"SOCIALPOST_RESULTS_DELAY": "0"}) as env:
        from db.pool import connect
        from worker.celery_app import app

        with connect(env.dsn) as conn:
            users = [bench_user(env, ("twitter",), conn)[0] for _ in range(args.users)]
        options = {k: v for k, v in (("pool", args.pool), ("concurrency", args.concurrency))
                   if v is not None}
        worker = env.stack.worker(loglevel="warning", **options)
        env.stack.beat()

        marks = [args.first + (args.posts - args.first) * i // max(1, args.checkpoints - 1)
                 for i in range(args.checkpoints)]
        sent, readings = 0, []
        start = time.perf_counter()
        for mark in marks:
            while sent < mark:
                user = users[sent % len(users)]
                app.send_task("social.publish_post", ignore_result=True, kwargs={
                    "user_id": user, "content": f"memory {sent}", "platforms": ["twitter"],
                    "post_id": str(uuid.uuid4())})
                sent += 1
                if sent % 2000 == 0:  # keep the queue short: the worker's memory, not Redis'
                    wait_final(env, sent - 1000, 600)
            wait_final(env, mark, 600)
            rss = tree_rss(worker.popen.pid)
            readings.append((mark, rss))
            print(f"after {mark:>7} posts: worker RSS {rss / 2**20:7.1f} MiB   "
                  f"({time.perf_counter() - start:6.0f} s)", flush=True)

        first, last = readings[0][1], readings[-1][1]
        growth = (last - first) / first
        print(f"users/keys {args.users}; growth {readings[0][0]} -> {readings[-1][0]} posts: "
              f"{growth * 100:+.1f} %   (target <= {TARGET * 100:.0f} %: "
              f"{'met' if growth <= TARGET else 'NOT met'})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
