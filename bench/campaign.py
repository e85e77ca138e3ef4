"""Benchmark: how fast does `enqueue_campaign` get a big calendar accepted?

Creates a campaign of N batches (one a minute from an hour ahead, so none publishes during
the run; `--due` makes a fraction of them due now), starts one worker, and times
`PublishClient.enqueue_campaign` from the call until every batch's post is recorded in
PostgreSQL (accepted: `scheduled`, `queued` or further). Counting rows, not messages, keeps
the figure honest whichever side records them. Then times a repeat of the same call (ids
derive from the request: nothing new is written, due posts are offered once more).
Target: >= 2,000 posts/s accepted for 5,000 batches.

Usage: .venv/bin/python bench/campaign.py [--batches 5000] [--due 0.0] [--concurrency 4]
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import bench_env, bench_user  # noqa: E402

TARGET = 2000.0  # posts/s accepted


def _calendar(n: int, due: float) -> dict[str, list[dict[str, str]]]:
    start = datetime.now(UTC) + timedelta(hours=1)
    now = datetime.now(UTC) - timedelta(seconds=1)
    n_due = int(n * due)
    return {"batches": [
        {"caption": f"campaign day {i} #launch",
         "scheduled_for": (now if i <= n_due else start + timedelta(minutes=i)).isoformat()}
        for i in range(1, n + 1)]}


def _recorded(dsn: str, campaign_id: uuid.UUID) -> int:
    import psycopg

    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT count(*) FROM social_posts WHERE campaign_id = %s",
                           (campaign_id,)).fetchone()
    return int(row[0]) if row else 0


def _wait_recorded(dsn: str, campaign_id: uuid.UUID, n: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while _recorded(dsn, campaign_id) < n:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{_recorded(dsn, campaign_id)}/{n} recorded after {timeout}s")
        time.sleep(0.02)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=5000)
    parser.add_argument("--due", type=float, default=0.0,
                        help="fraction of the batches due now (default 0: all ahead)")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--timeout", type=float, default=900.0)
    args = parser.parse_args()

    with bench_env() as env:
        from db import campaigns
        from db.pool import close_pools, connect
        from tasks.client import PublishClient
        from worker.celery_app import app

        user, _, _ = bench_user(env)
        with connect(env.dsn) as conn:
            cid = campaigns.create_campaign(conn, user, "bench",
                                            _calendar(args.batches, args.due))
        env.stack.worker(concurrency=args.concurrency, loglevel="warning")
        client = PublishClient(app)

        start = time.perf_counter()
        rows = client.enqueue_campaign(str(cid), ["twitter", "linkedin"])
        returned = time.perf_counter() - start
        _wait_recorded(env.dsn, cid, sum(1 for r in rows if r["sent"]), args.timeout)
        accepted = time.perf_counter() - start

        start = time.perf_counter()
        again = client.enqueue_campaign(str(cid), ["twitter", "linkedin"])
        repeat = time.perf_counter() - start
        assert [r["post_id"] for r in again] == [r["post_id"] for r in rows]
        close_pools()

        n = len(rows)
        rate = n / accepted
        print(f"batches={n} (due now: {int(n * args.due)}), platforms twitter+linkedin, "
              f"worker -c {args.concurrency}")
        print(f"{'enqueue_campaign returned':<28}{returned:>8.2f} s")
        print(f"{'every post recorded':<28}{accepted:>8.2f} s   {rate:>8.0f} posts/s accepted"
              f"   (target >= {TARGET:.0f}/s: {'met' if rate >= TARGET else 'NOT met'})")
        print(f"{'repeat of the same call':<28}{repeat:>8.2f} s   {n / repeat:>8.0f} batches/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
