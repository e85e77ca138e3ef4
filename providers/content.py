"""Per-platform content: the `overrides` schema, in our words, checked once.

Why one module: every entry point (the tasks, the producer client, the CLI, campaign
calendars, the seed service, the HTTP API) takes the same `overrides`
({platform: {content?, media_urls?, first_comment?, thread?, options...}}), and a typo
must be refused by name wherever it comes from. What is kept is the normalised form
(canonical platform names, our field names), stored with the post so every retry and
failover step sends the same; providers.content_wire turns it into each provider's
wire format, providers.platforms checks the effective content per platform.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from providers.platforms import normalize_platform

Overrides = dict[str, dict[str, Any]]  # platform -> field -> value (normalised)
Problems = list[str]

MAX_TEXT = 100_000  # above every platform's limit; refuses abuse early
MAX_THREAD_ITEMS = 25
MAX_MEDIA_ITEMS = 35

# LATE's platformSpecificData carries these, on these platforms only; PostForMe has neither.
FIRST_COMMENT_PLATFORMS = ("instagram", "facebook", "linkedin", "threads", "youtube")
THREAD_PLATFORMS = ("twitter", "threads", "bluesky")
LATE_ONLY_FIELDS = {"thread": "threads", "first_comment": "first comments"}

PLACEMENTS = ("feed", "reel", "story")
TIKTOK_PRIVACY = ("public", "friends", "followers", "private")
YOUTUBE_PRIVACY = ("public", "unlisted", "private")
REPLY_SETTINGS = ("everyone", "following", "mentioned", "subscribers", "verified")
TIKTOK_CONSENTS = ("content_preview_confirmed", "express_consent_given")
# ...as LATE names them, in raw `platform_options` (passed through as they are)
_TIKTOK_WIRE_CONSENTS = ("contentPreviewConfirmed", "expressConsentGiven")


@dataclass(frozen=True)
class Option:
    """One option: `kind` is text | bool | choice | texts | url | poll."""

    kind: str
    limit: int | None = None  # text length, or list length for texts
    choices: tuple[str, ...] = ()
    doc: str = ""


OPTIONS: dict[str, dict[str, Option]] = {
    "youtube": {
        "title": Option("text", 100, doc="video title (required)"),
        "privacy": Option("choice", choices=YOUTUBE_PRIVACY),
        "made_for_kids": Option("bool"),
        "tags": Option("texts", 50),
    },
    "pinterest": {
        "board_id": Option("text", 200, doc="the board to pin to (required)"),
        "title": Option("text", 100),
        "link": Option("url"),
    },
    "tiktok": {
        "privacy": Option("choice", choices=TIKTOK_PRIVACY),
        "allow_comments": Option("bool"),
        "allow_duet": Option("bool"),
        "allow_stitch": Option("bool"),
        "brand_content": Option("bool", doc="a paid partnership (branded content)"),
        "ai_generated": Option("bool"),
        "content_preview_confirmed": Option("bool", doc="TikTok consent (required, true)"),
        "express_consent_given": Option("bool", doc="TikTok consent (required, true)"),
    },
    "instagram": {
        "placement": Option("choice", choices=PLACEMENTS),
        "collaborators": Option("texts", 3),
    },
    "facebook": {
        "placement": Option("choice", choices=PLACEMENTS),
        "collaborators": Option("texts", 3),
    },
    "twitter": {
        "reply_settings": Option("choice", choices=REPLY_SETTINGS),
        "poll": Option("poll", doc="{options: 2-4 texts of <= 25, duration_minutes: 5-10080}"),
    },
    "linkedin": {},
    "threads": {},
    "bluesky": {},
}
COMMON = ("content", "media_urls", "first_comment", "thread")


def known_fields(platform: str) -> list[str]:
    return [*COMMON, *OPTIONS.get(platform, {})]


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _text(where: str, value: object, problems: Problems, limit: int = MAX_TEXT) -> str | None:
    if not isinstance(value, str):
        problems.append(f"{where}: must be a string, got {type(value).__name__}")
    elif not value.strip():
        problems.append(f"{where}: must not be empty")
    elif len(value) > limit:
        problems.append(f"{where}: at most {limit} characters, got {len(value)}")
    elif any(ord(c) < 32 and c not in "\n\r\t" for c in value):
        problems.append(f"{where}: must not contain control characters other than newline and tab")
    else:
        return value
    return None


def list_problem(where: str, value: object, limit: int) -> str | None:
    """Why `value` is not a list of at most `limit` items (a string is not a list)."""
    if isinstance(value, str) or not isinstance(value, list | tuple):
        return f"{where}: must be a list of strings, got {type(value).__name__}"
    if len(value) > limit:
        return f"{where}: at most {limit} items, got {len(value)}"
    return None


def _texts(where: str, value: object, problems: Problems, limit: int,
           item_limit: int = 500) -> list[str] | None:
    wrong = list_problem(where, value, limit)
    if wrong or not isinstance(value, list | tuple):
        problems.append(wrong or where)
        return None
    out: list[str] = []
    for i, item in enumerate(value):
        text = _text(f"{where}[{i}]", item, problems, item_limit)
        if text is None:
            return None
        out.append(text)
    return out


def _media(where: str, value: object, problems: Problems,
           check_url: Callable[[str], str | None] | None) -> list[str] | None:
    urls = _texts(where, value, problems, MAX_MEDIA_ITEMS, 2048)
    if urls is None:
        return None
    bad = False
    for i, url in enumerate(urls):
        error = check_url(url) if check_url else _http_url_error(url)
        if error:
            problems.append(f"{where}[{i}]: {error}")
            bad = True
    return None if bad else urls


def _http_url_error(url: str) -> str | None:
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return "is not a valid URL"
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return "must be an http(s) URL with a host"
    return None


def _poll(where: str, value: object, problems: Problems) -> dict[str, Any] | None:
    if not isinstance(value, Mapping):
        problems.append(f"{where}: must be an object {{options, duration_minutes}}")
        return None
    extra = sorted(set(value) - {"options", "duration_minutes"})
    for name in extra:
        problems.append(f"{where}.{name}: unknown field (known: duration_minutes, options)")
    options = _texts(f"{where}.options", value.get("options"), problems, 4, 25)
    if options is not None and len(options) < 2:
        problems.append(f"{where}.options: at least 2 options, got {len(options)}")
        options = None
    minutes = value.get("duration_minutes")
    if isinstance(minutes, bool) or not isinstance(minutes, int) or not 5 <= minutes <= 10080:
        problems.append(f"{where}.duration_minutes: must be an integer from 5 to 10080 "
                        f"(7 days), got {_short(minutes)}")
        minutes = None
    if extra or options is None or minutes is None:
        return None
    return {"options": options, "duration_minutes": minutes}


def _option(where: str, spec: Option, value: object, problems: Problems) -> object:
    """The checked value, or None (with a problem added)."""
    if spec.kind == "text":
        return _text(where, value, problems, spec.limit or MAX_TEXT)
    if spec.kind == "bool":
        if isinstance(value, bool):
            return value
        problems.append(f"{where}: must be true or false, got {_short(value)}")
        return None
    if spec.kind == "choice":
        if isinstance(value, str) and value.strip().lower() in spec.choices:
            return value.strip().lower()
        problems.append(f"{where}: must be one of {', '.join(spec.choices)}, got {_short(value)}")
        return None
    if spec.kind == "texts":
        return _texts(where, value, problems, spec.limit or 50)
    if spec.kind == "url":
        text = _text(where, value, problems, 2048)
        error = _http_url_error(text) if text else None
        if error:
            problems.append(f"{where}: {error}")
            return None
        return text
    return _poll(where, value, problems)


def _thread(where: str, value: object, problems: Problems,
            check_url: Callable[[str], str | None] | None) -> list[dict[str, Any]] | None:
    if isinstance(value, str) or not isinstance(value, list | tuple) or not value:
        problems.append(f"{where}: must be a non-empty list of follow-up posts "
                        "({content, media_urls?})")
        return None
    if len(value) > MAX_THREAD_ITEMS:
        problems.append(f"{where}: at most {MAX_THREAD_ITEMS} follow-up posts, got {len(value)}")
        return None
    items: list[dict[str, Any]] = []
    ok = True
    for i, raw in enumerate(value):
        at = f"{where}[{i}]"
        if isinstance(raw, str):
            raw = {"content": raw}
        if not isinstance(raw, Mapping):
            problems.append(f"{at}: must be an object {{content, media_urls?}} or a string")
            ok = False
            continue
        for name in sorted(set(raw) - {"content", "media_urls"}):
            problems.append(f"{at}.{name}: unknown field (known: content, media_urls)")
            ok = False
        text = _text(f"{at}.content", raw.get("content"), problems)
        item: dict[str, Any] = {"content": text}
        if raw.get("media_urls") is not None:
            media = _media(f"{at}.media_urls", raw["media_urls"], problems, check_url)
            ok = ok and media is not None
            item["media_urls"] = media
        ok = ok and text is not None
        items.append(item)
    return items if ok else None


def parse_overrides(
    value: object,
    platforms: list[str],
    problems: Problems,
    check_url: Callable[[str], str | None] | None = None,
) -> Overrides:
    """`overrides` in normalised form; every problem appended, each naming
    `overrides.<platform>.<field>`. `platforms` are the post's (canonical) platforms:
    an override for a platform the post is not for is refused, not ignored."""
    if value is None or value == {}:
        return {}
    if not isinstance(value, Mapping):
        problems.append(f"overrides: must map platform names to objects, got "
                        f"{type(value).__name__}")
        return {}
    out: Overrides = {}
    for raw_name, fields in value.items():
        name = normalize_platform(raw_name)
        if name is None:
            problems.append(f"overrides.{raw_name}: unknown platform")
            continue
        where = f"overrides.{name}"
        if platforms and name not in platforms:
            problems.append(f"{where}: the post is not for {name}")
            continue
        if name in out:
            problems.append(f"{where}: given twice ({raw_name!r} names it again)")
            continue
        if not isinstance(fields, Mapping):
            problems.append(f"{where}: must be an object of fields, got {type(fields).__name__}")
            continue
        out[name] = _platform_fields(name, fields, problems, check_url)
    return {k: v for k, v in out.items() if v}


def _platform_fields(
    name: str, fields: Mapping[str, Any], problems: Problems,
    check_url: Callable[[str], str | None] | None,
) -> dict[str, Any]:
    where = f"overrides.{name}"
    specs = OPTIONS[name]
    got: dict[str, Any] = {}
    for key, raw in fields.items():
        at = f"{where}.{key}"
        if raw is None:
            continue  # an absent field, as JSON null
        if key == "content":
            checked: object = _text(at, raw, problems)
        elif key == "media_urls":
            checked = _media(at, raw, problems, check_url)
        elif key == "first_comment":
            if name not in FIRST_COMMENT_PLATFORMS:
                problems.append(f"{at}: first comments are published on "
                                f"{', '.join(FIRST_COMMENT_PLATFORMS)} only")
                continue
            checked = _text(at, raw, problems)
        elif key == "thread":
            if name not in THREAD_PLATFORMS:
                problems.append(f"{at}: threads are published on "
                                f"{', '.join(THREAD_PLATFORMS)} only")
                continue
            checked = _thread(at, raw, problems, check_url)
        elif key in specs:
            checked = _option(at, specs[key], raw, problems)
        else:
            problems.append(f"{at}: unknown field (known for {name}: "
                            f"{', '.join(known_fields(name))})")
            continue
        if checked is not None:
            got[key] = checked
    return got


def required_problems(platforms: list[str], overrides: Overrides,
                      platform_options: Mapping[str, Any] | None = None) -> Problems:
    """Fields a platform cannot publish without: a YouTube title, a Pinterest board, and
    TikTok's two consents (true). Raw `platform_options` count where they carry them."""
    raw = {normalize_platform(k): v for k, v in (platform_options or {}).items()
           if isinstance(v, Mapping)}
    problems: Problems = []
    for name in platforms:
        mine = overrides.get(name, {})
        legacy = raw.get(name) or {}
        if name == "youtube" and not (mine.get("title") or legacy.get("title")):
            problems.append("overrides.youtube.title: youtube needs a video title")
        if name == "pinterest":
            boards = legacy.get("board_ids")
            if not (mine.get("board_id") or legacy.get("board_id") or legacy.get("boardId")
                    or (isinstance(boards, list) and any(boards))):
                problems.append("overrides.pinterest.board_id: pinterest needs a board to pin to")
        if name == "tiktok":
            for consent, wire in zip(TIKTOK_CONSENTS, _TIKTOK_WIRE_CONSENTS, strict=True):
                if mine.get(consent) is not True and legacy.get(wire) is not True:
                    problems.append(f"overrides.tiktok.{consent}: TikTok requires this consent "
                                    "from the user, true")
    return problems


def late_only(overrides: Mapping[str, Mapping[str, Any]] | None) -> dict[str, str]:
    """platform -> why only LATE can publish it (a thread, a first comment)."""
    out: dict[str, str] = {}
    for platform, fields in (overrides or {}).items():
        wanted = [what for key, what in LATE_ONLY_FIELDS.items() if fields.get(key)]
        if wanted:
            out[platform] = (f"{platform} asks for {' and '.join(wanted)}, which only LATE "
                             "publishes")
    return out
