"""Accepting a publish request: validate, store under its id, hand it on. No Celery here.

The id is the idempotency handle end to end: the producer's `post_id`, else one derived
from the Celery task id, so a redelivered message finds the row it already wrote.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from db import campaigns, posts
from db import delivery as ledger
from db.errors import DbError, InvalidInput, NotFound
from db.pool import connection
from providers.content import late_only
from tasks import routing
from tasks.campaigns import overrides_for
from tasks.delivery import ClaimedAtInsert, FirstAttempt, RepeatOfDuePost, lease_seconds
from tasks.validation import (
    InvalidRequest,
    PublishInput,
    check_publish_input,
    parse_celery_name,
    parse_uuid,
)

log = logging.getLogger("socialpost.intake")

# Derives a post id from a task id: the same message always maps to the same post.
TASK_NAMESPACE = uuid.UUID("6f1c2a8e-5d4b-4c39-9a57-0b6c3e2d7f10")

Acceptance = dict[str, Any]
# The fields each task takes; anything else is refused by name (a typo such as
# "scheduled_at" must not publish at once what was meant for later).
POST_FIELDS = frozenset({
    "user_id", "content", "platforms", "media_urls", "scheduled_for", "campaign_id",
    "batch_number", "post_id", "platform_options", "account_ids", "overrides",
    "notify_task", "notify_queue",
})
BATCH_FIELDS = POST_FIELDS - {"content"}


def unknown_fields(raw: dict[str, Any], known: frozenset[str]) -> list[str]:
    """One problem per field the task does not take, named."""
    return [f"{name}: unknown field (known: {', '.join(sorted(known))})"
            for name in sorted(set(raw) - known)]


def post_id_for(given: object, task_id: str | None) -> uuid.UUID:
    problems: list[str] = []
    parsed = parse_uuid("post_id", given, problems, required=False)
    if parsed is not None:
        return parsed
    return uuid.uuid5(TASK_NAMESPACE, task_id) if task_id else uuid.uuid4()


def _storable(content: object) -> str | None:
    """Refused content as far as a text column can keep it: PostgreSQL text cannot hold
    NUL, and a refusal must be recorded (and answered) whatever the producer sent."""
    return content[:10_000].replace("\x00", "") if isinstance(content, str) else None


def _record_refusal(
    raw: dict[str, Any], post_id: uuid.UUID, error: str, dsn: str | None = None
) -> Acceptance:
    """Keep a failed row so the refusal shows in history; without a valid user_id there is
    no owner to file it under, and the refusal is only returned and logged."""
    user = parse_uuid("user_id", raw.get("user_id"), [], required=False)
    log.warning("post %s refused: %s", post_id, error)
    if user is None:
        return {"post_id": str(post_id), "status": "failed", "error": error}
    content = raw.get("content")
    campaign = parse_uuid("campaign_id", raw.get("campaign_id"), [], required=False)
    batch = raw.get("batch_number")
    queue = parse_celery_name("notify_queue", raw.get("notify_queue"), [])
    new = posts.NewPost(
        id=post_id,
        user_id=user,
        content=_storable(content),
        platforms=[],
        media_urls=[],
        scheduled_for=None,
        campaign_id=campaign,
        batch_number=batch
        if isinstance(batch, int) and not isinstance(batch, bool) and batch > 0
        else None,
        status="failed",
        error_message=error,
        # The producer's callback hears of the refusal too (post.failed), when it named one
        # with its queue (without one it could only be dropped by our workers).
        notify_task=parse_celery_name("notify_task", raw.get("notify_task"), []) if queue
        else None,
        notify_queue=queue,
    )
    try:
        with connection(dsn) as conn:
            posts.insert_post(conn, new)  # a post already under this id stays as it is
    except (InvalidInput, DbError, psycopg.DataError) as exc:
        log.warning("post %s: refusal not recorded: %s", post_id, exc)
    # What the producer sent was refused; nothing is told of a post this id may name.
    return {"post_id": str(post_id), "status": "failed", "error": error}


def accept(
    raw: dict[str, Any],
    task_id: str | None,
    enqueue: Callable[[str], None],
    dsn: str | None = None,
    first: HoldFirstAttempt | None = None,
) -> Acceptance:
    """Validate and store one request; `enqueue(post_id)` starts delivery of a due post.
    The producer's post_id is validated as given: a malformed one is refused, never
    swapped for a derived id (the producer could not find its post, nor repeat it safely)."""
    post_id = post_id_for(raw.get("post_id"), task_id)
    unknown = unknown_fields(raw, POST_FIELDS)
    try:
        data: PublishInput = check_publish_input(
            **{k: v for k, v in raw.items() if k in POST_FIELDS}
        )
    except InvalidRequest as exc:
        return _record_refusal(raw, post_id, "; ".join([*exc.problems, *unknown]), dsn)
    if unknown:
        return _record_refusal(raw, post_id, "; ".join(unknown), dsn)
    return store(data, post_id, enqueue, dsn, first)


@dataclass(frozen=True)
class HoldFirstAttempt:
    """Where intake hands a due post's first attempt instead of enqueueing a delivery
    message: `hold` receives it (a ClaimedAtInsert for a new post, a RepeatOfDuePost for
    a repeat) and the caller runs it once the acceptance is safe. For a Celery task that
    is after its result is stored (tasks.publish); for the seed service, at once."""

    owner: str
    hold: Callable[[FirstAttempt], None]


def new_post(data: PublishInput, post_id: uuid.UUID | str) -> posts.NewPost:
    """The row a checked request becomes: queued when due, else scheduled."""
    return posts.NewPost(
        id=post_id,
        user_id=data.user_id,
        content=data.content,
        platforms=list(data.platforms),
        media_urls=list(data.media_urls),
        scheduled_for=data.scheduled_for,
        campaign_id=data.campaign_id,
        batch_number=data.batch_number,
        platform_options=data.platform_options or None,
        account_ids=data.account_ids or None,
        notify_task=data.notify_task,
        notify_queue=data.notify_queue,
        overrides=data.overrides or None,
        status="queued" if data.due_now() else "scheduled",
        error_message=None,
    )


def store(
    data: PublishInput,
    post_id: uuid.UUID,
    enqueue: Callable[[str], None],
    dsn: str | None = None,
    first: HoldFirstAttempt | None = None,
) -> Acceptance:
    if late_only(data.overrides):
        with connection(dsn) as conn:
            unroutable = routing.intake_problems(conn, str(data.user_id), data.overrides)
        if unroutable:
            raw = {"user_id": str(data.user_id), "content": data.content,
                   "campaign_id": data.campaign_id and str(data.campaign_id),
                   "batch_number": data.batch_number,
                   # the producer's callback hears of the refusal too (post.failed)
                   "notify_task": data.notify_task, "notify_queue": data.notify_queue}
            return _record_refusal(raw, post_id, "; ".join(unroutable), dsn)
    due = data.due_now()
    new = new_post(data, post_id)
    if due and first is not None:
        with connection(dsn) as conn:
            claim = ledger.insert_claimed(conn, new, first.owner, lease_seconds())
        if claim is not None:
            first.hold(ClaimedAtInsert(claim))
            return {"post_id": str(post_id), "status": "queued"}
    with connection(dsn) as conn:
        row, created = posts.insert_post(conn, new)
    differs = [] if created else posts.request_differences(row, new)
    if differs:
        # Another request already holds this id: refuse, and tell nothing about that post.
        error = (f"post_id: {post_id} is already used by a different request "
                 f"({', '.join(differs)} differ); send a new post_id, or the same request "
                 "to repeat it")
        log.warning("post %s refused: %s", post_id, error)
        return {"post_id": str(post_id), "status": "failed", "error": error, "conflict": True}
    if row["status"] in ("queued", "publishing"):
        # Also on a repeat: the first delivery may have been lost with its worker; a
        # second try is harmless, since only one claim can win.
        if first is not None:
            first.hold(RepeatOfDuePost(str(post_id)))
        elif row["status"] == "queued":
            enqueue(str(post_id))
    answer: Acceptance = {"post_id": str(post_id), "status": row["status"]}
    if not created:
        answer["duplicate"] = True
    if row.get("error_message"):
        answer["error"] = row["error_message"]
    return answer


class BatchRefused(ValueError):
    """A batch message that cannot become a post; str() says why, naming the field.
    `unreadable`: the calendar could not be read (no caption to keep)."""

    def __init__(self, error: str, unreadable: bool = False) -> None:
        super().__init__(error)
        self.unreadable = unreadable


def batch_request(raw: dict[str, Any], post_id: uuid.UUID | str, dsn: str | None = None
                  ) -> dict[str, Any]:
    """The publish request calendar batch n of the campaign makes (its caption, media and
    time read from the calendar), as `accept` takes it; BatchRefused otherwise. Shared
    by the worker's intake and the producer client, which records the row first."""
    problems = unknown_fields(raw, BATCH_FIELDS)
    user = parse_uuid("user_id", raw.get("user_id"), problems, required=True)
    campaign = parse_uuid("campaign_id", raw.get("campaign_id"), problems, required=True)
    parse_uuid("post_id", raw.get("post_id"), problems, required=False)
    number = raw.get("batch_number")
    if isinstance(number, bool) or not isinstance(number, int) or number < 1:
        problems.append(f"batch_number: must be an integer >= 1, got {number!r}")
    if problems or user is None or campaign is None or not isinstance(number, int):
        raise BatchRefused("; ".join(problems))
    try:
        with connection(dsn) as conn:  # one statement, only this batch's entries back
            owner, batch = campaigns.batch_and_owner(conn, campaign, number)
    except (NotFound, InvalidInput) as exc:
        raise BatchRefused(str(exc), unreadable=True) from None
    if str(owner) != str(user):
        raise BatchRefused("campaign_id: belongs to another user")
    media = raw.get("media_urls")
    when: object = raw.get("scheduled_for")
    # None: the calendar's time. PUBLISH_NOW (""): now, whatever the calendar says.
    if when is None and batch.scheduled_for is not None:
        when = batch.scheduled_for
    return {
        "user_id": str(user),
        "content": batch.caption,
        "platforms": raw.get("platforms"),
        "media_urls": media if media is not None else list(batch.media_urls),
        "scheduled_for": when.isoformat() if isinstance(when, datetime) else when,
        "campaign_id": str(campaign),
        "batch_number": batch.batch_number,
        "post_id": str(post_id),
        "platform_options": raw.get("platform_options"),
        "account_ids": raw.get("account_ids"),
        "notify_task": raw.get("notify_task"),
        "notify_queue": raw.get("notify_queue"),
        "overrides": raw.get("overrides") if raw.get("overrides") is not None
        else overrides_for(batch, raw.get("platforms")),
    }


def accept_batch(
    raw: dict[str, Any],
    task_id: str | None,
    enqueue: Callable[[str], None],
    dsn: str | None = None,
    first: HoldFirstAttempt | None = None,
) -> Acceptance:
    """Read calendar batch n of the campaign and accept it as a post."""
    post_id = post_id_for(raw.get("post_id"), task_id)
    try:
        request = batch_request(raw, post_id, dsn)
    except BatchRefused as exc:
        shown = {**raw, "content": None} if exc.unreadable else raw
        return _record_refusal(shown, post_id, str(exc), dsn)
    return accept(request, task_id, enqueue, dsn, first)
