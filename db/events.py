"""The outbox: post events the database wrote with each change (migration 0011's
triggers), read back, fanned out to webhook deliveries, and pruned.

Nothing here writes a post event: the triggers do, in the statement that changes the
post, so an event exists exactly when its change committed. The dispatcher takes
undispatched events a batch at a time (`FOR UPDATE SKIP LOCKED`, so any number of beats
may run), creates one delivery per matching endpoint and marks them dispatched, in one
transaction with the Celery callbacks it sends (at least once: a failure rolls back and
the next pass sends again).
"""

from __future__ import annotations

import uuid
from typing import Any

from psycopg.types.json import Jsonb

from db import validate
from db.pool import Conn

FINAL_TYPES: tuple[str, ...] = (
    "post.posted", "post.partial", "post.failed", "post.unconfirmed", "post.cancelled")
POST_TYPES: tuple[str, ...] = (
    *FINAL_TYPES, "post.revised", "post.target.posted", "post.target.failed")
# What a Celery callback (notify_task) is sent: the post became final, or was revised.
NOTIFY_TYPES: frozenset[str] = frozenset((*FINAL_TYPES, "post.revised"))


def events_for_post(conn: Conn, post_id: uuid.UUID | str) -> list[dict[str, Any]]:
    """A post's events, oldest first: id, type, created_at, dispatched_at, and the status
    (and platform, for a target event) each one carried."""
    return conn.execute(
        """SELECT id, type, created_at, dispatched_at, data->>'status' AS status,
                  data->>'platform' AS platform
           FROM post_events WHERE post_id = %s ORDER BY created_at, id""",
        (validate.as_uuid(post_id, "post_id"),),
    ).fetchall()


def get_event(conn: Conn, event_id: uuid.UUID | str) -> dict[str, Any] | None:
    """One event with its data snapshot, or None."""
    return conn.execute("SELECT * FROM post_events WHERE id = %s",
                        (validate.as_uuid(event_id, "event_id"),)).fetchone()


def take_undispatched(conn: Conn, limit: int) -> list[dict[str, Any]]:
    """Up to `limit` undispatched events, oldest first, locked for the caller's
    transaction (others skip them), each with its post's notify_task / notify_queue (and
    its data snapshot when there is a callback to send)."""
    return conn.execute(
        """SELECT e.id, e.type, e.created_at, e.post_id, p.notify_task, p.notify_queue,
                  CASE WHEN p.notify_task IS NOT NULL THEN e.data END AS data
           FROM post_events e LEFT JOIN social_posts p ON p.id = e.post_id
           WHERE e.dispatched_at IS NULL
           ORDER BY e.created_at LIMIT %s
           FOR UPDATE OF e SKIP LOCKED""",
        (validate.positive_int(limit, "limit", 100_000),),
    ).fetchall()


# An endpoint takes an event when it is enabled, global or the event's user's, and one of
# its globs matches (`*` is any run of characters; event types hold no `%` or `_`).
_FAN_OUT = """
WITH e AS (SELECT id, user_id, type FROM post_events WHERE id = ANY(%(ids)s)),
d AS (
    INSERT INTO webhook_deliveries (event_id, endpoint_id)
    SELECT e.id, w.id FROM e JOIN webhook_endpoints w
      ON w.disabled_at IS NULL
     AND (w.user_id IS NULL OR w.user_id = e.user_id)
     AND (w.event_types IS NULL
          OR EXISTS (SELECT 1 FROM unnest(w.event_types) g
                     WHERE e.type LIKE replace(g, '*', '%%')))
    WHERE e.type <> 'ping'
    ON CONFLICT (event_id, endpoint_id) DO NOTHING
    RETURNING id
), m AS (
    UPDATE post_events SET dispatched_at = now() WHERE id = ANY(%(ids)s)
)
SELECT count(*) AS deliveries FROM d
"""


def fan_out(conn: Conn, event_ids: list[Any]) -> int:
    """Create a delivery of each event for every endpoint that wants it, and mark the
    events dispatched; how many deliveries were created."""
    if not event_ids:
        return 0
    row = conn.execute(_FAN_OUT, {"ids": list(event_ids)}).fetchone()
    return int(row["deliveries"]) if row else 0


def insert_ping(conn: Conn, endpoint_id: uuid.UUID | str) -> uuid.UUID:
    """A `ping` event for one endpoint and its delivery, due now (socialpost webhooks
    test); dispatched at once, since it goes to that endpoint only."""
    eid = validate.as_uuid(endpoint_id, "endpoint_id")
    row = conn.execute(
        """WITH e AS (
               INSERT INTO post_events (type, data, dispatched_at)
               VALUES ('ping', %s, now()) RETURNING id
           ), d AS (
               INSERT INTO webhook_deliveries (event_id, endpoint_id)
               SELECT e.id, %s FROM e RETURNING event_id
           )
           SELECT event_id AS id FROM d""",
        (Jsonb({"endpoint_id": str(eid), "message": "a test event from social-posting"}),
         eid),
    ).fetchone()
    if row is None:  # pragma: no cover - the INSERTs either happen or raise
        raise RuntimeError("ping not recorded")
    return uuid.UUID(str(row["id"]))


def prune(conn: Conn, older_than_seconds: float, limit: int = 5000) -> int:
    """Delete up to `limit` events older than `older_than_seconds` that were dispatched
    and have no delivery still pending (their deliveries and attempt log go with them)."""
    cur = conn.execute(
        """DELETE FROM post_events WHERE id = ANY(ARRAY(
               SELECT e.id FROM post_events e
               WHERE e.created_at < now() - make_interval(secs => %s)
                 AND e.dispatched_at IS NOT NULL
                 AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d
                                 WHERE d.event_id = e.id AND d.status = 'pending')
               ORDER BY e.created_at LIMIT %s
               FOR UPDATE SKIP LOCKED))""",
        (float(older_than_seconds), validate.positive_int(limit, "limit", 1_000_000)),
    )
    return cur.rowcount
