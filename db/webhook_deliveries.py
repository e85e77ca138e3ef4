"""A webhook delivery's state machine: `pending` -> `delivered` | `failed`.

Beat leases due deliveries (`take_due`: SKIP LOCKED, a lease stamped in `lease_until`)
and sends one Celery task per attempt with the stamp as its token; the task reads what
it sends only while its token still holds (`begin`), then records the attempt, the
delivery's next state and the endpoint's health in one statement (`record`). A message
Redis loses, or a worker killed mid-call, only lets the lease run out: the next pass
leases the delivery again. So every event is delivered at least once; receivers dedupe
on `webhook-id`, the event id.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from db import validate
from db.pool import Conn

_TAKE_DUE = """
UPDATE webhook_deliveries d SET lease_until = now() + make_interval(secs => %(lease)s),
                                updated_at = now()
WHERE d.id = ANY(ARRAY(
        SELECT x.id FROM webhook_deliveries x
        JOIN webhook_endpoints w ON w.id = x.endpoint_id
        WHERE x.status = 'pending' AND x.next_attempt_at <= now()
          AND (x.lease_until IS NULL OR x.lease_until < now())
          AND w.disabled_at IS NULL
        ORDER BY x.next_attempt_at
        LIMIT %(limit)s
        FOR UPDATE OF x SKIP LOCKED))
RETURNING d.id, d.lease_until
"""


def take_due(conn: Conn, limit: int, lease_seconds: float) -> list[tuple[int, str]]:
    """Lease up to `limit` due deliveries of enabled endpoints: (delivery id, token)."""
    rows = conn.execute(_TAKE_DUE, {
        "limit": validate.positive_int(limit, "limit", 100_000),
        "lease": float(lease_seconds)}).fetchall()
    return [(int(r["id"]), r["lease_until"].isoformat()) for r in rows]


def begin(conn: Conn, delivery_id: int, token: str) -> dict[str, Any] | None:
    """What an attempt sends (event, endpoint URL, encrypted secret, attempt number,
    delivery age) while `token` is still the delivery's lease; None otherwise (delivered
    meanwhile, or leased again after this message was thought lost)."""
    return conn.execute(
        """SELECT d.id, d.event_id, d.endpoint_id, d.attempts + 1 AS attempt,
                  d.created_at AS delivery_created_at, e.type, e.data,
                  e.created_at AS event_created_at, w.url, w.encrypted_secret
           FROM webhook_deliveries d
           JOIN post_events e ON e.id = d.event_id
           JOIN webhook_endpoints w ON w.id = d.endpoint_id
           WHERE d.id = %s AND d.status = 'pending' AND d.lease_until = %s::timestamptz""",
        (int(delivery_id), token),
    ).fetchone()


_RECORD = """
WITH a AS (
    INSERT INTO webhook_attempts (delivery_id, event_id, endpoint_id, attempt, ok,
                                  http_status, latency_ms, response)
    SELECT id, event_id, endpoint_id, %(attempt)s, %(ok)s, %(http_status)s,
           %(latency_ms)s, %(response)s
    FROM webhook_deliveries WHERE id = %(id)s
), d AS (
    UPDATE webhook_deliveries SET
        attempts = attempts + 1,
        status = CASE WHEN %(ok)s THEN 'delivered'
                      WHEN %(retry_in)s::float8 IS NULL THEN 'failed' ELSE 'pending' END,
        next_attempt_at = CASE WHEN %(ok)s OR %(retry_in)s::float8 IS NULL THEN next_attempt_at
                               ELSE now() + make_interval(secs => %(retry_in)s::float8) END,
        lease_until = NULL, updated_at = now()
    WHERE id = %(id)s AND status = 'pending' AND lease_until = %(token)s::timestamptz
    RETURNING endpoint_id
), w AS (
    UPDATE webhook_endpoints SET
        consecutive_failures = CASE WHEN %(ok)s THEN 0 ELSE consecutive_failures + 1 END,
        failing_since = CASE WHEN %(ok)s THEN NULL ELSE COALESCE(failing_since, now()) END,
        last_success_at = CASE WHEN %(ok)s THEN now() ELSE last_success_at END,
        disabled_at = CASE
            WHEN %(ok)s OR disabled_at IS NOT NULL THEN disabled_at
            WHEN consecutive_failures + 1 >= %(max_failures)s
              OR COALESCE(failing_since, now())
                 < now() - make_interval(secs => %(max_failing)s) THEN now() END,
        disabled_reason = CASE
            WHEN %(ok)s OR disabled_at IS NOT NULL THEN disabled_reason
            WHEN consecutive_failures + 1 >= %(max_failures)s
                THEN (consecutive_failures + 1) || ' failed attempts in a row'
            WHEN COALESCE(failing_since, now())
                 < now() - make_interval(secs => %(max_failing)s)
                THEN 'failing since ' || to_char(failing_since AT TIME ZONE 'UTC',
                                                 'YYYY-MM-DD HH24:MI') || ' UTC' END
    WHERE id = (SELECT endpoint_id FROM webhook_deliveries WHERE id = %(id)s)
      -- a failure counts only while its lease held: a stale attempt (its lease ran out
      -- and the delivery was taken again) is logged, but the attempt that took over
      -- counts; a success always clears the endpoint's failures
      AND (%(ok)s OR EXISTS (SELECT 1 FROM d))
      -- a healthy endpoint's row is not rewritten by every success (busy endpoints would
      -- queue on its lock): only when there is a failure to clear or a stale stamp
      AND (NOT %(ok)s OR consecutive_failures > 0 OR last_success_at IS NULL
           OR last_success_at < now() - interval '1 second')
    RETURNING disabled_at
)
SELECT (SELECT count(*) FROM d) AS kept, (SELECT disabled_at FROM w) AS disabled_at
"""


def record(
    conn: Conn, delivery_id: int, token: str, *, attempt: int, ok: bool,
    http_status: int | None, latency_ms: int | None, response: str | None,
    retry_in: float | None, max_failures: int, max_failing_seconds: float,
) -> tuple[bool, datetime | None]:
    """Log one attempt and move the delivery: delivered when `ok`, else pending again in
    `retry_in` seconds, or failed for good when `retry_in` is None. The endpoint's
    failure count and failing-since follow; past `max_failures` in a row or
    `max_failing_seconds` of failing it is disabled; a failure whose lease `token` is no
    longer the delivery's is logged but not counted. (whether the delivery moved, when
    the endpoint is disabled or None)."""
    row = conn.execute(_RECORD, {
        "id": int(delivery_id), "token": token, "attempt": int(attempt), "ok": bool(ok),
        "http_status": http_status, "latency_ms": latency_ms,
        "response": validate.clip(response), "retry_in": retry_in,
        "max_failures": int(max_failures), "max_failing": float(max_failing_seconds),
    }).fetchone()
    return bool(row and row["kept"]), (row or {}).get("disabled_at")


def redeliver(conn: Conn, event_id: uuid.UUID | str,
              endpoint_id: uuid.UUID | str | None = None) -> int:
    """Deliver `event_id` again, now: to `endpoint_id` (a delivery is created when it had
    none), or to every endpoint it was delivered to or failed at. The retry schedule and
    window start over (attempts count from 1 again); the log keeps every earlier
    attempt. How many deliveries are due."""
    event = validate.as_uuid(event_id, "event_id")
    endpoint = validate.opt_uuid(endpoint_id, "endpoint_id")
    if endpoint is not None:
        conn.execute(
            """INSERT INTO webhook_deliveries (event_id, endpoint_id)
               SELECT %s, id FROM webhook_endpoints WHERE id = %s
               ON CONFLICT (event_id, endpoint_id) DO NOTHING""", (event, endpoint))
    cur = conn.execute(
        """UPDATE webhook_deliveries SET status = 'pending', next_attempt_at = now(), attempts = 0,
                  lease_until = NULL, created_at = now(), updated_at = now()
           WHERE event_id = %(event)s
             AND (%(endpoint)s::uuid IS NULL OR endpoint_id = %(endpoint)s::uuid)""",
        {"event": event, "endpoint": endpoint})
    return cur.rowcount
