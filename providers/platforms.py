"""Per-platform text and media rules, checked before anything is sent.

Why: a post the platform will refuse should fail at once with a message that says what
to change, not after a provider round trip (PostForMe even truncates captions silently).
`validate` reports every problem at once so a caller can fix everything in one go.

Decisions the table in docs/providers.md leaves open:
- A media URL whose extension says nothing (e.g. a CDN link without one) counts as an
  item but satisfies either "image" or "video": we cannot know it without fetching.
- Required fields (a Pinterest board, a YouTube title, TikTok's consents) are checked
  at intake with the overrides (providers.content.required_problems), not here: the
  seed's own provider API has no way to pass them.
- LinkedIn allows up to 20 images (the table says 9-20 depending on the API used);
  documents (.pdf, .docx, .pptx) are accepted on LinkedIn only, one, alone.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from urllib.parse import urlsplit

from providers.media import media_kind
from providers.models import Platform

VALID_PLATFORMS: tuple[str, ...] = tuple(Platform.values())
ALIASES = {"x": "twitter", "twitter/x": "twitter"}
TWITTER_URL_LENGTH = 23
_URL = re.compile(r"(?i)\b(?:https?://|www\.)[^\s<>\"]+")
_HASHTAG = re.compile(r"(?<![\w&])#\w+")


@dataclass(frozen=True)
class PlatformRules:
    """What one platform accepts. `max_images`/`max_videos` apply to one post; a post
    may not mix videos with images where `mix_media` is False."""

    text_limit: int
    text_unit: str = "characters"
    media_required: bool = False
    max_items: int | None = None
    max_images: int = 0
    max_videos: int = 0
    mix_media: bool = False
    exact_video: bool = False  # youtube: exactly one video
    exact_image: bool = False  # pinterest: exactly one image
    max_hashtags: int | None = None
    title_limit: int | None = None
    allow_documents: bool = False


RULES: dict[str, PlatformRules] = {
    "twitter": PlatformRules(280, max_images=4, max_videos=1),
    "linkedin": PlatformRules(3000, max_images=20, max_videos=1, allow_documents=True),
    "instagram": PlatformRules(
        2200,
        media_required=True,
        max_items=10,
        max_images=10,
        max_videos=10,
        mix_media=True,
        max_hashtags=30,
    ),
    "facebook": PlatformRules(63206, max_images=10, max_videos=1),
    "tiktok": PlatformRules(2200, media_required=True, max_images=35, max_videos=1),
    "threads": PlatformRules(500, max_items=10, max_images=10, max_videos=10, mix_media=True),
    "bluesky": PlatformRules(300, text_unit="graphemes", max_images=4, max_videos=1),
    "youtube": PlatformRules(
        5000, media_required=True, max_videos=1, exact_video=True, title_limit=100
    ),
    "pinterest": PlatformRules(
        500, media_required=True, max_images=1, exact_image=True, title_limit=100
    ),
}


@dataclass(frozen=True)
class ValidationProblem:
    """One thing wrong with a post. `field` is where (content, platforms[1], media_urls[0],
    platform_options.youtube.title), `rule` a stable code for programs, `message` for people."""

    field: str
    platform: str | None
    rule: str
    message: str
    severity: str = "error"  # "error" blocks the post; "warning" does not

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


def _valid_list() -> str:
    return ", ".join(VALID_PLATFORMS)


def normalize_platform(name: object) -> str | None:
    """The canonical platform name for `name` ("X" -> "twitter"), or None if unknown."""
    if isinstance(name, Platform):
        return name.value
    if not isinstance(name, str):
        return None
    key = name.strip().lower()
    key = ALIASES.get(key, key)
    return key if key in VALID_PLATFORMS else None


def normalize_platforms(platforms: Iterable[object]) -> list[str]:
    """Lowercase, map "x" to twitter, de-duplicate keeping order. Raises ValueError
    naming every unknown entry and the valid ones."""
    if isinstance(platforms, str | bytes):
        platforms = [platforms]
    out: list[str] = []
    unknown: list[str] = []
    for item in platforms:
        name = normalize_platform(item)
        if name is None:
            unknown.append(repr(item))
        elif name not in out:
            out.append(name)
    if unknown:
        raise ValueError(f"unknown platform {', '.join(unknown)}; valid: {_valid_list()}")
    return out


def twitter_length(text: str) -> int:
    """X's count, simplified: every URL counts 23, everything else one per code point."""
    total = 0
    last = 0
    for match in _URL.finditer(text):
        total += len(text[last : match.start()]) + TWITTER_URL_LENGTH
        last = match.end()
    return total + len(text[last:])


def _is_extender(ch: str) -> bool:
    cp = ord(ch)
    return (
        unicodedata.category(ch) in ("Mn", "Me", "Mc")
        or 0xFE00 <= cp <= 0xFE0F  # variation selectors
        or 0xE0100 <= cp <= 0xE01EF
        or 0x1F3FB <= cp <= 0x1F3FF  # skin tone modifiers
        or 0xE0020 <= cp <= 0xE007F  # tag characters (subdivision flags)
    )


def grapheme_count(text: str) -> int:
    """Approximate user-perceived characters (Bluesky counts graphemes) without a new
    dependency: combining marks, variation selectors, skin tones and tags extend the
    previous character; a ZWJ joins the next one to it; two regional indicators make one
    flag; CR LF is one."""
    count = 0
    join_next = False
    regional_open = False
    prev = ""
    for ch in text:
        cp = ord(ch)
        if ch == "\u200d":
            join_next = True
            continue
        if join_next:
            join_next = False
            prev = ch
            continue
        if _is_extender(ch) and count:
            continue
        if prev == "\r" and ch == "\n":
            prev = ch
            continue
        if 0x1F1E6 <= cp <= 0x1F1FF:
            if regional_open:
                regional_open = False
                prev = ch
                continue
            regional_open = True
        else:
            regional_open = False
        count += 1
        prev = ch
    return count


def text_length(platform: str, text: str) -> int:
    """Length of `text` the way `platform` counts it."""
    if platform == "twitter":
        return twitter_length(text)
    if RULES[platform].text_unit == "graphemes":
        return grapheme_count(text)
    return len(text)


def _option(options: Mapping[str, object] | None, platform: str, key: str) -> object:
    if not options:
        return None
    for name, value in options.items():
        if normalize_platform(name) == platform and isinstance(value, Mapping):
            return value.get(key)
    return None


def validate(
    content: object,
    platforms: object,
    media_urls: Sequence[object] | None = None,
    platform_options: Mapping[str, object] | None = None,
    *,
    include_warnings: bool = False,
    overrides: Mapping[str, Mapping[str, object]] | None = None,
) -> list[ValidationProblem]:
    """Every problem with a post for the given platforms (empty list: it may be sent).
    `overrides` (normalised, providers.content) give a platform its own words and media:
    the rules are checked on what each platform would publish, and the common content
    only for platforms without their own."""
    problems: list[ValidationProblem] = []

    def add(field: str, platform: str | None, rule: str, message: str, sev: str = "error") -> None:
        problems.append(ValidationProblem(field, platform, rule, message, sev))

    text = content if isinstance(content, str) else ""
    if not isinstance(content, str):
        add("content", None, "type", "must be a string")
    elif not content.strip():
        add("content", None, "required", "must not be empty")

    names: list[str] = []
    if isinstance(platforms, str | bytes) or not isinstance(platforms, Iterable):
        add("platforms", None, "type", "must be a list of platform names")
        platform_list: list[object] = []
    else:
        platform_list = list(platforms)
    if not platform_list and not any(p.field == "platforms" for p in problems):
        add("platforms", None, "required", f"at least one is required; valid: {_valid_list()}")
    for i, item in enumerate(platform_list):
        name = normalize_platform(item)
        if name is None:
            message = f"unknown platform {item!r}; valid: {_valid_list()}"
            add(f"platforms[{i}]", None, "unknown", message)
        elif name not in names:
            names.append(name)

    kinds = _media_kinds(media_urls, add)
    for name in names:
        own = (overrides or {}).get(name) or {}
        where = f"overrides.{name}"
        own_text = own.get("content")
        own_media = own.get("media_urls")
        _check_platform(
            name,
            own_text if isinstance(own_text, str) else text,
            _media_kinds(own_media, None) if isinstance(own_media, list) else kinds,
            platform_options,
            add,
            text_field=f"{where}.content" if isinstance(own_text, str) else "content",
            media_field=f"{where}.media_urls" if isinstance(own_media, list) else "media_urls",
        )
        _check_extras(name, own, add)

    if include_warnings:
        return problems
    return [p for p in problems if p.severity == "error"]


def _media_kinds(media_urls: object, add: Adder | None) -> list[str | None]:
    """The kind of each usable media URL; bad entries reported through `add` (None: the
    caller already checked them)."""
    def report(field: str, message: str) -> None:
        if add is not None:
            add(field, None, "url" if "[" in field else "type", message)

    kinds: list[str | None] = []
    if media_urls is not None and (
        isinstance(media_urls, str | bytes) or not isinstance(media_urls, Iterable)
    ):
        report("media_urls", "must be a list of URLs")
        return kinds
    for i, url in enumerate(media_urls or ()):
        field = f"media_urls[{i}]"
        if not isinstance(url, str) or not url.strip():
            report(field, "must be a non-empty URL")
            continue
        try:
            parts = urlsplit(url.strip())
        except ValueError:
            report(field, "is not a valid URL")
            continue
        if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
            report(field, "must be an http(s) URL with a host")
            continue
        kinds.append(media_kind(url))
    return kinds


def _check_extras(name: str, own: Mapping[str, object], add: Adder) -> None:
    """A thread's follow-up posts and a first comment, by the platform's text rules."""
    rules = RULES[name]
    where = f"overrides.{name}"
    thread = own.get("thread")
    for i, item in enumerate(thread if isinstance(thread, list) else []):
        body = item.get("content") if isinstance(item, Mapping) else None
        if isinstance(body, str) and text_length(name, body) > rules.text_limit:
            add(f"{where}.thread[{i}].content", name, "text_limit",
                f"{name} allows {rules.text_limit} {rules.text_unit} per post, got "
                f"{text_length(name, body)}")
        media = item.get("media_urls") if isinstance(item, Mapping) else None
        if isinstance(media, list) and media:
            found = _media_problem(name, replace(rules, media_required=False),
                                   _media_kinds(media, None))
            if found:
                add(f"{where}.thread[{i}].media_urls", name, found[0], found[1])
    comment = own.get("first_comment")
    if isinstance(comment, str) and text_length(name, comment) > rules.text_limit:
        add(f"{where}.first_comment", name, "text_limit",
            f"{name} allows {rules.text_limit} {rules.text_unit}, got "
            f"{text_length(name, comment)}")
    if name == "twitter" and own.get("poll") and own.get("media_urls"):
        add(f"{where}.poll", name, "poll_media", "an X poll cannot carry media")


Adder = Callable[..., None]


def _check_platform(
    name: str,
    text: str,
    kinds: list[str | None],
    options: Mapping[str, object] | None,
    add: Adder,
    *,
    text_field: str = "content",
    media_field: str = "media_urls",
) -> None:
    rules = RULES[name]
    if text.strip():
        length = text_length(name, text)
        if length > rules.text_limit:
            if name == "twitter":
                msg = f"twitter allows {rules.text_limit} characters (URLs count 23), got {length}"
            elif name == "youtube":
                msg = f"youtube allows a description of {rules.text_limit} characters, got {length}"
            else:
                msg = f"{name} allows {rules.text_limit} {rules.text_unit}, got {length}"
            add(text_field, name, "text_limit", msg)
    if rules.max_hashtags is not None:
        tags = len(_HASHTAG.findall(text))
        if tags > rules.max_hashtags:
            add(
                text_field,
                name,
                "hashtags",
                f"{name} allows {rules.max_hashtags} hashtags, got {tags}",
            )

    media_problem = _media_problem(name, rules, kinds)
    if media_problem:
        rule, message = media_problem
        add(media_field, name, rule, message)

    title = _option(options, name, "title")
    if rules.title_limit is not None and isinstance(title, str) and len(title) > rules.title_limit:
        add(
            f"platform_options.{name}.title",
            name,
            "title_limit",
            f"{name} allows a title of {rules.title_limit} characters, got {len(title)}",
        )


def _media_problem(
    name: str, rules: PlatformRules, kinds: list[str | None]
) -> tuple[str, str] | None:
    """(rule, message) for the first media rule the items break, else None."""
    images = sum(1 for k in kinds if k in ("image", "gif"))
    videos = sum(1 for k in kinds if k == "video")
    documents = sum(1 for k in kinds if k == "document")
    unknown = sum(1 for k in kinds if k is None)
    total = len(kinds)
    if total == 0:
        if not rules.media_required:
            return None
        need = {
            "youtube": "exactly one video",
            "pinterest": "exactly one image",
            "tiktok": "a video or up to 35 images",
        }.get(name, "at least one image or video")
        return "media_required", f"{name} requires media: {need}"
    if documents:
        if not rules.allow_documents:
            return "media_type", f"{name} does not accept documents"
        if total > 1:
            return "media_count", f"{name} takes one document on its own"
        return None
    got = _describe(images, videos, unknown)
    if rules.exact_video:
        if total != 1 or images:
            return "media_count", f"{name} requires exactly one video, got {got}"
        return None
    if rules.exact_image:
        if total != 1 or videos:
            return "media_count", f"{name} requires exactly one image, got {got}"
        return None
    if rules.max_items is not None and total > rules.max_items:
        return "media_count", f"{name} allows {rules.max_items} media items, got {total}"
    if rules.mix_media:
        return None
    if images and videos:
        return "media_mix", f"{name} does not mix images and videos in one post"
    if videos > rules.max_videos:
        return "media_count", f"{name} allows {rules.max_videos} video per post, got {videos}"
    if not videos and images + unknown > rules.max_images:
        return (
            "media_count",
            f"{name} allows {rules.max_images} images or 1 video, got {images + unknown} images",
        )
    return None


def _describe(images: int, videos: int, unknown: int) -> str:
    parts = [f"{images} image(s)", f"{videos} video(s)"]
    if unknown:
        parts.append(f"{unknown} of unknown type")
    return ", ".join(parts)


def validation_error(problems: Iterable[ValidationProblem]) -> str:
    """All problems in one line, for a PostResult error or a failed post's message."""
    return "; ".join(str(p) for p in problems)
