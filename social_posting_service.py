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

import os
import socket
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import psycopg

import settings
from db import campaigns, posts
from db import credentials as creds
from db import delivery as ledger
from db.errors import DbError, InvalidInput, NotFound
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
from tasks import intake
from tasks import results as platform_ids
from tasks.chain import Step, build_chain
from tasks.delivery import (
    AttemptResult,
    FirstAttempt,
    decrypt_keys,
    default_policy,
    provider_for,
    run_attempt,
    vault,
)
from tasks.in_process import POLL_SECONDS, drive, run_unrecorded
from tasks.planning import NO_CREDENTIALS
from tasks.seed_support import (
    clean,
    dsn_of,
    internal_error,
    jsonable,
    log,
    memory_claim,
    never_raises,
    result_from_row,
    unrecorded_result,
    uuid_or_none,
)
from tasks.validation import InvalidRequest, PublishInput, check_publish_input

__all__ = [
    "AccountInfo",
    "LateProvider",
    "Platform",
    "PostForMeProvider",
    "PostResult",
    "SocialPostingProvider",
    "SocialPostingService",
]

NIL_USER = uuid.UUID(int=0)  # stands in for a non-UUID user id while the rest is checked


def _provider_name(value: object) -> str:
    """'PostForMe' / 'LATE' (the seed's display names) as the stored 'postforme' / 'late'."""
    return value.strip().lower() if isinstance(value, str) else repr(value)


def _owner() -> str:
    """A lease owner unique to one call, so the ledger can tell it from every worker."""
    return f"service-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:12]}"


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

    def _db_error(self, what: str, exc: BaseException) -> str:
        message = clean(exc)
        log.error("%s: database error: %s", what, message)
        return message

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
                    conn, vault(), user_id, _provider_name(provider), api_key, connected_platforms
                )
            return True
        except Exception as exc:
            secret = api_key if isinstance(api_key, str) else None
            log.error("save_credentials(%s, %s): %s", user_id, provider, clean(exc, (secret,)))
            return False

    @never_raises(lambda _: None)
    def get_credentials(self, user_id: str, provider: str) -> dict[str, Any] | None:
        """The user's stored credential with its key decrypted, or None."""
        try:
            with self._conn() as conn:
                cred = creds.get_credentials(conn, vault(), user_id, _provider_name(provider))
        except (DbError, psycopg.Error) as exc:
            self._db_error("get_credentials", exc)
            return None
        if cred is None:
            return None
        return {
            "user_id": str(cred.user_id),
            "provider": cred.provider,
            "api_key": cred.api_key,
            "connected_platforms": cred.connected_platforms,
            "updated_at": jsonable(cred.updated_at),
            "valid": cred.valid,
            "invalid_reason": cred.invalid_reason,
        }

    @never_raises(lambda _: False)
    def delete_credentials(self, user_id: str, provider: str) -> bool:
        """True when a stored credential was deleted."""
        try:
            with self._conn() as conn:
                return creds.delete_credentials(conn, user_id, _provider_name(provider))
        except (DbError, psycopg.Error) as exc:
            self._db_error("delete_credentials", exc)
            return False

    def _user_keys(self, user_id: object) -> dict[str, str]:
        """The user's valid keys, decrypted; {} when they cannot be read (logged)."""
        uid = uuid_or_none(user_id)
        if uid is None:
            log.warning("user_id %r is not a UUID: only global credentials apply", user_id)
            return {}
        try:
            with self._conn() as conn:
                encrypted = ledger.user_keys(conn, [uid])
        except (DbError, psycopg.Error) as exc:
            self._db_error(f"keys of user {uid}", exc)
            return {}
        return decrypt_keys(encrypted.get(str(uid), {}), f"user {uid}")

    def _chain(self, user_id: object) -> list[Step]:
        return build_chain(self._user_keys(user_id))

    # -- OAuth and accounts -----------------------------------------------------------
    @never_raises(lambda _: None)
    def get_oauth_url(self, user_id: str, platform: str, redirect_url: str) -> str | None:
        """Where the user connects `platform`: PostForMe with the user's key, else the
        global one (LATE only when no PostForMe key exists). None on failure (logged)."""
        chain = sorted(self._chain(user_id), key=lambda s: (s.provider != "postforme", s.index))
        if not chain:
            log.warning("get_oauth_url: %s", NO_CREDENTIALS)
            return None
        return provider_for(chain[0]).get_oauth_url(platform, redirect_url)

    @never_raises(lambda _: [])
    def get_connected_accounts(self, user_id: str) -> list[dict[str, Any]]:
        """[{id, platform, username}] from the first credential in the chain that answers."""
        for step in self._chain(user_id):
            try:
                accounts = provider_for(step).accounts()
            except ProviderCallError as exc:
                log.warning("accounts via %s: %s", step.label, exc.outcome.error)
                continue
            return [{"id": a.id, "platform": a.platform, "username": a.username} for a in accounts]
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
        try:
            with self._conn() as conn:
                rows = posts.get_post_history(conn, user_id, size, status)
        except (DbError, psycopg.Error) as exc:
            self._db_error("get_post_history", exc)
            return []
        return [jsonable(r) for r in rows]

    @never_raises(lambda _: None)
    def get_post(self, post_id: str) -> dict[str, Any] | None:
        """One post (our id, a UUID) with targets and attempts, or None."""
        try:
            with self._conn() as conn:
                row = posts.get_post(conn, post_id)
        except (DbError, psycopg.Error) as exc:
            self._db_error("get_post", exc)
            return None
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
    ) -> PostResult:
        """Publish now, waiting for the engine's retries up to SOCIALPOST_SYNC_MAX_WAIT
        seconds (`result.post_id` is the provider's post id), or, with a future
        `scheduled_for`, schedule it in PostgreSQL (`result.post_id` is our post id)."""
        post_id = uuid.uuid4()
        raw: dict[str, Any] = {
            "user_id": user_id,
            "content": content,
            "platforms": platforms,
            "media_urls": media_urls,
            "scheduled_for": scheduled_for,
            "campaign_id": campaign_id,
            "batch_number": batch_number,
        }
        try:
            data = check_publish_input(**raw, post_id=str(post_id))
        except InvalidRequest as exc:
            unrecorded = _without_user(exc, raw, post_id)
            if unrecorded is None:
                self._record_refusal(raw, post_id)
                when = scheduled_for if isinstance(scheduled_for, datetime) else None
                return PostResult(success=False, error=str(exc), scheduled_for=when)
            # The seed posts for any user id and only fails to track it; so do we.
            log.warning("post %s: user_id %r is not a UUID: published unrecorded, "
                        "with global credentials only", post_id, user_id)
            return self._unrecorded(unrecorded, str(post_id))
        held: list[FirstAttempt] = []
        first = intake.HoldFirstAttempt(owner=_owner(), hold=held.append)
        try:
            answer = intake.store(data, post_id, lambda _id: None, self._dsn, first)
        except InvalidInput as exc:
            return PostResult(success=False, error=str(exc), scheduled_for=data.scheduled_for)
        except (DbError, psycopg.Error) as exc:
            self._db_error(f"post {post_id} not recorded, publishing it unrecorded", exc)
            return self._unrecorded(data, str(post_id))
        if answer["status"] == "scheduled":
            return PostResult(success=True, post_id=str(post_id), scheduled_for=data.scheduled_for)
        try:
            return self._publish(str(post_id), first.owner, held)
        except (DbError, psycopg.Error) as exc:
            message = self._db_error(f"post {post_id}", exc)
            # The post is held in the ledger; whoever takes it over looks it up at the
            # provider before any resend, so nothing is sent from here again.
            return PostResult(
                success=False,
                error=f"Database error while publishing post {post_id} ({message}); its "
                "outcome is kept in the ledger and reconciled once the database is back",
            )

    def _record_refusal(self, raw: dict[str, Any], post_id: uuid.UUID) -> None:
        """Refused input becomes a failed post in history, as the workers record it."""
        try:
            intake.accept({**raw, "post_id": str(post_id)}, None, lambda _id: None, self._dsn)
        except Exception as exc:
            log.error("post %s: refusal not recorded: %s", post_id, clean(exc))

    def _publish(self, post_id: str, owner: str, held: list[FirstAttempt]) -> PostResult:
        """The engine's attempts, one after another, until final or out of time."""
        policy = default_policy()
        deadline = time.monotonic() + settings.current().sync_max_wait
        attempts = iter(held)

        def attempt() -> AttemptResult:
            first = next(attempts, None)
            if first is not None:
                return first.run(owner, policy, dsn=self._dsn)
            return run_attempt(post_id, owner, policy, dsn=self._dsn)

        result = drive(attempt, self._status_of, deadline)
        try:
            if result.collect_results:
                self._collect(post_id, deadline)
            with self._conn() as conn:
                row = posts.get_post(conn, post_id)
        except (DbError, psycopg.Error) as exc:
            message = self._db_error(f"post {post_id} read back", exc)
            return PostResult(
                success=result.status in ("posted", "partial"),
                error=f"post {post_id} is {result.status}, but its record could not be read "
                f"back ({message})",
            )
        if row is None:  # deleted meanwhile
            return PostResult(success=False, error=f"post {post_id} vanished from the ledger")
        return result_from_row(row)

    def _status_of(self, post_id: str) -> str | None:
        with self._conn() as conn:
            row = conn.execute(
                "SELECT status FROM social_posts WHERE id = %s", (uuid.UUID(post_id),)
            ).fetchone()
        return row["status"] if row else None

    def _collect(self, post_id: str, deadline: float) -> None:
        """PostForMe tells platform ids a moment after accepting: wait a little for them."""
        until = min(deadline, time.monotonic() + settings.current().sync_results_wait)
        while not platform_ids.collect(post_id, dsn=self._dsn):
            if time.monotonic() + POLL_SECONDS > until:
                log.info("post %s: platform ids not known yet; beat's sweep fills them", post_id)
                return
            time.sleep(POLL_SECONDS)

    def _unrecorded(self, data: PublishInput, post_id: str) -> PostResult:
        """The engine without the ledger: the user's keys are unreadable here, so only the
        global credentials are used; a future post goes to the provider's scheduler."""
        when = None if data.due_now() else data.scheduled_for
        chain = build_chain({})
        if not chain:
            return PostResult(success=False, error=NO_CREDENTIALS, scheduled_for=when)
        deadline = time.monotonic() + settings.current().sync_max_wait
        run = run_unrecorded(memory_claim(data, post_id), chain, default_policy(), deadline,
                             scheduled_for=when)
        result = unrecorded_result(run, chain, when)
        if result.success:
            log.warning("post %s published by %s but not recorded", post_id, result.provider)
        return result

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
            with self._conn() as conn:
                campaign = campaigns.get_campaign(conn, campaign_id)
                batch = campaigns.get_batch(conn, campaign_id, batch_number) if campaign else None
        except (InvalidInput, NotFound) as exc:
            return PostResult(success=False, error=str(exc))
        except (DbError, psycopg.Error) as exc:
            message = self._db_error("publish_batch", exc)
            return PostResult(
                success=False, error=f"cannot read campaign {campaign_id}: {message}"
            )
        if campaign is None or batch is None:
            return PostResult(success=False, error=f"campaign_id: no campaign {campaign_id}")
        if uuid_or_none(user_id) != uuid_or_none(campaign["user_id"]):
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
            campaign_id=str(campaign["id"]),
            batch_number=batch.batch_number,
        )


def _without_user(
    exc: InvalidRequest, raw: dict[str, Any], post_id: uuid.UUID
) -> PublishInput | None:
    """The request checked with a stand-in user, when a non-UUID user id is its only fault."""
    if set(exc.fields) != {"user_id"} or not isinstance(raw["user_id"], str):
        return None
    if not raw["user_id"].strip():
        return None
    try:
        return check_publish_input(**{**raw, "user_id": NIL_USER}, post_id=str(post_id))
    except InvalidRequest:
        return None
