"""The delivery engine's ledger statements: one round trip to claim, one to record.

A publishing worker pays two statements per attempt: `claim` takes the post with a
lease and returns everything the attempt needs (targets and the user's encrypted
keys included); `record` writes the attempt, the targets and the post's next state
at once. Both are conditional, so the database decides who may act, never a
SELECT-then-UPDATE in Python.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from psycopg.types.json import Jsonb

from db import states, validate
from db.pool import Conn


@dataclass(frozen=True)
class Claim:
    """A post taken for one attempt. `targets` maps platform -> target row (as a dict);
    `credentials` maps provider -> encrypted key, valid ones only."""

    post_id: str
    user_id: str
    content: str
    platforms: list[str]
    media_urls: list[str]
    platform_options: dict[str, Any] | None
    step: int
    step_attempts: int
    needs_reconcile: bool
    targets: dict[str, dict[str, Any]]
    credentials: dict[str, str] = field(repr=False)
    account_ids: dict[str, str] = field(default_factory=dict)  # platform -> named account
    claim_count: int = 1  # claims of this post so far, this one included
    open_claims: int = 1  # claims since the last recorded attempt, this one included
    paced_since: datetime | None = None  # waiting for a permit on this step since
    overrides: dict[str, Any] | None = None  # platform -> its own content and options
    scheduled_for: datetime | None = None  # the time it was due, when scheduled (metrics)


@dataclass(frozen=True)
class AttemptRow:
    """One provider call, for post_attempts. `error` is already redacted by providers/."""

    step: int | None
    provider: str | None
    credential_source: str | None
    platforms: list[str]
    idempotency_key: str | None
    http_status: int | None
    latency_ms: int | None
    outcome: str
    error: str | None
    provider_post_id: str | None


class PlanLike(Protocol):
    """What `record` needs from tasks.planning.Plan (structural: db knows nothing of tasks)."""

    @property
    def status(self) -> str: ...
    @property
    def step(self) -> int: ...
    @property
    def step_attempts(self) -> int: ...
    @property
    def needs_reconcile(self) -> bool: ...
    @property
    def countdown(self) -> float | None: ...
    @property
    def defer_until(self) -> datetime | None: ...
    @property
    def targets(self) -> Any: ...
    @property
    def final(self) -> dict[str, Any] | None: ...
    @property
    def paced(self) -> bool: ...


# A queued post may be claimed once its next attempt is due (a copy of its message
# arriving early must not cut a Retry-After short); a publishing one when its lease ran
# out, or by the very task that holds it (the message redelivered after its worker died)
# if that attempt had not started a send. A send started (send_started_at) under a lease
# that outlasts the longest call: once the lease has run out, that request can no longer
# be in flight, and the taker looks the post up before anything else (needs_reconcile).
_CLAIM = """
WITH c AS (
    UPDATE social_posts SET
        status = 'publishing', lease_owner = %(owner)s,
        lease_expires_at = now() + make_interval(secs => %(lease)s),
        needs_reconcile = needs_reconcile
            OR (status = 'publishing' AND send_started_at IS NOT NULL),
        send_started_at = NULL,
        claim_count = claim_count + 1, open_claims = open_claims + 1, updated_at = now()
    WHERE id = %(id)s
      AND ((status = 'queued'
            AND (next_attempt_at IS NULL
                 OR next_attempt_at <= now() + make_interval(secs => %(early)s)))
           OR (status = 'publishing'
               AND (lease_expires_at < now()
                    OR (lease_owner = %(owner)s AND send_started_at IS NULL))))
    RETURNING id, user_id, content, platforms, media_urls, platform_options, overrides,
              account_ids, step, step_attempts, needs_reconcile, claim_count, open_claims,
              paced_since, scheduled_for
)
SELECT c.*,
    (SELECT jsonb_object_agg(t.platform, to_jsonb(t) - 'post_id')
       FROM post_targets t WHERE t.post_id = c.id) AS targets,
    (SELECT jsonb_object_agg(k.provider, k.encrypted_api_key)
       FROM user_social_credentials k
      WHERE k.user_id = c.user_id AND k.invalid_at IS NULL) AS credentials
FROM c
"""


def claim(
    conn: Conn,
    post_id: str | uuid.UUID,
    owner: str,
    lease_seconds: float,
    *,
    early_seconds: float = 0.25,
) -> Claim | None:
    """Take `post_id` for one attempt, or None when it is not ours to run now."""
    pid = validate.as_uuid(post_id, "post_id")
    row = conn.execute(
        _CLAIM,
        {"id": pid, "owner": owner, "lease": float(lease_seconds), "early": float(early_seconds)},
    ).fetchone()
    return _claim_from(row) if row is not None else None


def _claim_from(row: dict[str, Any]) -> Claim:
    targets: dict[str, dict[str, Any]] = row["targets"] or {}
    return Claim(
        post_id=str(row["id"]),
        user_id=str(row["user_id"]),
        content=row["content"] or "",
        platforms=[p for p in (row["platforms"] or []) if p in targets],
        media_urls=list(row["media_urls"] or []),
        platform_options=row["platform_options"],
        overrides=row.get("overrides"),
        step=row["step"] or 0,
        step_attempts=row["step_attempts"],
        needs_reconcile=row["needs_reconcile"],
        targets=targets,
        credentials=row["credentials"] or {},
        account_ids=dict(row.get("account_ids") or {}),
        claim_count=row["claim_count"],
        open_claims=row["open_claims"],
        paced_since=row.get("paced_since"),
        scheduled_for=row.get("scheduled_for"),
    )


# Statements of one record, in one round trip. The attempt is logged whatever happens
# (it did happen); the post moves only if we still hold its lease, and its targets
# only if the post moved. A posted or cancelled target never changes again.
_RECORD = """
WITH a AS (
    INSERT INTO post_attempts (post_id, step, provider, credential_source, platforms,
        idempotency_key, http_status, latency_ms, outcome, error, provider_post_id)
    SELECT %(id)s, x.step, x.provider, x.credential_source, x.platforms,
           x.idempotency_key, x.http_status, x.latency_ms, x.outcome, x.error,
           x.provider_post_id
    FROM jsonb_to_recordset(%(attempts)s) AS x(
        step int, provider text, credential_source text, platforms text[],
        idempotency_key text, http_status int, latency_ms int, outcome text, error text,
        provider_post_id text)
), p AS (
    UPDATE social_posts SET
        status = %(status)s,
        step = %(step)s,
        step_attempts = %(step_attempts)s,
        needs_reconcile = %(needs_reconcile)s,
        lease_owner = NULL,
        lease_expires_at = NULL,
        send_started_at = NULL,
        open_claims = 0,
        paced_since = CASE WHEN %(paced)s THEN COALESCE(paced_since, now()) END,
        next_attempt_at = %(next_attempt_at)s,
        queued_at = CASE WHEN %(status)s = 'queued' THEN now() ELSE queued_at END,
        provider = CASE WHEN %(final)s THEN %(provider)s ELSE provider END,
        provider_post_id = CASE WHEN %(final)s THEN %(provider_post_id)s
                                ELSE provider_post_id END,
        platform_post_ids = CASE WHEN %(final)s THEN %(platform_post_ids)s
                                 ELSE platform_post_ids END,
        platform_post_urls = CASE WHEN %(final)s THEN %(platform_post_urls)s
                                  ELSE platform_post_urls END,
        posted_at = CASE WHEN %(final)s THEN %(posted_at)s ELSE posted_at END,
        error_message = CASE WHEN %(final)s THEN %(error_message)s ELSE error_message END,
        finished_at = CASE WHEN %(final)s THEN now() ELSE finished_at END,
        updated_at = now()
    WHERE id = %(id)s AND status = 'publishing' AND lease_owner = %(owner)s
      AND %(status)s = ANY(%(allowed)s)
    RETURNING id
), t AS (
    UPDATE post_targets pt SET
        status = u.status,
        provider = COALESCE(u.provider, pt.provider),
        credential_source = COALESCE(u.credential_source, pt.credential_source),
        provider_post_id = COALESCE(u.provider_post_id, pt.provider_post_id),
        platform_post_id = COALESCE(u.platform_post_id, pt.platform_post_id),
        platform_post_url = COALESCE(u.platform_post_url, pt.platform_post_url),
        published_at = COALESCE(u.published_at, pt.published_at),
        accepted_at = CASE WHEN u.status = 'accepted' THEN now() ELSE pt.accepted_at END,
        error = u.error,
        updated_at = now()
    FROM p, jsonb_to_recordset(%(targets)s) AS u(
        platform text, status text, provider text, credential_source text,
        provider_post_id text, platform_post_id text, platform_post_url text, error text,
        published_at timestamptz)
    WHERE pt.post_id = p.id AND pt.platform = u.platform AND pt.status = ANY(%(mutable)s)
)
SELECT count(*) AS kept FROM p
"""

_MUTABLE_TARGETS = [s for s, nxt in states.TARGET_TRANSITIONS.items() if nxt]


def record(
    conn: Conn,
    claim: Claim,
    owner: str,
    plan: PlanLike,
    attempt: AttemptRow | None,
    skipped: tuple[AttemptRow, ...] = (),
) -> bool:
    """Write one attempt's consequences (after the steps it `skipped`, logged first).
    False when the lease was lost meanwhile (the attempt is still logged; the post is
    left to whoever holds it now)."""
    final = plan.final or {}
    is_final = plan.status in states.FINAL
    # A queued post's next time is set below from the countdown, in the database's clock.
    next_at = plan.defer_until if plan.status == states.SCHEDULED else None
    targets = []
    for change in plan.targets:
        row = dict(vars(change))  # shallow: plain str or None, and one time
        row["error"] = validate.clip(row.get("error"))
        when = row.get("published_at")
        row["published_at"] = when.isoformat() if isinstance(when, datetime) else None
        targets.append(row)
    attempts = []
    for one in (*skipped, *((attempt,) if attempt is not None else ())):
        a = dict(vars(one))
        a["error"] = validate.clip(a.get("error"))
        attempts.append(a)
    params = {
        "id": validate.as_uuid(claim.post_id, "post_id"),
        "owner": owner,
        "status": plan.status,
        "allowed": sorted(states.TRANSITIONS[states.PUBLISHING]),
        "step": plan.step,
        "step_attempts": plan.step_attempts,
        "needs_reconcile": plan.needs_reconcile,
        "next_attempt_at": next_at,
        "final": is_final,
        "provider": final.get("provider"),
        "provider_post_id": final.get("provider_post_id"),
        "platform_post_ids": Jsonb(final.get("platform_post_ids") or {}) if is_final else None,
        "platform_post_urls": Jsonb(final.get("platform_post_urls") or {}) if is_final else None,
        "posted_at": final.get("posted_at"),
        "error_message": validate.clip(final.get("error_message")),
        "targets": Jsonb(targets),
        "attempts": Jsonb(attempts),
        "mutable": _MUTABLE_TARGETS,
        "paced": bool(getattr(plan, "paced", False)),
    }
    query = _RECORD
    if plan.status == states.QUEUED and plan.countdown:
        query = query.replace(
            "next_attempt_at = %(next_attempt_at)s",
            "next_attempt_at = now() + make_interval(secs => %(countdown)s)",
        )
        params["countdown"] = float(plan.countdown)
    outcome = conn.execute(query, params).fetchone()
    return bool(outcome and outcome["kept"])


def start_send(conn: Conn, post_id: str, owner: str, lease_seconds: float) -> bool:
    """Right before a provider create: renew `owner`'s lease for the whole call and note
    that a send has started. False when the lease is no longer ours: do not send."""
    row = conn.execute(
        """UPDATE social_posts SET send_started_at = now(),
                  lease_expires_at = now() + make_interval(secs => %s)
           WHERE id = %s AND status = 'publishing' AND lease_owner = %s
           RETURNING 1 AS ok""",
        (float(lease_seconds), validate.as_uuid(post_id, "post_id"), owner),
    ).fetchone()
    return row is not None


def user_keys(conn: Conn, user_ids: list[Any]) -> dict[str, dict[str, str]]:
    """user id -> provider -> encrypted key, valid keys only."""
    out: dict[str, dict[str, str]] = {}
    for row in conn.execute(
        """SELECT user_id, provider, encrypted_api_key FROM user_social_credentials
           WHERE user_id = ANY(%s) AND invalid_at IS NULL""",
        (user_ids,),
    ):
        out.setdefault(str(row["user_id"]), {})[row["provider"]] = row["encrypted_api_key"]
    return out


# Insert a due post already claimed by its intake task, targets included, and hand back
# what the first attempt needs: one round trip where insert-then-claim would take two.
_INSERT_CLAIMED = """
WITH ins AS (
    INSERT INTO social_posts (id, user_id, content, platforms, media_urls, scheduled_for,
        status, campaign_id, batch_number, platform_options, account_ids, overrides, queued_at,
        lease_owner, lease_expires_at, claim_count, open_claims, notify_task, notify_queue)
    VALUES (%(id)s, %(user_id)s, %(content)s, %(platforms)s, %(media_urls)s,
        %(scheduled_for)s, 'publishing', %(campaign_id)s, %(batch_number)s,
        %(platform_options)s, %(account_ids)s, %(overrides)s, now(), %(owner)s,
        now() + make_interval(secs => %(lease)s), 1, 1, %(notify_task)s, %(notify_queue)s)
    ON CONFLICT (id) DO NOTHING
    RETURNING id, user_id, content, platforms, media_urls, platform_options, overrides,
              account_ids, step, step_attempts, needs_reconcile, claim_count, open_claims,
              scheduled_for
), tgt AS (
    INSERT INTO post_targets (post_id, platform)
    SELECT ins.id, p.platform FROM ins, unnest(ins.platforms) AS p(platform)
    RETURNING *
)
SELECT ins.*,
    (SELECT jsonb_object_agg(tgt.platform, to_jsonb(tgt) - 'post_id') FROM tgt) AS targets,
    (SELECT jsonb_object_agg(k.provider, k.encrypted_api_key)
       FROM user_social_credentials k
      WHERE k.user_id = ins.user_id AND k.invalid_at IS NULL) AS credentials
FROM ins
"""


def insert_claimed(conn: Conn, new: Any, owner: str, lease_seconds: float) -> Claim | None:
    """Insert `new` (a db.posts.NewPost, due now) as publishing under `owner`'s lease.
    None when a post with that id already exists (a repeat): nothing is changed."""
    post = new.validated()
    row = conn.execute(
        _INSERT_CLAIMED,
        {
            "id": post.id, "user_id": post.user_id, "content": post.content,
            "platforms": post.platforms, "media_urls": post.media_urls,
            "scheduled_for": post.scheduled_for, "campaign_id": post.campaign_id,
            "batch_number": post.batch_number,
            "platform_options": Jsonb(post.platform_options) if post.platform_options else None,
            "account_ids": Jsonb(post.account_ids) if post.account_ids else None,
            "overrides": Jsonb(post.overrides) if post.overrides else None,
            "owner": owner, "lease": float(lease_seconds),
            "notify_task": post.notify_task, "notify_queue": post.notify_queue,
        },
    ).fetchone()
    return _claim_from(row) if row is not None else None
