"""The seed's provider interface, and the publishing both real clients share.

`SocialPostingProvider` is the seed's ABC, name for name. `HttpProvider` adds what the
worker needs beneath it: classified outcomes (`publish`) and lookups for reconciling
ambiguous creates, on top of the authenticated calls (providers.client), the cached
account list (providers.accounts) and the presigned media upload
(providers.media_upload). The seed methods are thin wrappers that turn outcomes into
PostResults and never raise.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any, ClassVar

from providers.account_caps import account_caps
from providers.accounts import CachedAccounts
from providers.client import log
from providers.errors import ProviderCallError
from providers.http import HttpAnswer, TransportError
from providers.media_upload import PresignedUpload
from providers.models import AccountInfo, PostResult
from providers.outcomes import OutcomeKind, PublishOutcome, PublishRequest, TargetResult
from providers.ownership import Resolution
from providers.platforms import normalize_platforms


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
        refused = set(outcome.refused_platforms)
        missing = [p for p in outcome.missing_platforms if p not in refused]
        if missing:
            notes.append(f"No connected accounts for: {missing}")
        notes.extend(f"{p}: {outcome.account_errors.get(p, 'refused')}" for p in refused)
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


class HttpProvider(CachedAccounts, PresignedUpload, SocialPostingProvider):
    """Shared behaviour of the PostForMe and LATE clients (see the module docstring)."""

    # Whether a create repeated under the same idempotency key is answered as the first
    # one (never a second post). Only then may a create whose outcome is unknown be resent.
    dedupes_resends: ClassVar[bool] = False

    # -- hooks for the two providers -------------------------------------------------
    @abstractmethod
    def _create(self, request: PublishRequest, chosen: dict[str, AccountInfo]) -> PublishOutcome:
        """One create-post call for the platforms in `chosen` (platform -> account)."""

    @abstractmethod
    def find_post(self, idempotency_key: str) -> PublishOutcome | None:
        """The post created under `idempotency_key`, for reconciling an AMBIGUOUS create;
        None when none is known. Raises ProviderCallError if the lookup itself fails."""

    @abstractmethod
    def fetch_results(self, provider_post_id: str) -> dict[str, TargetResult]:
        """Per-platform results of an accepted post. Raises ProviderCallError."""

    @abstractmethod
    def get_oauth_url(
        self, platform: str, redirect_url: str, *, user_id: str | None = None,
        shared_key: bool = False,
    ) -> str | None:
        """Where a user connects `platform` to this provider; None on failure. With
        `user_id` the new account is tied to that user (PostForMe external_id; on a
        shared LATE key, the user's own profile)."""

    def _no_account(self, found: Resolution, status: int | None = None) -> PublishOutcome:
        return PublishOutcome(
            kind=OutcomeKind.NO_ACCOUNT,
            provider=self.name,
            http_status=status,
            error=_unserved_error(found),
            missing_platforms=tuple(found.unserved),
            refused_platforms=tuple(found.refused),
            account_errors={**found.missing, **found.refused},
        )

    # -- publishing --------------------------------------------------------------------
    def publish(
        self,
        request: PublishRequest,
        *,
        allow_partial: bool = False,
        before_send: Callable[[], bool] | None = None,
    ) -> PublishOutcome:
        """Create one post and classify the result. Never raises.

        Only accounts this user may use are posted to (providers.ownership). Unserved
        platforms: without allow_partial nothing is sent (NO_ACCOUNT); with it the served
        platforms are published and the rest listed in `missing_platforms`, those that
        must fail (another user's account named, an ambiguous choice) also in
        `refused_platforms`, each with its reason in `account_errors`.
        `before_send()` is asked right before the create goes out (the engine renews its
        lease and notes the send there); False means nothing is sent."""
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
                found, cached = self._resolve(platforms, request)
            except ProviderCallError as exc:
                return exc.outcome
            chosen = found.chosen
            if found.unserved and (not allow_partial or not chosen):
                return self._no_account(found)
            held = self._hold_for_caps(chosen)
            if held is not None:
                return held
            if before_send is not None and not before_send():
                self._drop_admission()
                return PublishOutcome(
                    kind=OutcomeKind.TRANSIENT, provider=self.name,
                    error="not sent: the post is no longer held by this attempt",
                )
            sent = True
            outcome = self._create(request, chosen)
            if outcome.kind in (OutcomeKind.REJECTED, OutcomeKind.CREDENTIAL_REJECTED):
                self.invalidate_accounts()  # an account id may be stale
            if outcome.kind is OutcomeKind.REJECTED and cached:
                # Refused with a cached account list: if an account has gone since, say
                # so (nothing was created) rather than blame the post.
                try:
                    fresh, _ = self._resolve(platforms, request)
                except ProviderCallError:
                    fresh = found
                if len(fresh.unserved) > len(found.unserved) and (
                    not allow_partial or not fresh.chosen
                ):
                    return self._no_account(fresh, outcome.http_status)
            if found.unserved:
                outcome = replace(
                    outcome,
                    missing_platforms=tuple(found.unserved),
                    refused_platforms=tuple(found.refused),
                    account_errors={**found.missing, **found.refused},
                )
            self._log_outcome(outcome)
            return outcome
        except Exception as exc:  # a bug must not escape, nor hide a possible send
            self._drop_admission()
            kind = OutcomeKind.AMBIGUOUS if sent else OutcomeKind.REJECTED
            log.exception("%s: unexpected error while publishing", self.name)
            return PublishOutcome(
                kind=kind,
                provider=self.name,
                error=self._clean(f"internal error: {type(exc).__name__}: {exc}"),
            )

    def _hold_for_caps(self, chosen: dict[str, AccountInfo]) -> PublishOutcome | None:
        """HELD when a chosen account is at its cap (providers.account_caps), PACED when
        the create has no permit; else None, the create's permit taken and the post
        counted on its accounts (in that order: a post only counts when it goes out)."""
        caps = account_caps()
        if not caps.active:
            return None
        held = caps.check(self.provider_key, chosen)
        if held is None:
            try:
                self._admit_next_call()
            except TransportError as exc:
                return PublishOutcome(kind=exc.kind, provider=self.name, error=exc.message,
                                      retry_after=exc.retry_after)
            held = caps.take(self.provider_key, chosen)
        if held is None:
            return None
        self._drop_admission()
        return PublishOutcome(kind=OutcomeKind.HELD, provider=self.name, error=held.reason,
                              retry_after=held.wait)

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
                kind=exc.kind, provider=self.name, error=exc.message,
                latency_ms=exc.latency_ms, retry_after=exc.retry_after,
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


def _unserved_error(found: Resolution) -> str:
    """The seed's "No connected accounts for: [...]" with each reason, then each refusal
    with its reason (this is what the attempt log keeps)."""
    parts = []
    if found.missing:
        why = "; ".join(f"{p}: {reason}" for p, reason in found.missing.items())
        parts.append(f"No connected accounts for: {list(found.missing)} ({why})")
    parts.extend(f"{p}: {why}" for p, why in found.refused.items())
    return "; ".join(parts)


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
