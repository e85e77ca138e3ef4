"""Malformed publish requests, each with the field its refusal must name.

Sent by task name with `send_task("social.publish_post", kwargs=...)`, as a producer that
skips our client would: nothing here is checked before it reaches the worker. Each case
breaks one field of an otherwise valid request, so the refusal has one right answer.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

SQL = "'; DROP TABLE social_posts; --"
MISSING = object()  # the kwarg is left out altogether


@dataclass(frozen=True)
class BadRequest:
    kwargs: dict[str, Any]
    field: str  # the refusal's error must name it
    what: str  # a short label for reports

    @property
    def post_id(self) -> str | None:
        value = self.kwargs.get("post_id")
        return value if isinstance(value, str) and _is_uuid(value) else None


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


def _iso(delta: timedelta) -> str:
    return (datetime.now(UTC) + delta).isoformat()


@dataclass(frozen=True)
class Case:
    """Set `field` to `make()` (or leave it out: MISSING); the refusal must name
    `expect` (default: the field itself). Factories run per request, so times are current.
    A platform rule is only broken for its platform: `platforms` then replaces them."""

    field: str
    label: str
    make: Callable[[], Any]
    expect: str | None = None
    platforms: tuple[str, ...] | None = None  # when the rule broken depends on them

def _listed(url: str) -> Callable[[], list[str]]:
    return lambda: [url]


PRIVATE_MEDIA = [
    "http://127.0.0.1/a.jpg", "http://localhost:8080/a.png", "http://10.0.0.5/a.jpg",
    "http://192.168.0.1/a.jpg", "http://172.16.3.4/a.jpg", "http://[::1]/a.jpg",
    "http://169.254.169.254/latest/meta-data/", "http://0.0.0.0/a.jpg",
    "http://2130706433/a.jpg", "http://0x7f000001/a.jpg", "http://[fd00::1]/a.jpg",
    "http://127.1/a.jpg", "https://127.0.0.1:6379/x.png",
]
NOT_HTTP_MEDIA = [
    "ftp://example.com/a.jpg", "file:///etc/passwd", "javascript:alert(1)",
    "gopher://127.0.0.1:6379/_FLUSHALL", "data:image/png;base64,iVBORw0KGgo=", "a.jpg",
    "https:///nohost.jpg", "//example.com/a.jpg",
]

CASES: list[Case] = [
    # platforms
    Case("platforms", "unknown platform", lambda: ["myspace"]),
    Case("platforms", "one unknown among known", lambda: ["twitter", "friendster"]),
    Case("platforms", "empty name", lambda: [""]),
    Case("platforms", "blank name", lambda: ["   "]),
    Case("platforms", "null item", lambda: [None]),
    Case("platforms", "number item", lambda: [1]),
    Case("platforms", "nested list", lambda: [["twitter"]]),
    Case("platforms", "string not list", lambda: "twitter"),
    Case("platforms", "object not list", lambda: {"twitter": True}),
    Case("platforms", "empty list", lambda: []),
    Case("platforms", "null", lambda: None),
    Case("platforms", "huge list", lambda: ["twitter"] * 10_000),
    Case("platforms", "huge name", lambda: ["t" * 100_000]),
    Case("platforms", "SQL in name", lambda: [f"twitter{SQL}"]),
    Case("platforms", "NUL in name", lambda: ["twit\x00ter"]),
    Case("platforms", "newline in name", lambda: ["twitter\nlinkedin"]),
    Case("platforms", "missing", lambda: MISSING),
    Case("platforms", "instagram without media", lambda: ["instagram"], "media_urls"),
    # content
    Case("content", "empty", lambda: ""),
    Case("content", "blank", lambda: "   \n\t "),
    Case("content", "null", lambda: None),
    Case("content", "number", lambda: 123),
    Case("content", "list", lambda: ["hello"]),
    Case("content", "object", lambda: {"text": "hello"}),
    Case("content", "oversized", lambda: "x" * 100_001),
    Case("content", "a megabyte", lambda: "y" * 1_000_000),
    Case("content", "over twitter's limit", lambda: "z" * 281, platforms=("twitter",)),
    Case("content", "NUL byte", lambda: "bad\x00nul"),
    Case("content", "bell", lambda: "ring\x07ring"),
    Case("content", "ANSI escape", lambda: "\x1b[31mred\x1b[0m"),
    Case("content", "SQL and a control character", lambda: f"{SQL}\x01"),
    Case("content", "missing", lambda: MISSING),
    # scheduled_for
    Case("scheduled_for", "naive", lambda: "2030-01-01T10:00:00"),
    Case("scheduled_for", "naive with space", lambda: "2030-01-01 10:00"),
    Case("scheduled_for", "naive now", lambda: datetime.now().isoformat()),
    Case("scheduled_for", "years past", lambda: "2020-01-01T00:00:00+00:00"),
    Case("scheduled_for", "an hour past", lambda: _iso(timedelta(hours=-1))),
    Case("scheduled_for", "past with offset", lambda: _iso(timedelta(days=-3))),
    Case("scheduled_for", "over a year ahead", lambda: _iso(timedelta(days=400))),
    Case("scheduled_for", "words", lambda: "tomorrow morning"),
    Case("scheduled_for", "epoch number", lambda: 1_900_000_000),
    Case("scheduled_for", "impossible date", lambda: "9999-99-99T00:00:00Z"),
    Case("scheduled_for", "bad offset", lambda: "2030-01-01T10:00:00+25:00"),
    Case("scheduled_for", "object", lambda: {"at": "2030-01-01T10:00:00Z"}),
    Case("scheduled_for", "SQL", lambda: SQL),
    # user_id
    Case("user_id", "not a UUID", lambda: "abc"),
    Case("user_id", "empty", lambda: ""),
    Case("user_id", "null", lambda: None),
    Case("user_id", "number", lambda: 42),
    Case("user_id", "SQL", lambda: SQL),
    Case("user_id", "almost a UUID", lambda: "00000000-0000-0000-0000-00000000000g"),
    Case("user_id", "NUL", lambda: "\x00"),
    Case("user_id", "list", lambda: [str(uuid.uuid4())]),
    Case("user_id", "missing", lambda: MISSING),
    # post_id
    Case("post_id", "number string", lambda: "123"),
    Case("post_id", "not a UUID", lambda: "not-a-uuid"),
    Case("post_id", "number", lambda: 7),
    Case("post_id", "SQL", lambda: "' OR 1=1 --"),
    Case("post_id", "object", lambda: {"id": 1}),
    Case("post_id", "huge", lambda: "a" * 10_000),
    # campaign_id / batch_number
    Case("campaign_id", "not a UUID", lambda: "nope"),
    Case("campaign_id", "number", lambda: 5),
    Case("campaign_id", "SQL", lambda: "'; DELETE FROM campaigns; --"),
    Case("batch_number", "string", lambda: "1"),
    Case("batch_number", "zero", lambda: 0),
    Case("batch_number", "negative", lambda: -3),
    Case("batch_number", "float", lambda: 1.5),
    Case("batch_number", "boolean", lambda: True),
    # media_urls
    Case("media_urls", "string not list", lambda: "http://example.com/y.jpg"),
    Case("media_urls", "empty URL", lambda: [""]),
    Case("media_urls", "null URL", lambda: [None]),
    Case("media_urls", "number URL", lambda: [1]),
    Case("media_urls", "huge list", lambda: ["https://example.com/a.jpg"] * 1_000),
    *[Case("media_urls", f"not http(s): {u[:24]}", _listed(u)) for u in NOT_HTTP_MEDIA],
    *[Case("media_urls", f"private: {u[:30]}", _listed(u)) for u in PRIVATE_MEDIA],
    # platform_options
    Case("platform_options", "list", lambda: ["twitter"]),
    Case("platform_options", "string", lambda: "twitter"),
    Case("platform_options", "non-object value", lambda: {"twitter": 5}),
    # kwargs the task does not take
    Case("evil", "unexpected kwarg", lambda: "x"),
    Case("api_key", "unexpected secret-looking kwarg", lambda: "not-a-real-key"),
]


def _base(user_id: str, rng: random.Random) -> dict[str, Any]:
    return {
        "user_id": user_id,
        "content": f"bad-input neighbour {uuid.uuid4().hex[:8]}",
        "platforms": rng.sample(["twitter", "linkedin", "bluesky", "threads"], 2),
        "post_id": str(uuid.uuid4()),
    }


def _mutate(base: dict[str, Any], field: str, value: Any) -> dict[str, Any]:
    kwargs = dict(base)
    if value is MISSING:
        kwargs.pop(field, None)
    else:
        kwargs[field] = value
    return kwargs


def bad_requests(user_ids: list[str], count: int, rng: random.Random) -> Iterator[BadRequest]:
    """`count` malformed requests cycling through every case (shuffled), each from a
    known user with otherwise valid fields."""
    order = list(CASES)
    made = 0
    while made < count:
        rng.shuffle(order)
        for case in order[: count - made]:
            base = _base(rng.choice(user_ids), rng)
            if case.platforms is not None:
                base["platforms"] = list(case.platforms)
            kwargs = _mutate(base, case.field, case.make())
            yield BadRequest(kwargs, case.expect or case.field, case.label)
            made += 1


GOOD_CONTENTS = [
    "Robert'); DROP TABLE social_posts; --",
    "<script>alert('x')</script> is just text here",
    "100% off \\ back\\slash \"quotes\" and 'single'",
    "emoji 🚀🎉 and ñ, ü, 漢字",
    "line one\nline two\ttabbed",
    "SELECT * FROM user_social_credentials;",
]
