"""The ledger's numbers for Prometheus, read when /metrics is scraped (api/metrics.py).

A few grouped counts, each one statement under a short statement_timeout, so a scrape
can never hold the database: posts by status and provider, targets by status and
provider, and how long the posts that are not final yet have waited (by status, in age
bands, and the oldest), and outcome-event webhook deliveries by state and attempts by
result. Labels are closed sets: no user, post or key appears.
"""

from __future__ import annotations

from typing import Any

from db.pool import Conn

TIMEOUT_MS = 2000  # a scrape's statements give up after this (the scrape says so)
NON_FINAL = ("scheduled", "queued", "publishing")
# (label, upper bound in seconds) of the age bands of non-final posts.
AGE_BANDS = (("lt_1m", 60), ("1m_10m", 600), ("10m_1h", 3600), ("1h_1d", 86400),
             ("gt_1d", None))


def _band_sql() -> str:
    cases = " ".join(f"WHEN age < {limit} THEN '{label}'" for label, limit in AGE_BANDS
                     if limit is not None)
    return f"CASE {cases} ELSE '{AGE_BANDS[-1][0]}' END"


def read(conn: Conn) -> dict[str, list[dict[str, Any]]]:
    """{"posts": [{status, provider, n}], "targets": [{status, provider, n}],
    "waiting": [{status, band, n, oldest}], "webhook_deliveries": [{status, n}],
    "webhook_attempts": [{result, n}]} (outcome events' deliveries, kept for the events'
    retention), in one read-only transaction. A scheduled
    post's age counts from its due time (not yet due: not counted), the others' from
    when they were queued (or created)."""
    with conn.transaction():
        conn.execute(f"SET LOCAL statement_timeout = {TIMEOUT_MS}")
        conn.execute("SET LOCAL transaction_read_only = on")
        posts = conn.execute(
            """SELECT status, COALESCE(provider, 'none') AS provider, count(*) AS n
               FROM social_posts GROUP BY 1, 2 ORDER BY 1, 2""").fetchall()
        targets = conn.execute(
            """SELECT status, COALESCE(provider, 'none') AS provider, count(*) AS n
               FROM post_targets GROUP BY 1, 2 ORDER BY 1, 2""").fetchall()
        waiting = conn.execute(
            f"""SELECT status, {_band_sql()} AS band, count(*) AS n, max(age) AS oldest
                FROM (SELECT status, extract(epoch FROM now() - CASE
                          WHEN status = 'scheduled' THEN scheduled_for
                          ELSE COALESCE(queued_at, created_at) END) AS age
                      FROM social_posts WHERE status = ANY(%s)) w
                WHERE age >= 0
                GROUP BY 1, 2 ORDER BY 1, 2""", (list(NON_FINAL),)).fetchall()
        webhooks = conn.execute(
            """SELECT status, count(*) AS n FROM webhook_deliveries
               GROUP BY 1 ORDER BY 1""").fetchall()
        attempts = conn.execute(
            """SELECT CASE WHEN ok THEN 'ok' ELSE 'failed' END AS result, count(*) AS n
               FROM webhook_attempts GROUP BY 1 ORDER BY 1""").fetchall()
    return {"posts": posts, "targets": targets, "waiting": waiting,
            "webhook_deliveries": webhooks, "webhook_attempts": attempts}
