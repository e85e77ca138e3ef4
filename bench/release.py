"""Benchmark: release due scheduled posts out of a large table.

Inserts 100,000 scheduled posts (10,000 of them due) with COPY, then times
db.recovery.release_due in batches of 500 until nothing is due, and compares it in
the same run with two baselines on the same rows:
  * "by id": a plain UPDATE ... WHERE id = ANY(500 ids) (the write cost alone);
  * "seq scan": the same release query with index scans disabled (O(table)).

Usage: .venv/bin/python bench/release.py [--database-url URL] [--total N] [--due N]
Without --database-url a scratch database is created and dropped. A given database
must be disposable: release_due releases every due post in it.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg  # noqa: E402
from psycopg.conninfo import make_conninfo  # noqa: E402
from psycopg.rows import dict_row  # noqa: E402

from db import migrations, recovery  # noqa: E402

Conn = psycopg.Connection[dict[str, Any]]
BATCH = 500


def load(conn: Conn, total: int, due: int) -> list[uuid.UUID]:
    """COPY `total` scheduled posts; the first `due` are in the past. Returns the due ids."""
    user = uuid.uuid4()
    now = datetime.now(UTC)
    due_ids: list[uuid.UUID] = []
    with conn.cursor() as cur, cur.copy(
        "COPY social_posts (id, user_id, content, platforms, status, scheduled_for)"
        " FROM STDIN"
    ) as copy:
        for i in range(total):
            pid = uuid.uuid4()
            if i < due:
                when = now - timedelta(seconds=i + 1)
                due_ids.append(pid)
            else:
                when = now + timedelta(days=1, seconds=i)
            copy.write_row((pid, user, f"bench post {i}", ["twitter"], "scheduled", when))
    return due_ids


def reset(conn: Conn, ids: list[uuid.UUID]) -> None:
    """Put the due rows back to scheduled and clean up, so every run starts equal."""
    conn.execute(
        "UPDATE social_posts SET status = 'scheduled', queued_at = NULL WHERE id = ANY(%s)",
        (ids,),
    )
    conn.execute("VACUUM ANALYZE social_posts")


def timed(run: Callable[[], int]) -> tuple[float, int, list[float]]:
    """Call `run` (one batch) until it returns 0; return elapsed, rows and batch times."""
    laps: list[float] = []
    rows = 0
    start = time.perf_counter()
    while True:
        t0 = time.perf_counter()
        n = run()
        laps.append(time.perf_counter() - t0)
        if n == 0:
            break
        rows += n
    return time.perf_counter() - start, rows, laps


def report(label: str, elapsed: float, rows: int, laps: list[float]) -> float:
    rate = rows / elapsed if elapsed else float("inf")
    p50 = statistics.median(laps) * 1000
    print(f"{label:<28} {rows:>6} posts in {elapsed:6.3f}s = {rate:>9,.0f} posts/s "
          f"(batch p50 {p50:.2f} ms, max {max(laps) * 1000:.2f} ms, {len(laps)} calls)")
    return rate


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--database-url", default=None, help="a disposable database (else scratch)")
    ap.add_argument("--total", type=int, default=100_000)
    ap.add_argument("--due", type=int, default=10_000)
    args = ap.parse_args()

    admin = "postgresql://postgres@127.0.0.1:5432/postgres"
    scratch = None
    dsn = args.database_url
    if dsn is None:
        scratch = f"sp_bench_{uuid.uuid4().hex[:8]}"
        dsn = make_conninfo(admin, dbname=scratch)
    try:
        migrations.apply(dsn)
        with psycopg.connect(dsn, autocommit=True, row_factory=dict_row) as conn:
            t0 = time.perf_counter()
            due_ids = load(conn, args.total, args.due)
            conn.execute("VACUUM ANALYZE social_posts")
            print(f"loaded {args.total:,} scheduled posts ({args.due:,} due) "
                  f"in {time.perf_counter() - t0:.2f}s")

            pending = list(due_ids)

            def by_id() -> int:
                chunk = pending[:BATCH]
                del pending[:BATCH]
                if not chunk:
                    return 0
                cur = conn.execute(
                    "UPDATE social_posts SET status = 'queued', queued_at = now(),"
                    " updated_at = now() WHERE id = ANY(%s) AND status = 'scheduled'",
                    (chunk,),
                )
                return cur.rowcount

            def release() -> int:
                return len(recovery.release_due(conn, limit=BATCH))

            ours = report("release_due (partial index)", *timed(release))
            reset(conn, due_ids)
            base = report("baseline: UPDATE by id", *timed(by_id))
            reset(conn, due_ids)
            conn.execute("SET enable_indexscan = off")
            conn.execute("SET enable_bitmapscan = off")
            seq = report("baseline: seq-scan release", *timed(release))
            conn.execute("RESET enable_indexscan")
            conn.execute("RESET enable_bitmapscan")
            left = conn.execute(
                "SELECT count(*) AS n FROM social_posts WHERE status = 'scheduled'"
                " AND scheduled_for <= now()").fetchone()
            assert left is not None and left["n"] == 0
            print(f"release_due vs UPDATE by id: {ours / base:.2f}x the rate; "
                  f"vs seq-scan release: {ours / seq:.1f}x faster")
    finally:
        if scratch:
            with psycopg.connect(admin, autocommit=True) as admin_conn:
                admin_conn.execute(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)')
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
