"""Posts in and out of the ledger: insert a new post, cancel one, read posts and history.

The delivery state machine (claim, record, release, sweeps) lives in db.delivery and
nowhere else; this module only creates posts, cancels them before delivery starts, and
reads them back. Status changes here are conditional UPDATEs whose allowed source
statuses come from db.states, so the database decides who wins.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from psycopg.types.json import Jsonb

from db import states, validate
from db.errors import InvalidInput, NotFound
from db.events import events_for_post
from db.pool import Conn


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
    account_ids: dict[str, str] | None = None  # platform -> the account the request named
    overrides: dict[str, Any] | None = None  # platform -> its own content and options
    status: str | None = None
    error_message: str | None = None
    id: uuid.UUID | str | None = None
    notify_task: str | None = None  # a producer's Celery task, sent the post's final event
    notify_queue: str | None = None

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
                status=status, error_message=validate.clip(self.error_message),
                notify_task=self.notify_task, notify_queue=self.notify_queue,
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
            account_ids=validate.account_ids(self.account_ids, platforms),
            overrides=validate.json_object(self.overrides, "overrides"),
            status=status,
            error_message=validate.clip(self.error_message),
            notify_task=self.notify_task,
            notify_queue=self.notify_queue,
        )


T = TypeVar("T")


def _lenient(check: Callable[[], T], fallback: T) -> T:
    """The checked value, or `fallback` when it is invalid (for recording refused input)."""
    try:
        return check()
    except InvalidInput:
        return fallback


# --- insert -------------------------------------------------------------------------

_INSERT = """
WITH ins AS (
    INSERT INTO social_posts (id, user_id, content, platforms, media_urls, scheduled_for,
        status, error_message, campaign_id, batch_number, platform_options, account_ids,
        overrides, notify_task, notify_queue, queued_at, finished_at)
    VALUES (%(id)s, %(user_id)s, %(content)s, %(platforms)s, %(media_urls)s, %(scheduled_for)s,
        %(status)s, %(error_message)s, %(campaign_id)s, %(batch_number)s, %(platform_options)s,
        %(account_ids)s, %(overrides)s, %(notify_task)s, %(notify_queue)s,
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
        "account_ids": Jsonb(post.account_ids) if post.account_ids else None,
        "notify_task": post.notify_task, "notify_queue": post.notify_queue,
        "overrides": Jsonb(post.overrides) if post.overrides else None,
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


# What makes two requests under one post id the same request. The time and the campaign
# are left out on purpose: a campaign re-sent later sends a due batch as "now".
_SAME_REQUEST = ("user_id", "content", "platforms", "media_urls", "platform_options",
                 "account_ids", "overrides")


def request_differences(row: dict[str, Any], new: NewPost) -> list[str]:
    """The fields in which `new` differs from the stored post `row` (same id); [] when it
    is a repeat of the same request. Platforms compare as sets (order is not meaning)."""
    wanted = new.validated()
    differs = []
    for name in _SAME_REQUEST:
        stored, given = row.get(name), getattr(wanted, name)
        if name == "platforms":
            stored, given = set(stored or []), set(given or [])
        elif name in ("media_urls",):
            stored, given = list(stored or []), list(given or [])
        elif name in ("platform_options", "account_ids", "overrides"):
            stored, given = stored or None, given or None
        elif name == "user_id":
            stored, given = str(stored), str(given)
        if stored != given:
            differs.append(name)
    return differs


def status_of(conn: Conn, post_id: uuid.UUID | str) -> str | None:
    """A post's status alone (None for an unknown id): cheap enough to poll."""
    row = conn.execute("SELECT status FROM social_posts WHERE id = %s",
                       (validate.as_uuid(post_id, "post_id"),)).fetchone()
    return row["status"] if row else None


def cancel_post(conn: Conn, post_id: uuid.UUID | str) -> bool:
    """Cancel a scheduled or queued post (and its pending targets); False otherwise.

    Only a post nothing of which may be out: one with a target already posted (waiting
    for another platform's retry) or a send not yet resolved (needs_reconcile) is not
    cancelled, since `cancelled` would then be a lie; `cancel_refusal` says why."""
    row = conn.execute(
        """WITH c AS (
               UPDATE social_posts p SET status = 'cancelled', finished_at = now(),
                      updated_at = now(), lease_owner = NULL, lease_expires_at = NULL
               WHERE id = %s AND status = ANY(%s) AND NOT needs_reconcile
                 AND NOT handed_to_provider
                 AND NOT EXISTS (SELECT 1 FROM post_targets t
                                 WHERE t.post_id = p.id
                                   AND t.status IN ('posted', 'accepted'))
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


def cancel_refusal(row: dict[str, Any]) -> str:
    """Why `cancel_post` left post `row` (as get_post returns it) alone, in one line."""
    posted = [t["platform"] for t in row.get("targets") or []
              if t["status"] in ("posted", "accepted")]
    if row["status"] in states.FINAL:
        return f"it is already {row['status']}"
    if posted:
        return f"it is already published on {', '.join(posted)}"
    if row.get("needs_reconcile"):
        return "a send may have reached the provider and is not resolved yet"
    if row.get("handed_to_provider"):  # the first release's seed service did that
        return (f"it was handed to {row.get('provider') or 'the provider'}'s own scheduler "
                f"(post {row.get('provider_post_id')}): delete it there")
    return f"it is already {row['status']}"


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
    """One post with its targets (platform order), attempts and events (oldest first;
    the outbox's summaries, db.events)."""
    pid = validate.as_uuid(post_id, "post_id")
    row = conn.execute("SELECT * FROM social_posts WHERE id = %s", (pid,)).fetchone()
    if row is None:
        return None
    post = _attach(conn, [row])[0]
    post["events"] = events_for_post(conn, pid)
    return post


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
