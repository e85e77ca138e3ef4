"""The seed's synchronous API: `SocialPostingService`, `PostForMeProvider`, `LateProvider`.

Scripts written against the seed keep working: `from social_posting_service import ...`.
This module is a facade. A post made here runs through the workers' own engine
(tasks.delivery: claim, one provider call, plan, record), the service only waiting in
process between attempts (tasks.in_process) instead of letting the broker wait; so it is
retried, failed over, reconciled and recorded exactly as a worker would do it, target by
target, and shows in the same history.

A post with a future `scheduled_for` is scheduled in PostgreSQL, like every other
scheduled post: beat releases it at its time and a worker publishes it (run `socialpost
beat` and `socialpost worker`). Its `PostResult.post_id` is then *our* post id (for
`get_post`), since no provider has the post yet; `success` means it was accepted.

Every method answers with a result and never raises (the seed's error table): bad input
and provider errors come back as `PostResult(success=False, error=...)`. When the
database cannot record a post, the engine runs on an in-memory claim with the global
credentials (the user's keys cannot be read), and the failure to record is logged. API
keys never appear in a result or a log line (`get_credentials` is the one method that
returns a key, decrypted, as the seed's does).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, TypeVar

import psycopg

from db import campaigns, posts
from db import credentials as creds
from db import delivery as ledger
from db.errors import CampaignNotFound, DbError, InvalidInput, NotFound
from db.pool import Conn, connection
from providers import (
    AccountInfo,
    LateProvider,
    Platform,
    PostForMeProvider,
    PostResult,
    SocialPostingProvider,
)
from providers.errors import ProviderCallError
from tasks import accounts as account_tasks
from tasks.chain import Step, build_chain
from tasks.delivery import (
    decrypt_keys,
    provider_for,
    vault,
)
from tasks.planning import NO_CREDENTIALS
from tasks.seed_support import (
    clean,
    credential_dict,
    db_error,
    dsn_of,
    internal_error,
    jsonable,
    log,
    never_raises,
    provider_name,
    read_or,
    uuid_or_none,
)
from tasks.sync_posting import SyncPosting

T = TypeVar("T")

__all__ = [
    "AccountInfo",
    "LateProvider",
    "Platform",
    "PostForMeProvider",
    "PostResult",
    "SocialPostingProvider",
    "SocialPostingService",
]



class SocialPostingService:
    """The seed's service: credentials, OAuth, posting with failover, campaigns, accounts,
    history. Holds only a DSN; every call takes pooled connections (db.pool)."""

    def __init__(self) -> None:
        self._dsn: str | None = None

    def __repr__(self) -> str:  # never the DSN: it may carry a password
        return "SocialPostingService()"

    # -- set-up -----------------------------------------------------------------------
    def init(self, db: object = None) -> None:
        """Point the service at PostgreSQL: a DSN, a psycopg connection or pool, or None
        for DATABASE_URL. Anything else (a Supabase client) is logged and DATABASE_URL used."""
        try:
            self._dsn = dsn_of(db)
        except (TypeError, ValueError, psycopg.Error) as exc:
            log.error("init: %s; using DATABASE_URL", clean(str(exc)))
            self._dsn = None

    @contextmanager
    def _conn(self) -> Iterator[Conn]:
        with connection(self._dsn) as conn:
            yield conn


    # -- credentials ------------------------------------------------------------------
    def save_credentials(
        self,
        user_id: str,
        provider: str,
        api_key: str,
        connected_platforms: list[str] | None = None,
    ) -> bool:
        """Store the user's key for 'postforme' or 'late', Fernet-encrypted. False (logged,
        the key masked) when it cannot be stored."""
        try:
            with self._conn() as conn:
                creds.save_credentials(
                    conn, vault(), user_id, provider_name(provider), api_key, connected_platforms
                )
            return True
        except Exception as exc:
            secret = api_key if isinstance(api_key, str) else None
            log.error("save_credentials(%s, %s): %s", user_id, provider, clean(exc, (secret,)))
            return False

    @never_raises(lambda _: None)
    def get_credentials(self, user_id: str, provider: str) -> dict[str, Any] | None:
        """The user's stored credential with its key decrypted, or None."""
        name = provider_name(provider)
        cred = read_or(self._dsn, "get_credentials", None,
                          lambda c: creds.get_credentials(c, vault(), user_id, name))
        return credential_dict(cred) if cred is not None else None

    @never_raises(lambda _: False)
    def delete_credentials(self, user_id: str, provider: str) -> bool:
        """True when a stored credential was deleted."""
        name = provider_name(provider)
        return read_or(self._dsn, "delete_credentials", False,
                          lambda c: creds.delete_credentials(c, user_id, name))

    def _user_keys(self, user_id: object) -> dict[str, str]:
        """The user's valid keys, decrypted; {} when they cannot be read (logged)."""
        uid = uuid_or_none(user_id)
        if uid is None:
            log.warning("user_id %r is not a UUID: only global credentials apply", user_id)
            return {}
        none: dict[str, dict[str, str]] = {}
        encrypted = read_or(self._dsn, f"keys of user {uid}", none,
                            lambda c: ledger.user_keys(c, [uid]))
        return decrypt_keys(encrypted.get(str(uid), {}), f"user {uid}")

    def _chain(self, user_id: object) -> list[Step]:
        return build_chain(self._user_keys(user_id))

    # -- OAuth and accounts -----------------------------------------------------------
    @never_raises(lambda _: None)
    def get_oauth_url(self, user_id: str, platform: str, redirect_url: str) -> str | None:
        """Where the user connects `platform`: PostForMe with the user's key, else the
        global one (LATE only when no PostForMe key exists). The account is tied to the
        user (PostForMe external_id; on the global LATE key, the user's own profile), so
        on a shared key it is theirs alone. None on failure (logged)."""
        uid = uuid_or_none(user_id)
        if uid is None:
            log.warning("get_oauth_url: user_id: must be a UUID, got %r", user_id)
            return None
        chain = sorted(self._chain(uid), key=lambda s: (s.provider != "postforme", s.index))
        if not chain:
            log.warning("get_oauth_url: %s", NO_CREDENTIALS)
            return None
        step = chain[0]
        return provider_for(step).get_oauth_url(
            platform, redirect_url, user_id=str(uid), shared_key=step.source == "global"
        )

    @never_raises(lambda _: [])
    def get_connected_accounts(self, user_id: str) -> list[dict[str, Any]]:
        """[{id, platform, username}] the user may post to, from the first credential in
        the chain that answers: on the user's own key all its accounts, on a global key
        the user's (tagged with the user id) and the organisation's shared ones
        (SOCIALPOST_SHARED_ACCOUNTS), never another user's."""
        uid = uuid_or_none(user_id)
        if uid is None:
            log.warning("get_connected_accounts: user_id: must be a UUID, got %r", user_id)
            return []
        for step in self._chain(uid):
            try:
                accounts = provider_for(step).usable_accounts(str(uid), step.source)
            except ProviderCallError as exc:
                log.warning("accounts via %s: %s", step.label, exc.outcome.error)
                continue
            return [
                {"id": a.id, "platform": a.platform, "username": a.username}
                for a, _rank in accounts
            ]
        return []

    @never_raises(lambda m: {"refreshed": 0, "invalid": 0, "errors": 1, "error": m})
    def refresh_connected_platforms(self, user_id: str) -> dict[str, Any]:
        """Re-read each stored credential's accounts into connected_platforms; a rejected
        key is marked invalid. Returns {refreshed, invalid, errors}."""
        uid = uuid_or_none(user_id)
        if uid is None:
            return {"refreshed": 0, "invalid": 0, "errors": 1, "error": "user_id: must be a UUID"}
        return account_tasks.refresh_all(str(uid), dsn=self._dsn)

    # -- history ----------------------------------------------------------------------
    @never_raises(lambda _: [])
    def get_post_history(
        self, user_id: str, limit: int = 50, status: str | None = None
    ) -> list[dict[str, Any]]:
        """The user's posts, newest first, with targets and attempts, as JSON-ready dicts."""
        size = max(1, min(int(limit), 1000))
        empty: list[dict[str, Any]] = []
        rows = read_or(self._dsn, "get_post_history", empty,
                          lambda c: posts.get_post_history(c, user_id, size, status))
        return [jsonable(r) for r in rows]

    @never_raises(lambda _: None)
    def get_post(self, post_id: str) -> dict[str, Any] | None:
        """One post (our id, a UUID) with targets and attempts, or None."""
        row = read_or(self._dsn, "get_post", None, lambda c: posts.get_post(c, post_id))
        return jsonable(row) if row is not None else None

    # -- posting ----------------------------------------------------------------------
    @never_raises(internal_error)
    def create_post(
        self,
        user_id: str,
        content: str,
        platforms: list[str],
        media_urls: list[str] | None = None,
        scheduled_for: datetime | None = None,
        campaign_id: str | None = None,
        batch_number: int | None = None,
        overrides: dict[str, dict[str, Any]] | None = None,
    ) -> PostResult:
        """Publish now, waiting for the engine's retries up to SOCIALPOST_SYNC_MAX_WAIT
        seconds (`result.post_id` is the provider's post id), or, with a future
        `scheduled_for`, schedule it in PostgreSQL (`result.post_id` is our post id).
        `overrides` (optional, beyond the seed) gives a platform its own content, media
        and options: {"linkedin": {"content": ...}, "youtube": {"title": ...}}."""
        raw: dict[str, Any] = {
            "user_id": user_id,
            "content": content,
            "platforms": platforms,
            "media_urls": media_urls,
            "scheduled_for": scheduled_for,
            "campaign_id": campaign_id,
            "batch_number": batch_number,
            "overrides": overrides,
        }
        return SyncPosting(self._dsn).create(raw)

    # -- campaigns --------------------------------------------------------------------
    @never_raises(internal_error)
    def publish_batch(
        self,
        user_id: str,
        campaign_id: str,
        batch_number: int,
        platforms: list[str],
        media_urls: list[str] | None = None,
        scheduled_for: datetime | None = None,
    ) -> PostResult:
        """Post batch `batch_number` of the campaign's creative calendar (its caption; its
        media unless `media_urls` is given; its time when in the future, unless
        `scheduled_for` is given), through `create_post`."""
        try:
            with self._conn() as conn:  # one statement, only this batch's entries back
                owner, batch = campaigns.batch_and_owner(conn, campaign_id, batch_number)
        except CampaignNotFound:
            return PostResult(success=False, error=f"campaign_id: no campaign {campaign_id}")
        except (InvalidInput, NotFound) as exc:
            return PostResult(success=False, error=str(exc))
        except (DbError, psycopg.Error) as exc:
            message = db_error("publish_batch", exc)
            return PostResult(
                success=False, error=f"cannot read campaign {campaign_id}: {message}"
            )
        if uuid_or_none(user_id) != owner:
            return PostResult(success=False, error="campaign_id: belongs to another user")
        when = scheduled_for
        if when is None and batch.scheduled_for and batch.scheduled_for > datetime.now(UTC):
            when = batch.scheduled_for
        return self.create_post(
            user_id=user_id,
            content=batch.caption,
            platforms=platforms,
            media_urls=list(media_urls) if media_urls is not None else list(batch.media_urls),
            scheduled_for=when,
            campaign_id=str(uuid_or_none(campaign_id)),
            batch_number=batch.batch_number,
            overrides=batch.overrides,
        )

