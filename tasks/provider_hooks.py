"""Provider webhooks in: the fast path for confirmed outcomes (the sweep stays the net).

A verified event (api/hooks.py checks the secret or the signature) is read into the same
`TargetResult`s the poll builds from the providers' REST answers, then judged by
tasks.confirm `judge` and written by tasks.confirm `write`: a hook changes a target
exactly as the poll would, and only a target the poll would still ask about (accepted;
a LATE one posted within the revision window).

What a hook alone cannot decide is left to the poll, put first in its line (`nudge`):
a PostForMe failure before its post is `processed` (PostForMe retries a platform once,
and the retry may succeed), or a PostForMe result whose platform is not named. An event
for a post a worker holds right now is refused with `Held` (nothing recorded: the
provider's retry, or the sweep, applies it), and so is a PostForMe result for a post we
do not know while a create is out (its answer may not be recorded yet). Each event is
taken once, by the provider's own id (LATE's event id; PostForMe's result id), in the
transaction that applies it.

LATE's webhook fields differ from its REST ones: `post.id` (not `_id`),
`platforms[].publishedUrl` (not `platformPostUrl`), `platforms[].error` (not
`errorMessage`); both spellings are read.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import settings
from db import hooks
from db.pool import connection
from providers import verdicts
from providers.base import first_str
from providers.config import max_request_seconds
from providers.http import parse_time
from providers.outcomes import TargetResult
from providers.platforms import normalize_platform
from providers.redact import clean_error
from tasks.confirm import Answer, judge, write

Send = Callable[[str], None]

POSTFORME_EVENTS = frozenset({
    "social.post.created", "social.post.updated", "social.post.deleted",
    "social.post.result.created", "social.account.created", "social.account.updated"})
LATE_EVENTS = frozenset({
    "post.scheduled", "post.published", "post.failed", "post.partial", "post.cancelled",
    "post.recycled", "post.platform.published", "post.platform.failed",
    "post.platform.deleted", "post.tiktok.url_resolved", "account.connected",
    "account.disconnected", "message.received", "comment.received", "webhook.test"})
# The events that carry a platform's outcome (what `socialpost hooks register` asks
# for); the others are acknowledged and ignored.
POSTFORME_RESULT = "social.post.result.created"
LATE_OUTCOMES = frozenset({"post.published", "post.failed", "post.partial",
                           "post.platform.published", "post.platform.failed"})
_LATE_SUCCESS = {"published": True, "failed": False}
KEEP_EVENTS = 7 * 86400.0  # seconds an event id is remembered: both providers stop
# retrying long before (PostForMe within seconds, LATE within hours)


class BadEvent(ValueError):
    """The body is not an event of the provider's: the message names the field."""


class Held(Exception):
    """A worker holds the post now: the event is not taken (asked again later)."""


@dataclass(frozen=True)
class Event:
    """What one provider event says: platform -> result (only results that decide:
    published or failed) for the provider's post; whether its failures are final
    (LATE's are; PostForMe's only once its post is `processed`), and whether a result
    could not be placed on a platform."""

    provider: str
    kind: str
    event_id: str
    provider_post_id: str | None = None
    results: dict[str, TargetResult] = field(default_factory=dict)
    final: bool = True
    unplaced: TargetResult | None = None  # a result naming no platform (PostForMe's)


@dataclass(frozen=True)
class Receipt:
    """The answer: `applied` (changed targets, maybe none), `duplicate` (taken before),
    or `ignored` (not about an outcome, or about no target that waits)."""

    result: str
    changed: int = 0


def _object(value: Any, name: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise BadEvent(f"{name}: must be a JSON object")
    return value


def parse_postforme(body: Any) -> Event:
    """`{event_type, data}`; a result (`social.post.result.created`) is one account's
    outcome: `{id, post_id, social_account_id, success, error, platform_data}`."""
    doc = _object(body, "body")
    kind = doc.get("event_type")
    if not isinstance(kind, str) or kind not in POSTFORME_EVENTS:
        raise BadEvent(f"event_type: must be one of {sorted(POSTFORME_EVENTS)}")
    data = _object(doc.get("data"), "data")
    event_id = first_str(data.get("id"))
    if event_id is None:
        raise BadEvent("data.id: is required")
    if kind != POSTFORME_RESULT:
        return Event("postforme", kind, event_id)
    post_id = first_str(data.get("post_id"))
    if post_id is None:
        raise BadEvent("data.post_id: is required for a result")
    success = data.get("success")
    if not isinstance(success, bool):
        raise BadEvent("data.success: must be true or false")
    # The real results name the account only (`social_account_id`, no platform): such a
    # result is placed in `receive` when the provider post has one waiting target, else
    # left to the poll, which maps accounts to platforms.
    platform = normalize_platform(data.get("platform"))
    details = data.get("platform_data")
    details = details if isinstance(details, dict) else {}
    error = data.get("error")
    text = clean_error(error) if error else None
    result = TargetResult(
        platform=platform or "", success=success,
        platform_post_id=first_str(details.get("id")),
        platform_post_url=first_str(details.get("url")),
        error=text,
        error_class=verdicts.classify(text) if not success else None,
        published_at=parse_time(data.get("published_at") or data.get("created_at"))
        if success else None)
    if platform is None:
        return Event("postforme", kind, event_id, post_id, {}, final=False, unplaced=result)
    return Event("postforme", kind, event_id, post_id, {platform: result}, final=False)


def _late_target(item: dict[str, Any]) -> TargetResult | None:
    # `post.platforms[]` entries say `platform`; a per-platform event's own block `name`
    platform = normalize_platform(first_str(item.get("platform"), item.get("name")))
    success = _LATE_SUCCESS.get(str(item.get("status") or "").lower())
    if platform is None or success is None:
        return None
    error = item.get("error") or item.get("errorMessage")
    text = clean_error(error) if error else None
    return TargetResult(
        platform=platform, success=success,
        platform_post_id=first_str(item.get("platformPostId")),
        platform_post_url=first_str(item.get("publishedUrl"), item.get("platformPostUrl")),
        error=text,
        error_class=verdicts.classify(text, first_str(item.get("errorCategory")),
                                      first_str(item.get("errorSource")))
        if not success else None,
        published_at=parse_time(item.get("publishedAt")) if success else None)


def parse_late(body: Any, kind: str | None, event_id: str | None) -> Event:
    """`{id, event, post: {id, platforms: [...]}, platform?, timestamp}`; the headers'
    event and event id win over the body's. A per-platform event speaks of its
    `platform` only; a post event of every platform listed."""
    doc = _object(body, "body")
    kind = kind or first_str(doc.get("event"))
    if kind not in LATE_EVENTS:
        raise BadEvent(f"event: must be one of {sorted(LATE_EVENTS)}")
    event_id = event_id or first_str(doc.get("id"))
    if event_id is None:
        raise BadEvent("X-Zernio-Event-Id: is required")
    if kind not in LATE_OUTCOMES:
        return Event("late", kind, event_id)
    post = _object(doc.get("post"), "post")
    post_id = first_str(post.get("id"), post.get("_id"))
    if post_id is None:
        raise BadEvent("post.id: is required")
    if kind.startswith("post.platform."):
        items = [_object(doc.get("platform"), "platform")]
    else:
        listed = post.get("platforms")
        if not isinstance(listed, list):
            raise BadEvent("post.platforms: must be an array")
        items = [i for i in listed if isinstance(i, dict)]
    results = {r.platform: r for r in map(_late_target, items) if r is not None}
    return Event("late", kind, event_id, post_id, results)


def receive(event: Event, send: Send, *, dsn: str | None = None) -> Receipt:
    """Take one verified event: judge its results as the poll would and write them; a
    requeued post's delivery is sent after the commit. Raises Held (nothing taken) when
    a worker holds the post, or may be about to record it (`_maybe_in_flight`)."""
    config = settings.current()
    now = datetime.now(UTC)
    ppid = event.provider_post_id
    if ppid is None:  # not about an outcome: nothing to take, nothing to remember
        return Receipt("ignored")
    with connection(dsn) as conn, conn.transaction():
        if not hooks.first_time(conn, event.provider, event.event_id):
            return Receipt("duplicate")
        rows = hooks.targets_of(conn, event.provider, ppid, config.revision_window)
        if not rows:
            if _maybe_in_flight(conn, event.provider, ppid):
                raise Held(f"{event.provider} post {ppid}: not recorded yet")
            return Receipt("ignored")
        if event.unplaced is not None:  # placed only where it cannot be another's
            held = hooks.platforms_of(conn, event.provider, ppid)
            if len(held) == 1:
                event = replace(event, unplaced=None,
                                results={held[0]: replace(event.unplaced, platform=held[0])})
        undecided = event.unplaced is not None or any(
            r.success is False and not event.final for r in event.results.values())
        if undecided:
            hooks.nudge(conn, event.provider, ppid)
        changes = [c for r in rows if r["platform"] in event.results
                   and (c := judge(r, Answer(event.results[r["platform"]], event.final),
                                   now, config.accepted_deadline)) is not None]
        written = write(conn, changes, now)
        if written.held:
            raise Held(", ".join(written.held))  # rolls the transaction back
    for post_id in written.requeued:
        send(post_id)
    return Receipt("applied", len(written.made))


def _maybe_in_flight(conn: Any, provider: str, ppid: str) -> bool:
    """A PostForMe result about a post we hold no target of may be about the post a
    worker is creating right now: PostForMe can post a result before its answer to the
    create reaches the worker and is recorded. Not taken then, so one of its retries
    (8, within seconds) finds it recorded; a post we know, or no create out, is simply
    not ours to wait for. Not LATE's: its publishNow answer carries the outcomes the
    worker records itself, and LATE disables an endpoint after 20 failures in a row."""
    if provider != "postforme" or hooks.platforms_of(conn, provider, ppid):
        return False
    return hooks.create_in_flight(conn, max_request_seconds(provider))


def forget_old_events(*, dsn: str | None = None) -> int:
    """Forget event ids older than KEEP_EVENTS (beat's recovery sweep calls this)."""
    with connection(dsn) as conn:
        return hooks.prune_events(conn, KEEP_EVENTS)
