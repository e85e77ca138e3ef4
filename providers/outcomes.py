"""Classified results of one provider call: what the worker decides on.

The seed API flattens these into a PostResult; the worker reads the kind and acts
by DESIGN.md's outcome table (retry, wait, fall over, reconcile, finish).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any


class OutcomeKind(str, Enum):
    PUBLISHED = "published"  # 2xx: the provider accepted the post (targets may still differ)
    TRANSIENT = "transient"  # not sent, or 5xx: safe to retry the same step
    RATE_LIMITED = "rate_limited"  # 429: retry the same step after `retry_after` seconds
    CREDENTIAL_REJECTED = "credential_rejected"  # 401/403: fall over now, mark the key bad
    REJECTED = "rejected"  # other 4xx: fall over, the next provider may accept
    DUPLICATE = "duplicate"  # LATE 409: the same content already exists (existing_post_id)
    AMBIGUOUS = "ambiguous"  # sent, answer lost (timeout/reset): look up before any resend
    NO_ACCOUNT = "no_account"  # no connected account for some platforms: nothing was sent
    # Our own pacing held the call back (no permit from the key's budget yet, the provider
    # said to wait, or its circuit is open): nothing was sent. `retry_after` says when.
    PACED = "paced"
    # A chosen social account is at its daily/hourly cap (providers.account_caps): the post
    # is held until it fits, nothing was sent. `retry_after` says when.
    HELD = "held"


@dataclass(frozen=True)
class PublishRequest:
    """One create-post call. `idempotency_key` is our post id (plus a suffix per step):
    it travels as PostForMe `external_id` and as LATE `x-request-id`.

    Whose post it is decides the accounts (providers.ownership): `user_id`, whether the
    key is the user's own (`credential_source` "user", every account theirs) or shared
    ("global"), `account_ids` (platform -> the account the request named) and
    `shared_accounts` (None: SOCIALPOST_SHARED_ACCOUNTS; False: only accounts the
    provider ties to the user). The defaults are the seed's: the caller's own key."""

    content: str
    platforms: tuple[str, ...]
    media_urls: tuple[str, ...] = ()
    scheduled_for: datetime | None = None
    idempotency_key: str | None = None
    platform_options: dict[str, dict[str, object]] = field(default_factory=dict)
    # platform -> our per-platform content and options (providers.content), normalised
    overrides: dict[str, dict[str, Any]] = field(default_factory=dict)
    user_id: str | None = None
    credential_source: str = "user"
    account_ids: dict[str, str] = field(default_factory=dict)
    shared_accounts: bool | None = None


@dataclass(frozen=True)
class TargetResult:
    """Per-platform outcome inside an accepted post. `success` is None while the
    provider still processes it (PostForMe answers asynchronously)."""

    platform: str
    success: bool | None = None
    platform_post_id: str | None = None
    platform_post_url: str | None = None
    error: str | None = None
    # For a failure: "refused" (content or account: another provider would be refused too)
    # or "provider" (nothing was published: the next step may try); see providers.verdicts.
    error_class: str | None = None
    published_at: datetime | None = None  # the platform's publish time, when told


@dataclass(frozen=True)
class PublishOutcome:
    kind: OutcomeKind
    provider: str  # "PostForMe" | "LATE"
    http_status: int | None = None
    error: str | None = None  # human readable and redacted, e.g. "HTTP 503: upstream down"
    retry_after: float | None = None  # seconds, for RATE_LIMITED
    provider_post_id: str | None = None
    provider_status: str | None = None  # the provider's own post status
    targets: dict[str, TargetResult] = field(default_factory=dict)  # by platform
    missing_platforms: tuple[str, ...] = ()  # not sent for want of an account (or refused)
    refused_platforms: tuple[str, ...] = ()  # of those, the ones that must fail (see ownership)
    account_errors: dict[str, str] = field(default_factory=dict)  # platform -> why unserved
    existing_post_id: str | None = None  # for DUPLICATE
    latency_ms: float = 0.0

    @property
    def accepted(self) -> bool:
        return self.kind is OutcomeKind.PUBLISHED
