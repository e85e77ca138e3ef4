"""The seed's provider interface, and the HTTP machinery both real clients share.

`SocialPostingProvider` is the seed's ABC, name for name. `HttpProvider` adds what the
worker needs beneath it: classified outcomes (`publish`), a cached account list, lookups
for reconciling ambiguous creates, and the presigned media upload. The seed methods are
thin wrappers that turn outcomes into PostResults and never raise.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any, ClassVar
from urllib.parse import urlsplit

from providers import config
from providers.errors import MediaError, ProviderCallError
from providers.http import (
    HttpAnswer,
    TransportError,
    classify_answer,
    send,
)
from providers.media import FetchedMedia, fetch_media
from providers.models import AccountInfo, PostResult
from providers.outcomes import OutcomeKind, PublishOutcome, PublishRequest, TargetResult
from providers.platforms import normalize_platform, normalize_platforms
from providers.redact import clean_error

log = logging.getLogger("providers")

# Reads (accounts, lookups) never need LATE's long publish timeout.
QUERY_READ_TIMEOUT_CAP = 30.0


class SocialPostingProvider(ABC):
    """The seed's provider interface: every method returns a result, none raises."""

    @property
    @abstractmethod
    def name(self) -> str: ...

    @abstractmethod
    def get_accounts(self) -> list[AccountInfo]: ...

    @abstractmethod
    def upload_media(self, image_url: str) -> str | None: ...

    @abstractmethod
    def post(
        self,
        content: str,
        platforms: list[str],
        media_urls: list[str] | None = None,
        scheduled_for: datetime | None = None,
        *,
        post_id: str | None = None,
    ) -> PostResult: ...


class _Secret:
    """Holds the API key so that no repr, vars() dump or traceback local shows it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __reduce__(self) -> Any:  # pickling would write the key somewhere: refuse
        raise TypeError("API keys are not picklable")


# Account lists by (provider class, base URL, key digest): a stream of posts through one
# credential must not fetch the list every time. The digest keeps the key out of memory
# dumps of the cache.
_accounts_cache: dict[tuple[str, str, str], tuple[float, tuple[AccountInfo, ...]]] = {}
_accounts_lock = threading.Lock()


def clear_accounts_cache() -> None:
    """Forget every cached account list (tests, or after credentials change)."""
    with _accounts_lock:
        _accounts_cache.clear()


def _display_url(url: str) -> str:
    """A base URL without any user:password part, for repr and logs."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "(invalid URL)"
    if parts.username or parts.password:
        host = parts.hostname or ""
        netloc = f"***@{host}" + (f":{parts.port}" if parts.port else "")
        return parts._replace(netloc=netloc).geturl()
    return url


def post_result_from(outcome: PublishOutcome, scheduled_for: datetime | None = None) -> PostResult:
    """Flatten a classified outcome into the seed's PostResult."""
    ids = {p: t.platform_post_id for p, t in outcome.targets.items() if t.platform_post_id}
    urls = {p: t.platform_post_url for p, t in outcome.targets.items() if t.platform_post_url}
    failed = {p: t for p, t in outcome.targets.items() if t.success is False}
    success = outcome.kind is OutcomeKind.PUBLISHED and not (
        outcome.targets and len(failed) == len(outcome.targets)
    )
    error = outcome.error
    if outcome.kind is OutcomeKind.PUBLISHED:
        notes = [f"{p}: {t.error or 'failed'}" for p, t in failed.items()]
        if outcome.missing_platforms:
            notes.append(f"No connected accounts for: {list(outcome.missing_platforms)}")
        error = "; ".join(notes) or None
    return PostResult(
        success=success,
        post_id=outcome.provider_post_id,
        platform_post_ids=ids or None,
        platform_post_urls=urls or None,
        error=error,
        provider=outcome.provider,
        scheduled_for=scheduled_for,
    )


class HttpProvider(SocialPostingProvider):
    """Shared behaviour of the PostForMe and LATE clients (see the module docstring)."""

    provider_key: ClassVar[str] = ""  # "postforme" | "late": settings and sandbox names
    display_name: ClassVar[str] = ""  # the seed's provider name: "PostForMe" | "LATE"

    def __init__(
        self,
        api_key: str | None,
        base_url: str | None = None,
        *,
        connect_timeout: float | None = None,
        read_timeout: float | None = None,
    ) -> None:
        # A missing key is not an error here: the seed's callers pass os.getenv(...)
        # straight in, and its methods must answer with a result, not raise.
        self._key = _Secret(api_key.strip() if isinstance(api_key, str) else "")
        self.base_url = (base_url or self._default_base_url()).rstrip("/")
        self.connect_timeout = float(
            config.connect_timeout() if connect_timeout is None else connect_timeout
        )
        self.read_timeout = float(
            self._default_read_timeout() if read_timeout is None else read_timeout
        )
        self._cache_key = (
            type(self).__name__,
            self.base_url,
            hashlib.sha256(self._key.reveal().encode()).hexdigest(),
        )

    # -- identity ------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.display_name

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(name={self.name!r}, base_url={_display_url(self.base_url)!r})"
        )

    __str__ = __repr__

    @property
    def max_request_seconds(self) -> float:
        """The longest one API call of this client can take (connect + read deadline)."""
        return config.request_deadline(self.connect_timeout, self.read_timeout)

    # -- hooks for the two providers -------------------------------------------------
    @classmethod
    def _default_base_url(cls) -> str:
        raise NotImplementedError

    @classmethod
    def _default_read_timeout(cls) -> float:
        raise NotImplementedError

    @abstractmethod
    def _fetch_accounts(self) -> list[AccountInfo]:
        """One uncached account-list call; raises ProviderCallError."""

    @abstractmethod
    def _create(self, request: PublishRequest, chosen: dict[str, AccountInfo]) -> PublishOutcome:
        """One create-post call for the platforms in `chosen` (platform -> account)."""

    @abstractmethod
    def _presign(self, media: FetchedMedia) -> tuple[str, str]:
        """(upload URL, public URL) for one file; raises ProviderCallError."""

    def _after_upload(self) -> None:
        """Hook: LATE waits for its CDN."""

    @abstractmethod
    def find_post(self, idempotency_key: str) -> PublishOutcome | None:
        """The post created under `idempotency_key`, for reconciling an AMBIGUOUS create;
        None when none is known. Raises ProviderCallError if the lookup itself fails."""

    @abstractmethod
    def fetch_results(self, provider_post_id: str) -> dict[str, TargetResult]:
        """Per-platform results of an accepted post. Raises ProviderCallError."""

    @abstractmethod
    def get_oauth_url(self, platform: str, redirect_url: str) -> str | None:
        """Where a user connects `platform` to this provider; None on failure."""

    # -- redaction -------------------------------------------------------------------
    def _secrets(self) -> tuple[str, ...]:
        return (self._key.reveal(),)

    def _clean(self, text: object) -> str:
        return clean_error(text, self._secrets())

    # -- HTTP ------------------------------------------------------------------------
    def _auth_headers(self) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {self._key.reveal()}",
            "Accept": "application/json",
        }

    def _request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        read_timeout: float | None = None,
    ) -> HttpAnswer:
        """One authenticated API call; raises TransportError when there is no answer."""
        all_headers = self._auth_headers()
        all_headers.update(headers or {})
        answer = send(
            method,
            f"{self.base_url}{path}",
            session_key=self.base_url,
            connect_timeout=self.connect_timeout,
            read_timeout=self.read_timeout if read_timeout is None else read_timeout,
            headers=all_headers,
            params=params,
            json_body=json_body,
            secrets=self._secrets(),
        )
        log.debug(
            "%s %s %s -> HTTP %s in %.0f ms",
            self.name,
            method,
            path,
            answer.status,
            answer.latency_ms,
        )
        return answer

    def _no_key_outcome(self) -> PublishOutcome:
        return PublishOutcome(
            kind=OutcomeKind.CREDENTIAL_REJECTED,
            provider=self.name,
            error=f"No API key configured for {self.name}",
        )

    def _query(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json_body: Any = None,
    ) -> Any:
        """A call that creates nothing: returns the 2xx body or raises ProviderCallError.
        A lost answer is TRANSIENT here (asking again is harmless)."""
        if not self._key:
            raise ProviderCallError(self._no_key_outcome())
        try:
            answer = self._request(
                method,
                path,
                params=params,
                json_body=json_body,
                read_timeout=min(self.read_timeout, QUERY_READ_TIMEOUT_CAP),
            )
        except TransportError as exc:
            kind = OutcomeKind.TRANSIENT if exc.kind is OutcomeKind.AMBIGUOUS else exc.kind
            raise ProviderCallError(
                PublishOutcome(
                    kind=kind, provider=self.name, error=exc.message, latency_ms=exc.latency_ms
                )
            ) from None
        if not answer.ok:
            raise ProviderCallError(classify_answer(answer, self.name, self._secrets()))
        return answer.body

    # -- accounts --------------------------------------------------------------------
    def accounts(self) -> list[AccountInfo]:
        """Connected accounts, cached for SOCIALPOST_ACCOUNTS_CACHE_SECONDS per
        (base URL, key). Raises ProviderCallError."""
        return self._accounts_with_source()[0]

    def _accounts_with_source(self) -> tuple[list[AccountInfo], bool]:
        ttl = config.accounts_cache_seconds()
        now = time.monotonic()
        if ttl > 0:
            with _accounts_lock:
                hit = _accounts_cache.get(self._cache_key)
            if hit is not None and hit[0] > now:
                return list(hit[1]), True
        fetched = self._fetch_accounts()
        if ttl > 0:
            with _accounts_lock:
                _accounts_cache[self._cache_key] = (now + ttl, tuple(fetched))
        return fetched, False

    def invalidate_accounts(self) -> None:
        """Drop this credential's cached account list (a new account was connected, or
        the provider refused an account id)."""
        with _accounts_lock:
            _accounts_cache.pop(self._cache_key, None)

    def get_accounts(self) -> list[AccountInfo]:
        """Seed API: the connected accounts, or [] when they cannot be read."""
        try:
            return self.accounts()
        except ProviderCallError as exc:
            log.warning("%s: listing accounts failed: %s", self.name, self._clean(exc))
        except Exception as exc:  # the seed API never raises
            log.warning("%s: listing accounts failed: %s", self.name, self._clean(repr(exc)))
        return []

    def _resolve(self, platforms: Iterable[str]) -> tuple[dict[str, AccountInfo], list[str], bool]:
        """One account per requested platform (the first connected one), the platforms
        without any, and whether the list came from the cache. A miss in a cached list
        is checked once more against a fresh one."""
        wanted = list(platforms)
        accounts, cached = self._accounts_with_source()
        chosen = _pick(accounts, wanted)
        if cached and len(chosen) < len(wanted):
            self.invalidate_accounts()
            accounts, cached = self._accounts_with_source()
            chosen = _pick(accounts, wanted)
        missing = [p for p in wanted if p not in chosen]
        return chosen, missing, cached

    def _no_account(self, missing: list[str], status: int | None = None) -> PublishOutcome:
        return PublishOutcome(
            kind=OutcomeKind.NO_ACCOUNT,
            provider=self.name,
            http_status=status,
            error=f"No connected accounts for: {missing}",
            missing_platforms=tuple(missing),
        )

    # -- publishing --------------------------------------------------------------------
    def publish(self, request: PublishRequest, *, allow_partial: bool = False) -> PublishOutcome:
        """Create one post and classify the result. Never raises.

        Missing accounts: without allow_partial nothing is sent (NO_ACCOUNT); with it the
        served platforms are published and the rest listed in `missing_platforms`."""
        sent = False
        try:
            try:
                platforms = normalize_platforms(request.platforms)
            except ValueError as exc:
                return self._local_reject(str(exc))
            if not platforms:
                return self._local_reject("no platforms requested")
            if not self._key:
                return self._no_key_outcome()
            try:
                chosen, missing, cached = self._resolve(platforms)
            except ProviderCallError as exc:
                return exc.outcome
            if missing and (not allow_partial or not chosen):
                return self._no_account(missing)
            sent = True
            outcome = self._create(request, chosen)
            if outcome.kind in (OutcomeKind.REJECTED, OutcomeKind.CREDENTIAL_REJECTED):
                self.invalidate_accounts()  # an account id may be stale
            if outcome.kind is OutcomeKind.REJECTED and cached:
                # Refused with a cached account list: if an account has gone since, say
                # so (nothing was created) rather than blame the post.
                try:
                    fresh_chosen, fresh_missing, _ = self._resolve(platforms)
                except ProviderCallError:
                    fresh_chosen, fresh_missing = chosen, missing
                if len(fresh_missing) > len(missing) and (not allow_partial or not fresh_chosen):
                    return self._no_account(fresh_missing, outcome.http_status)
            if missing:
                outcome = replace(outcome, missing_platforms=tuple(missing))
            self._log_outcome(outcome)
            return outcome
        except Exception as exc:  # a bug must not escape, nor hide a possible send
            kind = OutcomeKind.AMBIGUOUS if sent else OutcomeKind.REJECTED
            log.exception("%s: unexpected error while publishing", self.name)
            return PublishOutcome(
                kind=kind,
                provider=self.name,
                error=self._clean(f"internal error: {type(exc).__name__}: {exc}"),
            )

    def _local_reject(self, message: str) -> PublishOutcome:
        return PublishOutcome(
            kind=OutcomeKind.REJECTED, provider=self.name, error=self._clean(message)
        )

    def _log_outcome(self, outcome: PublishOutcome) -> None:
        if outcome.kind is OutcomeKind.PUBLISHED:
            log.info(
                "%s: post %s accepted (%s) in %.0f ms",
                self.name,
                outcome.provider_post_id,
                outcome.provider_status,
                outcome.latency_ms,
            )
        else:
            log.warning("%s: publish %s: %s", self.name, outcome.kind.value, outcome.error)

    def _send_create(
        self, path: str, payload: dict[str, Any], headers: Mapping[str, str] | None = None
    ) -> HttpAnswer | PublishOutcome:
        """POST a create; an outcome when there is no usable answer (transport)."""
        try:
            return self._request("POST", path, json_body=payload, headers=headers)
        except TransportError as exc:
            return PublishOutcome(
                kind=exc.kind, provider=self.name, error=exc.message, latency_ms=exc.latency_ms
            )

    def post(
        self,
        content: str,
        platforms: list[str],
        media_urls: list[str] | None = None,
        scheduled_for: datetime | None = None,
        *,
        post_id: str | None = None,
    ) -> PostResult:
        """Seed API: publish and flatten the outcome; `post_id` is our idempotency key."""
        try:
            request = PublishRequest(
                content=content,
                platforms=tuple(platforms or ()),
                media_urls=tuple(media_urls or ()),
                scheduled_for=scheduled_for,
                idempotency_key=post_id,
            )
            return post_result_from(self.publish(request), scheduled_for)
        except Exception as exc:  # the seed API never raises
            return PostResult(
                success=False,
                error=self._clean(f"{type(exc).__name__}: {exc}"),
                provider=self.name,
                scheduled_for=scheduled_for,
            )

    # -- media -----------------------------------------------------------------------
    def upload(self, source_url: str) -> str:
        """Fetch `source_url`, upload it by the presigned flow, return the public URL.
        Raises MediaError (the source) or ProviderCallError (the provider)."""
        if not self._key:
            raise ProviderCallError(self._no_key_outcome())
        media = fetch_media(source_url)
        upload_url, public_url = self._presign(media)
        self._put(upload_url, media)
        self._after_upload()
        return public_url

    def upload_media(self, image_url: str) -> str | None:
        """Seed API: the public URL of the uploaded copy, or None (a warning is logged)."""
        try:
            return self.upload(image_url)
        except (MediaError, ProviderCallError) as exc:
            log.warning("%s: media upload failed: %s", self.name, self._clean(exc))
        except Exception as exc:  # the seed API never raises
            log.warning("%s: media upload failed: %s", self.name, self._clean(repr(exc)))
        return None

    def _put(self, upload_url: str, media: FetchedMedia) -> None:
        """PUT the bytes to the presigned URL, without our Authorization header (the
        upload host is storage, not the API: it must never see the key)."""
        parts = urlsplit(upload_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ProviderCallError(self._local_reject("provider returned an invalid upload URL"))
        try:
            answer = send(
                "PUT",
                upload_url,
                session_key=f"upload:{parts.scheme}://{parts.netloc}",
                connect_timeout=self.connect_timeout,
                read_timeout=self.read_timeout + config.media_timeout(),
                headers={"Content-Type": media.content_type},
                data=media.content,
                secrets=self._secrets(),
            )
        except TransportError as exc:
            raise ProviderCallError(
                PublishOutcome(
                    kind=exc.kind, provider=self.name, error=f"media upload: {exc.message}"
                )
            ) from None
        if not answer.ok:
            outcome = classify_answer(answer, self.name, self._secrets())
            raise ProviderCallError(replace(outcome, error=f"media upload: {outcome.error}"))


def _pick(accounts: Iterable[AccountInfo], wanted: list[str]) -> dict[str, AccountInfo]:
    chosen: dict[str, AccountInfo] = {}
    for account in accounts:
        platform = normalize_platform(account.platform)
        if platform in wanted and platform not in chosen:
            chosen[platform] = account
    return {p: chosen[p] for p in wanted if p in chosen}


def first_str(*values: object) -> str | None:
    """The first non-empty string (or number, as text) among `values`."""
    for value in values:
        if isinstance(value, str) and value:
            return value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
    return None


def as_dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def unwrap(body: object) -> dict[str, Any]:
    """The object inside {"data": {...}} (the seed's shape) or the body itself."""
    outer = as_dict(body)
    inner = outer.get("data")
    return inner if isinstance(inner, dict) else outer
