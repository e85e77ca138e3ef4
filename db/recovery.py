"""What beat moves in the ledger: due scheduled posts released, lost messages taken back.

Kept apart from db.delivery (claim and record, the attempt's own statements): these are
the sweeps' statements, each a bulk UPDATE over SKIP LOCKED rows, safe from any number
of beats at once.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Protocol

from db import states, validate
from db.pool import Conn

# The due ids are collected into an array (an InitPlan) so the UPDATE finds them by
# primary key; a join against a CTE lets the planner hash-join over every scheduled row.
# Each released post keeps its due time as next_attempt_at, so an early copy of its
# message cannot claim it early. `handed_to_provider` rows (the first release's seed
# service left some with a provider's scheduler) are never released again.
RELEASE_QUERY = """
UPDATE social_posts p SET status = 'queued', queued_at = now(), updated_at = now(),
                          lease_owner = NULL, lease_expires_at = NULL,
                          next_attempt_at = COALESCE(p.next_attempt_at, p.scheduled_for)
WHERE p.id = ANY(ARRAY(
        SELECT id FROM social_posts
        WHERE status = 'scheduled' AND NOT handed_to_provider
          AND COALESCE(next_attempt_at, scheduled_for)
              <= now() + make_interval(secs => %(horizon)s)
        ORDER BY COALESCE(next_attempt_at, scheduled_for)
        LIMIT %(limit)s
        FOR UPDATE SKIP LOCKED))
  AND p.status = ANY(%(from)s)
RETURNING p.id, COALESCE(p.next_attempt_at, p.scheduled_for) AS scheduled_for
"""


def release_due(
    conn: Conn, limit: int = 500, horizon_seconds: float = 0.0
) -> list[tuple[str, datetime]]:
    """Move up to `limit` scheduled posts due within `horizon_seconds` to queued; their
    (id, due time), earliest first. Rows another releaser holds are skipped (SKIP
    LOCKED), so concurrent releasers never release a post twice; the walk follows
    social_posts_due_idx, so a release costs O(due)."""
    validate.positive_int(limit, "limit", 100_000)
    rows = conn.execute(
        RELEASE_QUERY,
        {"limit": limit, "horizon": float(horizon_seconds), "from": [states.SCHEDULED]},
    ).fetchall()
    return sorted(((str(r["id"]), r["scheduled_for"]) for r in rows), key=lambda r: r[1])


# Queued too long with nothing due (its message was lost), or publishing with an expired
# lease (its worker died): hand back to a worker. A publishing post keeps needs_reconcile
# set, so the taker looks it up at the provider before sending again. With `ids`, only
# those queued posts are taken (the others' messages still wait in the broker).
_QUEUED_STALE = """
    status = 'queued'
    AND COALESCE(queued_at, updated_at) < now() - make_interval(secs => %(grace)s)
    AND (next_attempt_at IS NULL
         OR next_attempt_at < now() - make_interval(secs => %(grace)s))"""

_TAKE_STALLED = f"""
UPDATE social_posts p SET
    status = 'queued', queued_at = now(), updated_at = now(),
    needs_reconcile = p.needs_reconcile
        OR (p.status = 'publishing' AND p.send_started_at IS NOT NULL),
    send_started_at = NULL,
    lease_owner = NULL, lease_expires_at = NULL, next_attempt_at = NULL
WHERE p.id = ANY(ARRAY(
        SELECT id FROM social_posts
        WHERE ({_QUEUED_STALE}
               AND (%(ids)s::uuid[] IS NULL OR id = ANY(%(ids)s::uuid[])))
           OR (status = 'publishing' AND lease_expires_at < now())
        ORDER BY COALESCE(queued_at, updated_at)
        LIMIT %(limit)s
        FOR UPDATE SKIP LOCKED))
  AND p.status IN ('queued', 'publishing')
RETURNING p.id
"""

# The queued candidates, oldest first, a page at a time by (queued time, id): read only,
# no lock held while the broker is asked about them; _TAKE_STALLED checks them again.
_STALE_PAGE = f"""
SELECT id, COALESCE(queued_at, updated_at) AS since FROM social_posts
WHERE {_QUEUED_STALE}
  AND (%(since)s::timestamptz IS NULL
       OR (COALESCE(queued_at, updated_at), id) > (%(since)s::timestamptz, %(after)s::uuid))
ORDER BY COALESCE(queued_at, updated_at), id
LIMIT %(limit)s
"""


class Waiting(Protocol):
    """Which of these queued posts still have a delivery message waiting in the broker."""

    def __call__(self, post_ids: Sequence[str], /) -> Collection[str]: ...


def take_stalled(conn: Conn, older_than_seconds: float, limit: int, *,
                 waiting: Waiting | None = None, scan_pages: int = 10) -> list[str]:
    """Posts whose delivery message was lost; each comes back with a fresh queued_at so
    the next sweep leaves it alone while the new message is on its way.

    With `waiting`, a queued post it names is skipped (its message is behind a backlog,
    not lost). Candidates are read `limit` at a time, oldest first, for up to
    `scan_pages` pages, so a backlog of waiting posts does not hide a lost one behind it
    (beyond `scan_pages * limit` waiting posts, the rest wait for the backlog to shrink)."""
    validate.positive_int(limit, "limit", 100_000)
    grace = float(older_than_seconds)
    ids: list[uuid.UUID] | None = None
    if waiting is not None:
        ids = []
        since, after = None, None
        for _ in range(max(1, scan_pages)):
            page = conn.execute(_STALE_PAGE, {"grace": grace, "since": since,
                                              "after": after, "limit": limit}).fetchall()
            held = set(waiting([str(r["id"]) for r in page])) if page else set()
            ids += [r["id"] for r in page if str(r["id"]) not in held]
            if len(page) < limit or len(ids) >= limit:
                break
            since, after = page[-1]["since"], page[-1]["id"]
        ids = ids[:limit]
    rows = conn.execute(_TAKE_STALLED, {"grace": grace, "limit": limit, "ids": ids}).fetchall()
    return [str(r["id"]) for r in rows]
