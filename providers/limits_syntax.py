"""Reading rate-limit settings: `5/second;40/minute` budgets and per-platform account caps.

The strings are the `limits` library's syntax, so what an operator writes is what the
limiter enforces; `none` turns a budget (or every cap) off. Parsing lives here, apart
from the limiter, so the settings can refuse a malformed value at start-up.
"""

from __future__ import annotations

from limits import RateLimitItem, parse_many

from providers.platforms import VALID_PLATFORMS, normalize_platform

OFF = frozenset({"none", "off", ""})
ANY_PLATFORM = "*"


def parse_limits(spec: str) -> tuple[RateLimitItem, ...]:
    """The limits of a budget, shortest window first; () for `none`. Raises ValueError."""
    text = spec.strip()
    if text.lower() in OFF:
        return ()
    try:
        items = parse_many(text)
    except ValueError:
        raise ValueError(
            f"must be limits like '5/second;40/minute' or 'none', got {spec!r}") from None
    if not items:
        raise ValueError(f"must name at least one limit or be 'none', got {spec!r}")
    return tuple(sorted(items, key=lambda i: i.get_expiry()))


def parse_caps(spec: str) -> dict[str, tuple[RateLimitItem, ...]]:
    """platform (or `*`) -> its caps, from `twitter=50/day;25/hour,*=50/day`; {} for `none`."""
    text = spec.strip()
    if text.lower() in OFF:
        return {}
    caps: dict[str, tuple[RateLimitItem, ...]] = {}
    for entry in filter(None, (e.strip() for e in text.split(","))):
        name, sep, limits_text = entry.partition("=")
        if not sep:
            raise ValueError(f"entry {entry!r} must be PLATFORM=LIMITS, e.g. 'twitter=50/day'")
        name = name.strip().lower()
        if name != ANY_PLATFORM:
            known = normalize_platform(name)
            if known is None:
                raise ValueError(f"entry {entry!r}: unknown platform {name!r} (use one of "
                                 f"{', '.join(VALID_PLATFORMS)} or '*')")
            name = known
        items = parse_limits(limits_text)
        if not items:
            raise ValueError(f"entry {entry!r} names no limit")
        caps[name] = items
    return caps


def check_limits(spec: str) -> str | None:
    """None when `spec` is a valid budget, else what is wrong with it."""
    try:
        parse_limits(spec)
    except ValueError as exc:
        return str(exc)
    return None


def check_caps(spec: str) -> str | None:
    """None when `spec` is a valid caps setting, else what is wrong with it."""
    try:
        parse_caps(spec)
    except ValueError as exc:
        return str(exc)
    return None
