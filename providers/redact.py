"""Scrub secrets from any text that leaves a provider client.

Applied to every error string, exception message and log line we produce, so that an
API key (or any bearer token a server echoes back) never reaches logs, the database or
Flower.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

MASK = "***"
MAX_ERROR_CHARS = 500

_BEARER = re.compile(r"(?i)\b(bearer)\s+[^\s\"',;]+")
_AUTH_HEADER = re.compile(r"(?i)(authorization['\"]?\s*[:=]\s*['\"]?)(?!bearer\b)[^\s\"',;]+")
_URL_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s@]+@")


def redact(text: object, secrets: Iterable[str | None] = ()) -> str:
    """Return `text` as a string with the given secrets and any bearer token masked."""
    out = str(text)
    # Longest first so a secret that contains another is masked whole.
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        if len(secret) >= 4:
            out = out.replace(secret, MASK)
    out = _BEARER.sub(lambda m: f"{m.group(1)} {MASK}", out)
    out = _AUTH_HEADER.sub(lambda m: f"{m.group(1)}{MASK}", out)
    return _URL_USERINFO.sub(lambda m: f"{m.group(1)}{MASK}@", out)


def shorten(text: str, limit: int = MAX_ERROR_CHARS) -> str:
    """Keep error strings short enough for a log line and a database column."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def clean_error(text: object, secrets: Iterable[str | None] = ()) -> str:
    """Redact, then shorten: the form every error string takes before leaving us."""
    # Redact before shortening so a key cut in half by the limit is still masked.
    return shorten(redact(text, secrets))
