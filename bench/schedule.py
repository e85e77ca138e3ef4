"""Benchmark: how late do scheduled posts leave?

Schedules N posts (through `social.publish_post` with `scheduled_for`) due evenly over
a window, runs a worker and beat, and measures each post's lateness: the moment its
create request reached the provider (the sandbox's request log) minus its scheduled
time. Baseline, same run: N posts published immediately at the same rate, measured from
the moment they were sent to their create request. Target: p99 lateness <= 1.5 s.

Usage: .venv/bin/python bench/schedule.py [--posts 2000] [--window 10] [--concurrency 4]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import (  # noqa: E402
    Env,
    bench_env,
    bench_user,
    count_final,
    percentile,
    wait_final,
)

TARGET = 1.5  # seconds, p99 lateness


def _create_times(env: Env) -> dict[str, float]:
    """post id -> when its (first) create request reached the sandbox."""
    out: dict[str, float] = {}
    for r in env.sandbox.requests("postforme"):
        ext = r.get("external_id")
        if r.get("method") == "POST" and ext:
            post_id = ext.rsplit("-s", 1)[0]
            out.setdefault(post_id, r["at"])
    return out


def _wait_recorded(env: Env, n: int, timeout: float) -> None:
    """Until `n` posts are in PostgreSQL (the worker's intake took every message)."""
    deadline = time.monotonic() + timeout
    while sum(count_final(env.dsn).values()) < n:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{sum(count_final(env.dsn).values())}/{n} recorded")
        time.sleep(0.1)


def _summary(label: str, values: list[float]) -> str:
    return (
        f"{label:<28} p50 {statistics.median(values):6.3f} s   p99 {percentile(values, 99):6.3f} s"
        f"   max {max(values):6.3f} s"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=2000)
    parser.add_argument("--window", type=float, default=10.0, help="seconds the posts span")
    parser.add_argument("--lead", type=float, default=30.0,
                        help="seconds until the first is due (every post is accepted first)")
    parser.add_argument("--concurrency", type=int, default=None,
                        help="the worker's (default: the shipped one)")
    parser.add_argument("--pool", default=None, help="the worker's (default: the shipped one)")
    args = parser.parse_args()

    with bench_env({"SOCIALPOST_RELEASE_INTERVAL": "1"}) as env:
        from worker.celery_app import app

        user, _, _ = bench_user(env, ("twitter", "linkedin"))
        env.stack.worker(concurrency=args.concurrency, pool=args.pool, loglevel="warning")
        env.stack.beat()

        n = args.posts
        first_due = datetime.now(UTC) + timedelta(seconds=args.lead)
        due: dict[str, datetime] = {}
        for i in range(n):
            post_id = str(uuid.uuid4())
            when = first_due + timedelta(seconds=args.window * i / n)
            due[post_id] = when
            app.send_task(
                "social.publish_post",
                kwargs={
                    "user_id": user,
                    "content": f"scheduled {i}",
                    "platforms": ["twitter"],
                    "scheduled_for": when.isoformat(),
                    "post_id": post_id,
                },
            )
        sent_by = datetime.now(UTC)
        _wait_recorded(env, n, args.lead + args.window + 60)
        accepted_by = datetime.now(UTC)  # every row in PostgreSQL: lateness is beat's now
        counts = wait_final(env, n, args.lead + args.window + 120)
        created = _create_times(env)
        late = [created[p] - due[p].timestamp() for p in due if p in created]

        # Baseline: immediate posts at the same rate, from send to create request.
        sent: dict[str, float] = {}
        gap = args.window / n
        start = time.perf_counter()
        for i in range(n):
            post_id = str(uuid.uuid4())
            sent[post_id] = time.time()
            app.send_task(
                "social.publish_post",
                kwargs={
                    "user_id": user,
                    "content": f"now {i}",
                    "platforms": ["twitter"],
                    "post_id": post_id,
                },
            )
            pause = start + (i + 1) * gap - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
        wait_final(env, 2 * n, 180)
        created = _create_times(env)
        immediate = [created[p] - sent[p] for p in sent if p in created]

        print(
            f"worker -P {args.pool or 'shipped'} -c {args.concurrency or 'shipped'}; "
            f"posts={n} due over {args.window:.0f} s; all sent "
            f"{(first_due - sent_by).total_seconds():.1f} s and all accepted "
            f"{(first_due - accepted_by).total_seconds():.1f} s before the first was due"
            + ("" if accepted_by < first_due else
               "  (NOT all accepted in time: raise --lead, or the lateness is intake's)")
        )
        print(_summary("scheduled: lateness", late)
              + f"   (target p99 <= {TARGET} s: "
              f"{'met' if percentile(late, 99) <= TARGET else 'NOT met'})")
        print(_summary("baseline: immediate latency", immediate))
        ratio = percentile(late, 99) / percentile(immediate, 99)
        print(f"p99 lateness / p99 immediate latency = {ratio:.2f}x")
        early = sum(1 for v in late if v < 0)
        print(f"sent early: {early}; missing creates: {n - len(late)}; statuses: {counts}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
