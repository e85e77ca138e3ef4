"""The post ledger: social_posts plus its per-platform targets and attempt log.

Each function takes a connection and is one statement (or a short group) so the
worker pays few round trips. Status changes are conditional UPDATEs whose allowed
source statuses come from db.states; under concurrency the database decides who
wins, never a SELECT followed by an UPDATE.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

from psycopg.types.json import Jsonb

from db import states, validate
from db.errors import InvalidInput, InvalidTransition, NotFound
from db.pool import Conn

MAX_ERROR = 2000  # error texts are truncated to keep rows and history pages small
_FINISHED = (states.POSTED, states.PARTIAL, states.FAILED, states.UNCONFIRMED)


def _clip(text: str | None) -> str | None:
    if text is None:
        return None
    return text if len(text) <= MAX_ERROR else text[: MAX_ERROR - 1] + "…"


@dataclass
class NewPost:
    """A post to insert. status None means: scheduled when scheduled_for is in the
    future, else queued. A 'failed' post records refused input with its reason."""

    user_id: uuid.UUID | str
    content: str | None
    platforms: list[str]
    media_urls: list[str] = field(default_factory=list)
    scheduled_for: datetime | None = None
    campaign_id: uuid.UUID | str | None = None
    batch_number: int | None = None
    platform_options: dict[str, Any] | None = None
    status: str | None = None
    error_message: str | None = None
    id: uuid.UUID | str | None = None

    def validated(self, now: datetime | None = None) -> NewPost:
        """A normalised copy, or InvalidInput naming the first bad field.

        A 'failed' post records refused input, so its fields are kept only as far
        as they can be stored (its id and user_id must still be valid)."""
        status = self.status
        if status is not None and status not in states.INSERTABLE:
            allowed = ", ".join(states.INSERTABLE)
            raise InvalidInput("status", f"a new post must be one of {allowed}; got {status!r}")
        post_id = validate.as_uuid(self.id, "id") if self.id is not None else uuid.uuid4()
        user_id = validate.as_uuid(self.user_id, "user_id")
        if self.content is not None and not isinstance(self.content, str):
            raise InvalidInput("content", f"must be text, got {type(self.content).__name__}")
        if status == states.FAILED:
            if not (isinstance(self.error_message, str) and self.error_message.strip()):
                raise InvalidInput("error_message", "is required for a failed post")
            return NewPost(
                id=post_id, user_id=user_id, content=self.content,
                platforms=_lenient(lambda: validate.platforms(self.platforms, allow_empty=True),
                                   []),
                media_urls=[m for m in (self.media_urls or []) if isinstance(m, str)],
                scheduled_for=_lenient(
                    lambda: validate.opt_aware(self.scheduled_for, "scheduled_for"), None),
                campaign_id=_lenient(
                    lambda: validate.opt_uuid(self.campaign_id, "campaign_id"), None),
                batch_number=_lenient(
                    lambda: validate.positive_int(self.batch_number, "batch_number"), None),
                platform_options=_lenient(
                    lambda: validate.json_object(self.platform_options, "platform_options"),
                    None),
                status=status, error_message=_clip(self.error_message),
            )
        scheduled_for = validate.opt_aware(self.scheduled_for, "scheduled_for")
        if status is None:
            future = scheduled_for is not None and scheduled_for > (
                now or datetime.now(tz=scheduled_for.tzinfo)
            )
            status = states.SCHEDULED if future else states.QUEUED
        if status == states.SCHEDULED and scheduled_for is None:
            raise InvalidInput("scheduled_for", "is required for a scheduled post")
        if not isinstance(self.content, str) or not self.content.strip():
            raise InvalidInput("content", "must be non-empty text")
        platforms = validate.platforms(self.platforms)
        media = validate.str_list(self.media_urls, "media_urls")
        batch = self.batch_number
        if batch is not None:
            validate.positive_int(batch, "batch_number")
        return NewPost(
            id=post_id,
            user_id=user_id,
            content=self.content,
            platforms=platforms,
            media_urls=media,
            scheduled_for=scheduled_for,
            campaign_id=validate.opt_uuid(self.campaign_id, "campaign_id"),
            batch_number=batch,
            platform_options=validate.json_object(self.platform_options, "platform_options"),
            status=status,
            error_message=_clip(self.error_message),
        )


T = TypeVar("T")


def _lenient(check: Callable[[], T], fallback: T) -> T:
    """The checked value, or `fallback` when it is invalid (for recording refused input)."""
    try:
        return check()
    except InvalidInput:
        return fallback


@dataclass
class AttemptRecord:
    """One provider call, for the attempt log. `error` must already be redacted."""

    post_id: uuid.UUID | str
    step: int | None
    provider: str | None
    credential_source: str | None
    platforms: list[str]
    outcome: str
    idempotency_key: str | None = None
    http_status: int | None = None
    latency_ms: int | None = None
    error: str | None = None
    provider_post_id: str | None = None


@dataclass
class TargetUpdate:
    """The new state of one platform target."""

    platform: str
    status: str
    provider: str | None = None
    credential_source: str | None = None
    provider_post_id: str | None = None
    platform_post_id: str | None = None
    platform_post_url: str | None = None
    error: str | None = None


# --- insert -------------------------------------------------------------------------

_INSERT = """
WITH ins AS (
    INSERT INTO social_posts (id, user_id, content, platforms, media_urls, scheduled_for,
        status, error_message, campaign_id, batch_number, platform_options,
        queued_at, finished_at)
    VALUES (%(id)s, %(user_id)s, %(content)s, %(platforms)s, %(media_urls)s, %(scheduled_for)s,
        %(status)s, %(error_message)s, %(campaign_id)s, %(batch_number)s, %(platform_options)s,
        CASE WHEN %(status)s = 'queued' THEN now() END,
        CASE WHEN %(status)s = 'failed' THEN now() END)
    ON CONFLICT (id) DO NOTHING
    RETURNING *
), tgt AS (
    INSERT INTO post_targets (post_id, platform, status, error)
    SELECT ins.id, p.platform, %(target_status)s, %(target_error)s
    FROM ins, unnest(ins.platforms) AS p(platform)
)
SELECT * FROM ins
"""


def insert_post(conn: Conn, new: NewPost) -> tuple[dict[str, Any], bool]:
    """Insert under the caller's id; a repeat with that id changes nothing and returns
    (existing row, False). Targets (one per platform) are inserted in the same statement."""
    post = new.validated()
    failed = post.status == states.FAILED
    params = {
        "id": post.id, "user_id": post.user_id, "content": post.content,
        "platforms": post.platforms, "media_urls": post.media_urls,
        "scheduled_for": post.scheduled_for, "status": post.status,
        "error_message": post.error_message, "campaign_id": post.campaign_id,
        "batch_number": post.batch_number,
        "platform_options": Jsonb(post.platform_options) if post.platform_options else None,
        "target_status": states.T_FAILED if failed else states.T_PENDING,
        "target_error": post.error_message if failed else None,
    }
    row = conn.execute(_INSERT, params).fetchone()
    if row is not None:
        return row, True
    existing = conn.execute("SELECT * FROM social_posts WHERE id = %s", (post.id,)).fetchone()
    if existing is None:  # inserted and deleted in between: vanishingly rare, but say so
        raise NotFound(f"post {post.id} conflicted on insert but no longer exists")
    return existing, False


# --- delivery -----------------------------------------------------------------------

_CLAIM = """
WITH c AS (
    UPDATE social_posts SET
        status = 'publishing', lease_owner = %(owner)s,
        lease_expires_at = now() + make_interval(secs => %(lease)s),
        claim_count = claim_count + 1, updated_at = now()
    WHERE id = %(id)s
      AND (status = ANY(%(from)s)
           OR (status = 'publishing' AND lease_expires_at < now()))
    RETURNING *
)
SELECT c.*, ARRAY(
    SELECT t.platform FROM post_targets t
    WHERE t.post_id = c.id AND t.status = 'pending'
    ORDER BY array_position(c.platforms, t.platform), t.platform
) AS pending_platforms
FROM c
"""


def _lease(seconds: float) -> float:
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds <= 0:
        raise InvalidInput("lease_seconds", f"must be a positive number, got {seconds!r}")
    return float(seconds)


def _owner(owner: object) -> str:
    if not isinstance(owner, str) or not owner.strip():
        raise InvalidInput("owner", f"must be a non-empty string, got {owner!r}")
    return owner


def claim_post(
    conn: Conn, post_id: uuid.UUID | str, owner: str, lease_seconds: float
) -> dict[str, Any] | None:
    """Take a queued post (or a publishing one whose lease expired) for delivery.

    One conditional UPDATE: of many concurrent claimers exactly one gets the row
    (with `pending_platforms`, in platform order); the others get None.
    """
    pid = validate.as_uuid(post_id, "post_id")
    params = {
        "id": pid, "owner": _owner(owner), "lease": _lease(lease_seconds),
        "from": states.sources(states.PUBLISHING),
    }
    return conn.execute(_CLAIM, params).fetchone()


def extend_lease(
    conn: Conn, post_id: uuid.UUID | str, owner: str, lease_seconds: float
) -> bool:
    """Renew a lease we still hold; False means we lost it and must stop."""
    cur = conn.execute(
        """UPDATE social_posts SET lease_expires_at = now() + make_interval(secs => %s),
                                   updated_at = now()
           WHERE id = %s AND status = 'publishing' AND lease_owner = %s""",
        (_lease(lease_seconds), validate.as_uuid(post_id, "post_id"), _owner(owner)),
    )
    return cur.rowcount == 1


def set_step(
    conn: Conn,
    post_id: uuid.UUID | str,
    step: int | None,
    *,
    next_attempt_at: datetime | None = None,
    owner: str | None = None,
) -> bool:
    """Record the failover step in progress (and when it is next tried)."""
    if step is not None and (isinstance(step, bool) or not isinstance(step, int) or step < 0):
        raise InvalidInput("step", f"must be a non-negative integer, got {step!r}")
    cur = conn.execute(
        """UPDATE social_posts SET step = %s, next_attempt_at = %s, updated_at = now()
           WHERE id = %s AND status = 'publishing'
             AND (%s::text IS NULL OR lease_owner = %s)""",
        (step, validate.opt_aware(next_attempt_at, "next_attempt_at"),
         validate.as_uuid(post_id, "post_id"), owner, owner),
    )
    return cur.rowcount == 1


# The due ids are collected into an array (an InitPlan) so the UPDATE finds them by
# primary key; a join against a CTE lets the planner hash-join over every scheduled row.
RELEASE_QUERY = """
UPDATE social_posts p SET status = 'queued', queued_at = now(), updated_at = now(),
                          lease_owner = NULL, lease_expires_at = NULL,
                          next_attempt_at = COALESCE(p.next_attempt_at, p.scheduled_for)
WHERE p.id = ANY(ARRAY(
        SELECT id FROM social_posts
        WHERE status = 'scheduled' AND NOT handed_to_provider
          AND COALESCE(next_attempt_at, scheduled_for) <= {now}
        ORDER BY COALESCE(next_attempt_at, scheduled_for)
        LIMIT %(limit)s
        FOR UPDATE SKIP LOCKED))
  AND p.status = ANY(%(from)s)
RETURNING p.id, COALESCE(p.next_attempt_at, p.scheduled_for) AS scheduled_for
"""


def release_due(conn: Conn, limit: int = 500, now: datetime | None = None) -> list[uuid.UUID]:
    """Move up to `limit` due scheduled posts to queued; return their ids, earliest first.

    Rows another releaser holds are skipped (SKIP LOCKED), so concurrent releasers
    never release a post twice. Walks social_posts_due_idx: cost O(due).
    """
    validate.positive_int(limit, "limit", 100_000)
    if states.SCHEDULED not in states.sources(states.QUEUED):  # pragma: no cover
        raise InvalidTransition("scheduled -> queued is not allowed by db.states")
    params: dict[str, Any] = {"limit": limit, "from": [states.SCHEDULED]}
    if now is None:
        query = RELEASE_QUERY.format(now="now()")
    else:
        params["now"] = validate.aware(now, "now")
        query = RELEASE_QUERY.format(now="%(now)s")
    rows = conn.execute(query, params).fetchall()
    rows.sort(key=lambda r: r["scheduled_for"])
    return [r["id"] for r in rows]


def find_stalled(
    conn: Conn, queued_before: timedelta, limit: int = 500
) -> list[dict[str, Any]]:
    """Posts whose delivery message may be lost: queued for longer than `queued_before`,
    or publishing with an expired lease. Oldest first."""
    if not isinstance(queued_before, timedelta) or queued_before.total_seconds() < 0:
        raise InvalidInput(
            "queued_before", f"must be a non-negative timedelta, got {queued_before!r}"
        )
    validate.positive_int(limit, "limit", 100_000)
    return conn.execute(
        """SELECT id, user_id, status, queued_at, lease_owner, lease_expires_at,
                  claim_count, step, next_attempt_at, updated_at
           FROM social_posts
           WHERE status IN ('queued', 'publishing')
             AND ((status = 'queued'
                   AND COALESCE(queued_at, updated_at) < now() - %s::interval
                   AND (next_attempt_at IS NULL OR next_attempt_at < now() - %s::interval))
                  OR (status = 'publishing' AND lease_expires_at < now()))
           ORDER BY COALESCE(queued_at, updated_at)
           LIMIT %s""",
        (queued_before, queued_before, limit),
    ).fetchall()


def requeue_expired(conn: Conn, post_id: uuid.UUID | str) -> bool:
    """Reconcile a stalled post before re-enqueueing it: publishing with an expired
    lease goes back to queued; a stalled queued post gets a fresh queued_at (so the
    sweep does not re-enqueue it every tick). False when it is no longer stalled."""
    cur = conn.execute(
        """UPDATE social_posts SET status = 'queued', queued_at = now(), updated_at = now(),
                                   lease_owner = NULL, lease_expires_at = NULL
           WHERE id = %s AND (status = 'queued'
                              OR (status = ANY(%s) AND status = 'publishing'
                                  AND lease_expires_at < now()))""",
        (validate.as_uuid(post_id, "post_id"), states.sources(states.QUEUED)),
    )
    return cur.rowcount == 1


def requeue_post(
    conn: Conn, post_id: uuid.UUID | str, owner: str, *, next_attempt_at: datetime | None = None
) -> bool:
    """Give up our lease and put the post back to queued (e.g. a short rate-limit wait);
    only the lease owner may."""
    cur = conn.execute(
        """UPDATE social_posts SET status = 'queued', queued_at = now(), updated_at = now(),
                                   lease_owner = NULL, lease_expires_at = NULL,
                                   next_attempt_at = %s
           WHERE id = %s AND status = ANY(%s) AND status = 'publishing'
             AND lease_owner = %s""",
        (validate.opt_aware(next_attempt_at, "next_attempt_at"),
         validate.as_uuid(post_id, "post_id"), states.sources(states.QUEUED), _owner(owner)),
    )
    return cur.rowcount == 1


def record_attempt(conn: Conn, attempt: AttemptRecord) -> int:
    """Append to the attempt log; returns the attempt id."""
    a = attempt
    if not isinstance(a.outcome, str) or not a.outcome.strip():
        raise InvalidInput("outcome", f"must be a non-empty string, got {a.outcome!r}")
    for name in ("http_status", "latency_ms", "step"):
        v = getattr(a, name)
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 0):
            raise InvalidInput(name, f"must be a non-negative integer, got {v!r}")
    row = conn.execute(
        """INSERT INTO post_attempts (post_id, step, provider, credential_source, platforms,
               idempotency_key, http_status, latency_ms, outcome, error, provider_post_id)
           VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id""",
        (validate.as_uuid(a.post_id, "post_id"), a.step, validate.opt_provider(a.provider),
         validate.credential_source(a.credential_source),
         validate.platforms(a.platforms, allow_empty=True), a.idempotency_key,
         a.http_status, a.latency_ms, a.outcome, _clip(a.error), a.provider_post_id),
    ).fetchone()
    assert row is not None
    return int(row["id"])


def record_targets(conn: Conn, post_id: uuid.UUID | str, updates: list[TargetUpdate]) -> int:
    """Apply per-platform results in one statement; returns how many targets changed.

    A target moves only along db.states.TARGET_TRANSITIONS: a posted target is never
    touched again, which is what makes a redelivered result harmless.
    """
    pid = validate.as_uuid(post_id, "post_id")
    if not updates:
        return 0
    cols: dict[str, list[Any]] = {k: [] for k in (
        "platform", "status", "src", "provider", "credential_source", "provider_post_id",
        "platform_post_id", "platform_post_url", "error")}
    seen: set[str] = set()
    for i, u in enumerate(updates):
        plat = validate.platform(u.platform, f"updates[{i}].platform")
        if plat in seen:
            raise InvalidInput("updates", f"names platform {plat!r} twice")
        seen.add(plat)
        status = states.check_target_status(u.status, f"updates[{i}].status")
        cols["platform"].append(plat)
        cols["status"].append(status)
        cols["src"].append("{" + ",".join(states.target_sources(status)) + "}")
        cols["provider"].append(validate.opt_provider(u.provider, f"updates[{i}].provider"))
        cols["credential_source"].append(
            validate.credential_source(u.credential_source, f"updates[{i}].credential_source"))
        cols["provider_post_id"].append(u.provider_post_id)
        cols["platform_post_id"].append(u.platform_post_id)
        cols["platform_post_url"].append(u.platform_post_url)
        cols["error"].append(_clip(u.error))
    cur = conn.execute(
        """UPDATE post_targets t SET
               status = u.status,
               provider = COALESCE(u.provider, t.provider),
               credential_source = COALESCE(u.credential_source, t.credential_source),
               provider_post_id = COALESCE(u.provider_post_id, t.provider_post_id),
               platform_post_id = COALESCE(u.platform_post_id, t.platform_post_id),
               platform_post_url = COALESCE(u.platform_post_url, t.platform_post_url),
               error = CASE WHEN u.status = 'posted' THEN NULL ELSE u.error END,
               updated_at = now()
           FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::text[], %s::text[],
                       %s::text[], %s::text[], %s::text[])
                AS u(platform, status, src, provider, credential_source, provider_post_id,
                     platform_post_id, platform_post_url, error)
           WHERE t.post_id = %s AND t.platform = u.platform
             AND t.status = ANY(u.src::text[])""",
        (*cols.values(), pid),
    )
    return cur.rowcount


_FINISH = """
WITH agg AS (
    SELECT count(*) AS total,
           count(*) FILTER (WHERE t.status = 'pending') AS pending,
           count(*) FILTER (WHERE t.status = 'posted') AS posted,
           count(*) FILTER (WHERE t.status = 'unconfirmed') AS unconfirmed,
           jsonb_object_agg(t.platform, t.platform_post_id)
               FILTER (WHERE t.status = 'posted' AND t.platform_post_id IS NOT NULL) AS ids,
           jsonb_object_agg(t.platform, t.platform_post_url)
               FILTER (WHERE t.status = 'posted' AND t.platform_post_url IS NOT NULL) AS urls,
           string_agg(t.platform || ': ' || t.error, '; '
                      ORDER BY array_position(p.platforms, t.platform), t.platform)
               FILTER (WHERE t.status <> 'posted' AND t.error IS NOT NULL) AS errors,
           (array_agg(t.provider ORDER BY array_position(p.platforms, t.platform), t.platform)
               FILTER (WHERE t.status = 'posted'))[1] AS first_provider,
           (array_agg(t.provider_post_id
                      ORDER BY array_position(p.platforms, t.platform), t.platform)
               FILTER (WHERE t.status = 'posted'))[1] AS first_provider_post_id
    FROM social_posts p JOIN post_targets t ON t.post_id = p.id
    WHERE p.id = %(id)s
), d AS (
    SELECT agg.*, CASE
        WHEN pending > 0 OR total = 0 THEN NULL
        WHEN posted = total THEN 'posted'
        WHEN unconfirmed > 0 THEN 'unconfirmed'
        WHEN posted > 0 THEN 'partial'
        ELSE 'failed' END AS new_status
    FROM agg
)
UPDATE social_posts p SET
    status = d.new_status,
    provider = COALESCE(d.first_provider, p.provider),
    provider_post_id = COALESCE(d.first_provider_post_id, p.provider_post_id),
    platform_post_ids = COALESCE(d.ids, '{}'::jsonb),
    platform_post_urls = COALESCE(d.urls, '{}'::jsonb),
    posted_at = CASE WHEN d.posted > 0 THEN now() END,
    error_message = CASE WHEN d.new_status = 'posted' THEN NULL
                         ELSE COALESCE(d.errors, p.error_message) END,
    finished_at = now(), updated_at = now(),
    lease_owner = NULL, lease_expires_at = NULL, next_attempt_at = NULL
FROM d
WHERE p.id = %(id)s AND d.new_status IS NOT NULL
  AND p.status = ANY(%(from)s)
  AND (%(owner)s::text IS NULL OR p.lease_owner = %(owner)s)
RETURNING p.*
"""


def finish_post(
    conn: Conn, post_id: uuid.UUID | str, *, owner: str | None = None
) -> dict[str, Any]:
    """Derive the post's final status from its targets and write the seed columns.

    posted: every target posted; partial: some posted, the rest failed/cancelled;
    failed: none posted; unconfirmed: any unconfirmed (none pending). Raises
    InvalidTransition when a target is still pending, the post is not publishing,
    or `owner` no longer holds the lease; NotFound for an unknown id.
    """
    pid = validate.as_uuid(post_id, "post_id")
    finish_from = states.sources_all(_FINISHED)
    params = {"id": pid, "owner": owner, "from": finish_from}
    row = conn.execute(_FINISH, params).fetchone()
    if row is not None:
        return row
    why = conn.execute(
        """SELECT p.status, p.lease_owner,
                  ARRAY(SELECT platform FROM post_targets
                        WHERE post_id = p.id AND status = 'pending') AS pending,
                  (SELECT count(*) FROM post_targets WHERE post_id = p.id) AS total
           FROM social_posts p WHERE p.id = %s""",
        (pid,),
    ).fetchone()
    if why is None:
        raise NotFound(f"post {pid} not found")
    if why["status"] not in finish_from:
        raise InvalidTransition(
            f"post {pid} is {why['status']!r}: only a publishing post can finish"
        )
    if owner is not None and why["lease_owner"] != owner:
        raise InvalidTransition(f"post {pid}: lease is no longer held by {owner!r}")
    if why["pending"]:
        raise InvalidTransition(
            f"post {pid}: targets still pending ({', '.join(why['pending'])}); cannot finish"
        )
    if not why["total"]:
        raise InvalidTransition(f"post {pid} has no targets; use fail_post")
    raise InvalidTransition(f"post {pid} could not be finished")  # pragma: no cover


def defer_post(
    conn: Conn,
    post_id: uuid.UUID | str,
    until: datetime,
    reason: str,
    *,
    owner: str | None = None,
) -> bool:
    """Park a post as scheduled until `until` (a long rate-limit wait), releasing the lease
    so no Celery ETA has to outlive the broker's visibility timeout."""
    cur = conn.execute(
        """UPDATE social_posts SET status = 'scheduled', scheduled_for = %s,
                  error_message = %s, updated_at = now(), queued_at = NULL,
                  lease_owner = NULL, lease_expires_at = NULL, next_attempt_at = NULL
           WHERE id = %s AND status = ANY(%s) AND (%s::text IS NULL OR lease_owner = %s)""",
        (validate.aware(until, "until"), _clip(reason), validate.as_uuid(post_id, "post_id"),
         states.sources(states.SCHEDULED), owner, owner),
    )
    return cur.rowcount == 1


def cancel_post(conn: Conn, post_id: uuid.UUID | str) -> bool:
    """Cancel a scheduled or queued post (and its pending targets); False otherwise."""
    row = conn.execute(
        """WITH c AS (
               UPDATE social_posts SET status = 'cancelled', finished_at = now(),
                      updated_at = now(), lease_owner = NULL, lease_expires_at = NULL
               WHERE id = %s AND status = ANY(%s)
               RETURNING id
           ), t AS (
               UPDATE post_targets SET status = 'cancelled', updated_at = now()
               WHERE post_id IN (SELECT id FROM c) AND status = ANY(%s)
           )
           SELECT count(*) AS n FROM c""",
        (validate.as_uuid(post_id, "post_id"), states.sources(states.CANCELLED),
         states.target_sources(states.T_CANCELLED)),
    ).fetchone()
    return bool(row and row["n"])


def fail_post(
    conn: Conn, post_id: uuid.UUID | str, error: str, *, owner: str | None = None
) -> bool:
    """Fail a post outright (no provider can take it); unfinished targets fail with it."""
    if not isinstance(error, str) or not error.strip():
        raise InvalidInput("error", "must be a non-empty message")
    row = conn.execute(
        """WITH f AS (
               UPDATE social_posts SET status = 'failed', error_message = %(err)s,
                      finished_at = now(), updated_at = now(),
                      lease_owner = NULL, lease_expires_at = NULL, next_attempt_at = NULL
               WHERE id = %(id)s AND status = ANY(%(from)s)
                 AND (%(owner)s::text IS NULL OR lease_owner = %(owner)s)
               RETURNING id
           ), t AS (
               UPDATE post_targets SET status = 'failed',
                      error = COALESCE(error, %(err)s), updated_at = now()
               WHERE post_id IN (SELECT id FROM f) AND status = ANY(%(tfrom)s)
           )
           SELECT count(*) AS n FROM f""",
        {"id": validate.as_uuid(post_id, "post_id"), "err": _clip(error), "owner": owner,
         "from": states.sources(states.FAILED),
         "tfrom": [states.T_PENDING, states.T_UNCONFIRMED]},
    ).fetchone()
    return bool(row and row["n"])


# --- history ------------------------------------------------------------------------

def cursor_for(row: dict[str, Any]) -> str:
    """The keyset cursor that continues a history listing after `row`."""
    return f"{row['created_at'].isoformat()}|{row['id']}"


def _parse_cursor(before: str) -> tuple[datetime, uuid.UUID]:
    if not isinstance(before, str) or before.count("|") != 1:
        raise InvalidInput("before", f"must be a cursor from a previous page, got {before!r}")
    ts, _, pid = before.partition("|")
    when = validate.parse_aware(ts, "before")
    if when is None:
        raise InvalidInput("before", f"must be a cursor from a previous page, got {before!r}")
    return when, validate.as_uuid(pid, "before")


def _attach(conn: Conn, posts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Add targets and attempts to each post with one query each (never N+1)."""
    if not posts:
        return posts
    ids = [p["id"] for p in posts]
    by_id = {p["id"]: p for p in posts}
    for p in posts:
        p["targets"] = []
        p["attempts"] = []
        p["cursor"] = cursor_for(p)
    for t in conn.execute(
        """SELECT t.* FROM post_targets t JOIN social_posts p ON p.id = t.post_id
           WHERE t.post_id = ANY(%s)
           ORDER BY t.post_id, array_position(p.platforms, t.platform), t.platform""",
        (ids,),
    ):
        by_id[t["post_id"]]["targets"].append(t)
    for a in conn.execute(
        "SELECT * FROM post_attempts WHERE post_id = ANY(%s) ORDER BY post_id, id", (ids,)
    ):
        by_id[a["post_id"]]["attempts"].append(a)
    return posts


def get_post(conn: Conn, post_id: uuid.UUID | str) -> dict[str, Any] | None:
    """One post with its targets (platform order) and attempts (oldest first)."""
    pid = validate.as_uuid(post_id, "post_id")
    row = conn.execute("SELECT * FROM social_posts WHERE id = %s", (pid,)).fetchone()
    return _attach(conn, [row])[0] if row else None


def get_post_history(
    conn: Conn,
    user_id: uuid.UUID | str,
    limit: int = 50,
    status: str | None = None,
    *,
    campaign_id: uuid.UUID | str | None = None,
    platform: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    before: str | None = None,
) -> list[dict[str, Any]]:
    """A user's posts, newest first, each with targets and attempts.

    Filters: status, campaign, platform, created_at in [since, until). For the next
    page pass `before=rows[-1]["cursor"]` (a keyset cursor: stable under inserts).
    """
    where = ["user_id = %s"]
    params: list[Any] = [validate.as_uuid(user_id, "user_id")]
    validate.positive_int(limit, "limit", 1000)
    if status is not None:
        where.append("status = %s")
        params.append(states.check_status(status))
    if campaign_id is not None:
        where.append("campaign_id = %s")
        params.append(validate.as_uuid(campaign_id, "campaign_id"))
    if platform is not None:
        where.append("%s = ANY(platforms)")
        params.append(validate.platform(platform))
    if since is not None:
        where.append("created_at >= %s")
        params.append(validate.aware(since, "since"))
    if until is not None:
        where.append("created_at < %s")
        params.append(validate.aware(until, "until"))
    if before is not None:
        where.append("(created_at, id) < (%s, %s)")
        params.extend(_parse_cursor(before))
    params.append(limit)
    rows = conn.execute(
        "SELECT * FROM social_posts WHERE " + " AND ".join(where)
        + " ORDER BY created_at DESC, id DESC LIMIT %s",
        params,
    ).fetchall()
    return _attach(conn, rows)
