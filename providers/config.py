"""Provider settings, as the clients ask for them: each a view of the settings module
(read when used, so tests and the worker may set them after import), plus the derived
bounds of one call. A malformed value raises settings.SettingsError naming the variable."""

from __future__ import annotations

import settings

MIB = settings.MIB


def postforme_base_url() -> str:
    return settings.current().postforme_base_url


def late_base_url() -> str:
    return settings.current().late_base_url


def connect_timeout() -> float:
    """Seconds to establish a connection; nothing has been sent if this expires."""
    return settings.current().connect_timeout


def postforme_read_timeout() -> float:
    """PostForMe answers quickly (publishing is asynchronous there)."""
    return settings.current().postforme_read_timeout


def late_read_timeout() -> float:
    """LATE's publishNow runs the whole publish inside the request: allow minutes."""
    return settings.current().late_read_timeout


def accounts_cache_seconds() -> float:
    """How long an account list is reused; 0 disables the cache."""
    return settings.current().accounts_cache_seconds


def shared_accounts() -> bool:
    """Whether untagged accounts of a shared key are the organisation's, usable by every
    user (1), or usable by no one (0: a multi-tenant deployment)."""
    return settings.current().shared_accounts


def late_cdn_wait_seconds() -> float:
    """The seed waits for LATE's CDN after an upload; tests set 0."""
    return settings.current().late_cdn_wait_seconds


def media_max_bytes() -> int:
    return settings.current().media_max_bytes


def media_timeout() -> float:
    """Total seconds allowed for downloading one media file."""
    return settings.current().media_timeout


def allow_private_urls() -> bool:
    """Only for tests and local demos: media on loopback/private hosts is refused otherwise."""
    return settings.current().allow_private_urls


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
