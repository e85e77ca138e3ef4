"""Provider settings from the environment, read when used (tests and the worker set them
after import). A malformed value raises ConfigError naming the variable."""

from __future__ import annotations

import os

from providers.errors import ConfigError

POSTFORME_DEFAULT_URL = "https://api.postforme.dev/v1"
LATE_DEFAULT_URL = "https://getlate.dev/api/v1"

MIB = 1024 * 1024


def _number(name: str, default: float, *, minimum: float = 0.0) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None
    if value != value or value < minimum:  # NaN or too small
        raise ConfigError(f"{name} must be a number >= {minimum:g}, got {raw!r}")
    return value


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


def _url(name: str, default: str) -> str:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    if not raw.startswith(("http://", "https://")):
        raise ConfigError(f"{name} must be an http(s) URL, got {raw!r}")
    return raw.rstrip("/")


def postforme_base_url() -> str:
    return _url("POSTFORME_BASE_URL", POSTFORME_DEFAULT_URL)


def late_base_url() -> str:
    return _url("LATE_BASE_URL", LATE_DEFAULT_URL)


def connect_timeout() -> float:
    """Seconds to establish a connection; nothing has been sent if this expires."""
    return _number("SOCIALPOST_CONNECT_TIMEOUT", 5.0, minimum=0.01)


def postforme_read_timeout() -> float:
    """PostForMe answers quickly (publishing is asynchronous there)."""
    return _number("POSTFORME_READ_TIMEOUT", 30.0, minimum=0.01)


def late_read_timeout() -> float:
    """LATE's publishNow runs the whole publish inside the request: allow minutes."""
    return _number("LATE_READ_TIMEOUT", 120.0, minimum=0.01)


def accounts_cache_seconds() -> float:
    """How long an account list is reused; 0 disables the cache."""
    return _number("SOCIALPOST_ACCOUNTS_CACHE_SECONDS", 60.0)


def late_cdn_wait_seconds() -> float:
    """The seed waits for LATE's CDN after an upload; tests set 0."""
    return _number("LATE_CDN_WAIT_SECONDS", 1.0)


def media_max_bytes() -> int:
    return int(_number("SOCIALPOST_MEDIA_MAX_BYTES", 100 * MIB, minimum=1))


def media_timeout() -> float:
    """Total seconds allowed for downloading one media file."""
    return _number("SOCIALPOST_MEDIA_TIMEOUT", 30.0, minimum=0.01)


def allow_private_urls() -> bool:
    """Only for tests and local demos: media on loopback/private hosts is refused otherwise."""
    return _flag("SOCIALPOST_ALLOW_PRIVATE_URLS")


def request_deadline(connect: float, read: float) -> float:
    """The longest one HTTP call of ours can take: the client enforces this as a total
    deadline (connect, then waiting for and reading the answer)."""
    return connect + read


def max_request_seconds(provider: str | None = None) -> float:
    """Upper bound of one provider API call with the current settings, so the worker can
    set Celery time limits above it. `provider` is "postforme", "late" or None (the max)."""
    reads = {"postforme": postforme_read_timeout(), "late": late_read_timeout()}
    if provider is not None:
        key = provider.lower()
        if key not in reads:
            raise ValueError(f"unknown provider {provider!r}; valid: postforme, late")
        return request_deadline(connect_timeout(), reads[key])
    return request_deadline(connect_timeout(), max(reads.values()))


def max_upload_seconds(provider: str | None = None) -> float:
    """Upper bound of upload_media: download, presign, PUT, and LATE's CDN wait."""
    api = max_request_seconds(provider)
    return media_timeout() + connect_timeout() + 2 * api + late_cdn_wait_seconds()
