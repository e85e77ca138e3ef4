"""Checks a publish request field by field before anything is stored or sent.

Shared by the producer client (bad input fails at the caller) and the tasks (bad input
from a producer that skipped the client is recorded as a failed post). Every message
names the field and the rule, so the sender knows what to fix.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import settings
from providers.content import list_problem, parse_overrides, required_problems
from providers.media import check_media_url
from providers.platforms import normalize_platform, normalize_platforms, validate

MAX_CONTENT_CHARS = 100_000  # well above every platform's limit; refuses abuse early
MAX_MEDIA_ITEMS = 35  # TikTok photo posts are the largest legal set
MAX_FUTURE = timedelta(days=365)
# scheduled_for meaning "now" where None means a default time: a publish_batch message
# with None takes the batch's calendar time, with PUBLISH_NOW it publishes at once.
PUBLISH_NOW = ""


def max_past() -> timedelta:
    """How far in the past a scheduled_for may be and still publish now
    (SOCIALPOST_MAX_PAST_SECONDS); further back it is refused."""
    return timedelta(seconds=settings.current().max_past_seconds)


class InvalidRequest(ValueError):
    """Every problem of one request; str() lists them, each naming its field."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))

    @property
    def fields(self) -> list[str]:
        return [p.split(":", 1)[0] for p in self.problems]


class PostIdConflict(InvalidRequest):
    """The post_id is already used by a different request (an HTTP 409, not a 422)."""


@dataclass(frozen=True)
class PublishInput:
    user_id: uuid.UUID
    content: str
    platforms: tuple[str, ...]
    media_urls: tuple[str, ...] = ()
    scheduled_for: datetime | None = None  # aware UTC; None or past-within-grace means now
    campaign_id: uuid.UUID | None = None
    batch_number: int | None = None
    post_id: uuid.UUID | None = None
    platform_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    account_ids: dict[str, str] = field(default_factory=dict)  # platform -> account id
    notify_task: str | None = None  # a producer's Celery task, sent the final event
    notify_queue: str | None = None  # ...on this queue
    # platform -> its own content, media and options, normalised (providers.content)
    overrides: dict[str, dict[str, Any]] = field(default_factory=dict)

    def due_now(self, now: datetime | None = None) -> bool:
        return self.scheduled_for is None or self.scheduled_for <= (now or datetime.now(UTC))


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def parse_uuid(
    name: str, value: object, problems: list[str], *, required: bool
) -> uuid.UUID | None:
    if value is None or value == "":
        if required:
            problems.append(f"{name}: is required (a UUID)")
        return None
    if isinstance(value, uuid.UUID):
        return value
    if not isinstance(value, str):
        problems.append(f"{name}: must be a UUID string, got {type(value).__name__}")
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        problems.append(f"{name}: must be a UUID, got {_short(value)}")
        return None


def parse_datetime(name: str, value: object, problems: list[str]) -> datetime | None:
    """ISO 8601 with an offset (or an aware datetime); naive times are ambiguous: refused."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            problems.append(f"{name}: must be ISO 8601 with an offset, got {_short(value)}")
            return None
    else:
        problems.append(f"{name}: must be an ISO 8601 string, got {type(value).__name__}")
        return None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        problems.append(f"{name}: must carry a UTC offset (e.g. 2026-06-01T09:00:00+00:00)")
        return None
    return parsed.astimezone(UTC)


def _string_list(name: str, value: object, problems: list[str], limit: int) -> list[str] | None:
    if value is None:
        return []
    wrong = list_problem(name, value, limit)
    if wrong or not isinstance(value, list | tuple):
        problems.append(wrong or name)
        return None
    bad = [i for i, item in enumerate(value) if not isinstance(item, str)]
    if bad:
        problems.append(f"{name}[{bad[0]}]: must be a string, got {type(value[bad[0]]).__name__}")
        return None
    return list(value)


def check_publish_input(
    *,
    user_id: object,
    content: object,
    platforms: object,
    media_urls: object = None,
    scheduled_for: object = None,
    campaign_id: object = None,
    batch_number: object = None,
    post_id: object = None,
    platform_options: object = None,
    account_ids: object = None,
    notify_task: object = None,
    notify_queue: object = None,
    overrides: object = None,
    now: datetime | None = None,
) -> PublishInput:
    """Return the request in typed form, or raise InvalidRequest listing every problem."""
    problems: list[str] = []
    uid = parse_uuid("user_id", user_id, problems, required=True)
    pid = parse_uuid("post_id", post_id, problems, required=False)
    cid = parse_uuid("campaign_id", campaign_id, problems, required=False)

    text = ""
    if not isinstance(content, str):
        problems.append(f"content: must be a string, got {type(content).__name__}")
    elif not content.strip():
        problems.append("content: must not be empty")
    elif len(content) > MAX_CONTENT_CHARS:
        problems.append(f"content: at most {MAX_CONTENT_CHARS} characters, got {len(content)}")
    elif any(ord(c) < 32 and c not in "\n\r\t" for c in content):
        problems.append("content: must not contain control characters other than newline and tab")
    else:
        text = content

    names: list[str] = []
    raw_platforms = _string_list("platforms", platforms, problems, limit=20)
    if raw_platforms is not None:
        if not raw_platforms:
            problems.append("platforms: must name at least one platform")
        else:
            try:
                names = normalize_platforms(raw_platforms)
            except ValueError as exc:
                problems.append(f"platforms: {exc}")

    media = _string_list("media_urls", media_urls, problems, limit=MAX_MEDIA_ITEMS) or []
    for i, url in enumerate(media):
        error = check_media_url(url)
        if error:
            problems.append(f"media_urls[{i}]: {error}")

    when = parse_datetime("scheduled_for", scheduled_for, problems)
    current = now or datetime.now(UTC)
    if when is not None:
        grace = max_past()
        if when < current - grace:
            problems.append(
                f"scheduled_for: {when.isoformat()} is more than "
                f"{int(grace.total_seconds())} s in the past; send null to publish now"
            )
        elif when > current + MAX_FUTURE:
            problems.append(f"scheduled_for: at most {MAX_FUTURE.days} days ahead")

    number: int | None = None
    if batch_number is not None:
        if isinstance(batch_number, bool) or not isinstance(batch_number, int):
            problems.append(f"batch_number: must be an integer, got {type(batch_number).__name__}")
        elif batch_number < 1:
            problems.append(f"batch_number: must be >= 1, got {batch_number}")
        else:
            number = batch_number

    options: dict[str, dict[str, Any]] = {}
    if platform_options is not None:
        if not isinstance(platform_options, dict) or not all(
            isinstance(k, str) and isinstance(v, dict) for k, v in platform_options.items()
        ):
            problems.append("platform_options: must map platform names to objects")
        else:
            options = platform_options

    accounts = parse_account_ids(account_ids, names, problems)
    task = parse_celery_name("notify_task", notify_task, problems)
    queue = parse_celery_name("notify_queue", notify_queue, problems)
    if queue is not None and task is None:
        problems.append("notify_queue: given without notify_task (name the task to call)")
    if task is not None and notify_queue is None:
        # Sent by our routing it would land on our default queue, where our workers drop
        # a task they do not know: the callback would be lost without a word.
        problems.append("notify_queue: required with notify_task (the queue your own "
                        "worker consumes)")
    per_platform = parse_overrides(overrides, names, problems, check_media_url)

    if text and names:
        # Platform rules too, whatever else is wrong; a field already faulted (media_urls[2]
        # faults media_urls) is not judged again on what was left of it.
        faulted = {p.split(":", 1)[0].split("[", 1)[0] for p in problems}
        for problem in validate(text, names, media, options, overrides=per_platform):
            if problem.field.split("[", 1)[0] not in faulted:
                problems.append(str(problem))
    if names:
        problems.extend(required_problems(names, per_platform, options))

    if problems or uid is None:
        raise InvalidRequest(problems or ["user_id: is required (a UUID)"])
    return PublishInput(
        user_id=uid,
        content=text,
        platforms=tuple(names),
        media_urls=tuple(media),
        scheduled_for=when,
        campaign_id=cid,
        batch_number=number,
        post_id=pid,
        platform_options=options,
        account_ids=accounts,
        notify_task=task,
        notify_queue=queue,
        overrides=per_platform,
    )


MAX_CELERY_NAME = 200
_CELERY_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.:-]*$")


def parse_celery_name(name: str, value: object, problems: list[str]) -> str | None:
    """A Celery task or queue name (`notify_task`, `notify_queue`), or None when absent."""
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        problems.append(f"{name}: must be a non-empty task/queue name string")
        return None
    if len(value) > MAX_CELERY_NAME or not _CELERY_NAME.match(value):
        problems.append(f"{name}: must be a Celery name (letters, digits, _ . : -; at most "
                        f"{MAX_CELERY_NAME} characters), got {_short(value)}")
        return None
    return value


MAX_ACCOUNT_ID = 200


def parse_account_ids(value: object, platforms: list[str], problems: list[str]) -> dict[str, str]:
    """`account_ids`: platform -> the provider account id to post to, each platform one
    the post is for. Whether the user may use that account is the provider's to say, at
    send time (it needs the key's account list): here only what can be told cheaply."""
    if value is None or value == {}:
        return {}
    if not isinstance(value, dict):
        problems.append(
            f"account_ids: must map platform names to account ids, got {type(value).__name__}")
        return {}
    out: dict[str, str] = {}
    for raw, account in value.items():
        name = normalize_platform(raw) if isinstance(raw, str) else None
        if name is None:
            problems.append(f"account_ids: unknown platform {_short(raw)}")
        elif platforms and name not in platforms:
            problems.append(f"account_ids[{name}]: the post is not for {name}")
        elif not isinstance(account, str) or not account.strip():
            problems.append(f"account_ids[{name}]: must be a non-empty account id string")
        elif len(account) > MAX_ACCOUNT_ID or any(c.isspace() or ord(c) < 32 for c in account):
            problems.append(f"account_ids[{name}]: not an account id: {_short(account)}")
        elif name in out and out[name] != account:
            problems.append(f"account_ids[{name}]: two accounts named for one platform")
        else:
            out[name] = account
    return out
