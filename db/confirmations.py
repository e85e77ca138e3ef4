"""Confirmations: which targets wait for a platform's answer, and writing what the
providers said about them (tasks.confirm decides; these are its statements).

A target the provider accepted is `accepted` until its platform answers: `posted` (with
the platform's ids and publish time), `failed` (the platform refused the content or the
account), back to `pending` (a provider-side failure: nothing was published, the next
credential step may try) or `unconfirmed` (no answer by the deadline). A posted LATE
target may still be revised to `failed` when LATE reports the publish did not hold.
Every change is a row in post_attempts (outcome `confirmed`, `refused`,
`failed_at_provider`, `unconfirmed` or `revised`), so the attempt log tells the story.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from psycopg.types.json import Jsonb

from db import states, validate
from db.pool import Conn

# Claimed by stamping checked_at, rows another sweep holds skipped: two beats (or the
# sweep and a synchronous caller) never poll the same target at once, and no lock is held
# across the HTTP calls that follow. The oldest-checked go first. One provider at a time
# (`provider`), so one provider's backlog cannot crowd the other out of a batch. Each row
# comes back with its previous checked_at (`prev`) and the stamp (`took`): a row the
# sweep could not ask about is given back (`give_back`) to the front of the line.
_TAKE = """
UPDATE post_targets t SET checked_at = now()
FROM social_posts p, (
    SELECT post_id, platform, checked_at AS prev FROM post_targets
    WHERE (%(ids)s::uuid[] IS NULL OR post_id = ANY(%(ids)s::uuid[]))
      AND (%(provider)s::text IS NULL OR provider = %(provider)s::text)
      AND NOT EXISTS (SELECT 1 FROM social_posts q  -- a worker holds it: next time
                      WHERE q.id = post_id AND q.lease_owner IS NOT NULL)
      AND ((status = 'accepted'
            AND accepted_at < now() - make_interval(secs => %(settle)s)
            AND (checked_at IS NULL OR checked_at < now() - make_interval(secs => %(every)s)))
        OR (status = 'posted' AND provider = 'late'
            AND updated_at > now() - make_interval(secs => %(window)s)
            AND (checked_at IS NULL
                 OR checked_at < now() - make_interval(secs => %(revisit)s))))
    ORDER BY checked_at NULLS FIRST
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED) s
WHERE p.id = t.post_id AND t.post_id = s.post_id AND t.platform = s.platform
RETURNING t.post_id, t.platform, t.status, t.provider, t.credential_source,
          t.provider_post_id, t.accepted_at, t.error, p.user_id, s.prev,
          t.checked_at AS took
"""


def take_awaiting(
    conn: Conn, *, settle_seconds: float, every_seconds: float, revision_window: float,
    revisit_seconds: float, limit: int, post_ids: list[str] | None = None,
    provider: str | None = None,
) -> list[dict[str, Any]]:
    """Accepted targets to ask about (accepted at least `settle_seconds` ago, not asked
    about in the last `every_seconds`), and posted LATE ones younger than
    `revision_window` to look at again every `revisit_seconds`; only `post_ids` if given,
    only `provider`'s if given."""
    ids = [validate.as_uuid(p, "post_id") for p in post_ids] if post_ids is not None else None
    return conn.execute(_TAKE, {
        "ids": ids, "settle": float(settle_seconds), "every": float(every_seconds),
        "window": float(revision_window), "revisit": float(revisit_seconds),
        "limit": validate.positive_int(limit, "limit", 100_000),
        "provider": validate.opt_provider(provider),
    }).fetchall()


def give_back(conn: Conn, rows: list[dict[str, Any]]) -> int:
    """Rows `take_awaiting` took that were not asked about (their key had no permit to
    spare): their previous checked_at again, so the next pass takes them first (the
    oldest-checked go first). Only where nobody stamped them since. Returns how many."""
    if not rows:
        return 0
    back = [{"post_id": str(validate.as_uuid(r["post_id"], "post_id")),
             "platform": r["platform"],
             "prev": r["prev"].isoformat() if r.get("prev") else None,
             "took": r["took"].isoformat()} for r in rows]
    cur = conn.execute(
        """UPDATE post_targets t SET checked_at = b.prev
           FROM jsonb_to_recordset(%s) AS b(post_id uuid, platform text, prev timestamptz,
                                            took timestamptz)
           WHERE t.post_id = b.post_id AND t.platform = b.platform
             AND t.checked_at = b.took""", (Jsonb(back),))
    return cur.rowcount


_APPLY = """
WITH c AS (
    SELECT * FROM jsonb_to_recordset(%(changes)s) AS c(
        post_id uuid, platform text, status text, was text, outcome text,
        platform_post_id text, platform_post_url text, published_at timestamptz, error text)
), t AS (
    UPDATE post_targets t SET
        status = c.status,
        platform_post_id = COALESCE(c.platform_post_id, t.platform_post_id),
        platform_post_url = COALESCE(c.platform_post_url, t.platform_post_url),
        published_at = COALESCE(c.published_at, t.published_at),
        error = c.error,
        updated_at = now()
    FROM c
    WHERE t.post_id = c.post_id AND t.platform = c.platform AND t.status = c.was
    RETURNING t.post_id, t.platform, t.provider, t.credential_source, t.provider_post_id,
              c.outcome, c.error
), a AS (
    INSERT INTO post_attempts (post_id, provider, credential_source, platforms, outcome,
                               error, provider_post_id)
    SELECT post_id, provider, credential_source, ARRAY[platform], outcome, error,
           provider_post_id
    FROM t
)
SELECT post_id, platform, outcome FROM t
"""


def apply(conn: Conn, changes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Write target changes (post_id, platform, status, was, outcome, platform ids,
    published_at, error), each only if the target still is `was`; one attempt row per
    change made. Returns the changes made."""
    if not changes:
        return []
    rows = []
    for change in changes:
        row = dict(change)
        row["post_id"] = str(validate.as_uuid(row["post_id"], "post_id"))
        row["error"] = validate.clip(row.get("error"))
        when = row.get("published_at")
        row["published_at"] = when.isoformat() if isinstance(when, datetime) else None
        rows.append(row)
    return conn.execute(_APPLY, {"changes": Jsonb(rows)}).fetchall()


def lock_free(conn: Conn, post_ids: list[Any]) -> list[str]:
    """Lock the posts of `post_ids` that no worker holds (in the caller's transaction), so
    a worker cannot claim one while its targets change; the ids locked."""
    ids = [validate.as_uuid(p, "post_id") for p in post_ids]
    rows = conn.execute(
        """SELECT id FROM social_posts WHERE id = ANY(%s) AND lease_owner IS NULL
           FOR UPDATE SKIP LOCKED""", (ids,)).fetchall()
    return [str(r["id"]) for r in rows]


def orphans(conn: Conn, limit: int) -> list[str]:
    """Posts sent and marked waiting (`publishing`, no lease) that have nothing left to
    wait for: a worker recorded from a view older than a confirmation. To settle."""
    rows = conn.execute(
        """SELECT p.id FROM social_posts p
           WHERE p.status = 'publishing' AND p.lease_owner IS NULL
             AND p.updated_at < now() - interval '1 second'
             AND NOT EXISTS (SELECT 1 FROM post_targets t
                             WHERE t.post_id = p.id AND t.status = 'accepted')
           ORDER BY p.updated_at LIMIT %s""", (limit,)).fetchall()
    return [str(r["id"]) for r in rows]


def posts_to_settle(conn: Conn, post_ids: list[Any]) -> list[dict[str, Any]]:
    """The posts `post_ids` that nobody holds, locked, each with its targets (platform ->
    row): waiting for answers (`publishing`, no lease) or final and revisable."""
    ids = [validate.as_uuid(p, "post_id") for p in post_ids]
    return conn.execute(
        """SELECT p.id, p.status, p.step, p.platforms,
                  (SELECT jsonb_object_agg(t.platform, to_jsonb(t) - 'post_id')
                     FROM post_targets t WHERE t.post_id = p.id) AS targets
           FROM social_posts p
           WHERE p.id = ANY(%s) AND p.lease_owner IS NULL
             AND (p.status = 'publishing' OR p.status = ANY(%s))
           FOR UPDATE OF p SKIP LOCKED""",
        (ids, list(states.REVISABLE)),
    ).fetchall()


def requeue(conn: Conn, post_id: Any, step: int) -> bool:
    """A confirmed provider-side failure sent targets back to pending: the post goes on
    at credential step `step` or later, as a new delivery (nothing was sent there yet)."""
    cur = conn.execute(
        """UPDATE social_posts SET status = 'queued', step = %s, step_attempts = 0,
                  needs_reconcile = false, queued_at = now(), next_attempt_at = NULL,
                  updated_at = now()
           WHERE id = %s AND status = 'publishing' AND lease_owner IS NULL""",
        (step, validate.as_uuid(post_id, "post_id")),
    )
    return cur.rowcount == 1


def finish(conn: Conn, post_id: uuid.UUID | str, final: dict[str, Any], *,
           revision: bool = False) -> bool:
    """Write a post's final status and seed columns (from tasks.planning.finalize): once
    every target is final, or, with `revision`, when a provider revised a final post."""
    return bool(finish_many(conn, [(post_id, final, revision)]))


def finish_many(conn: Conn, finals: list[tuple[uuid.UUID | str, dict[str, Any], bool]]
                ) -> list[str]:
    """`finish` for a sweep's worth of posts in one statement (post id, final, revision);
    the ids of the posts written. One round trip per batch instead of one per post."""
    rows = []
    for post_id, final, revision in finals:
        allowed = ([s for s, to in states.REVISABLE.items() if final["status"] in to]
                   if revision else [states.PUBLISHING])
        posted_at = final.get("posted_at")
        rows.append({
            "id": str(validate.as_uuid(post_id, "post_id")), "status": final["status"],
            "provider": final.get("provider"),
            "provider_post_id": final.get("provider_post_id"),
            "ids": final.get("platform_post_ids") or {},
            "urls": final.get("platform_post_urls") or {},
            "posted_at": posted_at.isoformat() if isinstance(posted_at, datetime) else posted_at,
            "error": validate.clip(final.get("error_message")), "from": allowed,
        })
    if not rows:
        return []
    written = conn.execute(
        """UPDATE social_posts p SET status = f.status, provider = f.provider,
                  provider_post_id = f.provider_post_id,
                  platform_post_ids = f.ids, platform_post_urls = f.urls,
                  posted_at = f.posted_at, error_message = f.error,
                  finished_at = COALESCE(p.finished_at, now()), updated_at = now()
           FROM jsonb_to_recordset(%s) AS f(id uuid, status text, provider text,
                provider_post_id text, ids jsonb, urls jsonb, posted_at timestamptz,
                error text, "from" text[])
           WHERE p.id = f.id AND p.lease_owner IS NULL AND p.status = ANY(f."from")
           RETURNING p.id""",
        (Jsonb(rows),),
    ).fetchall()
    return [str(r["id"]) for r in written]
