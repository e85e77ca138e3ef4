"""The seed's synchronous API: `SocialPostingService`, `PostForMeProvider`, `LateProvider`.

Scripts written against the seed keep working: `from social_posting_service import ...`.
Underneath, the service drives the same ledger and delivery engine as the Celery workers
(tasks.intake, tasks.delivery), so a post made here is claimed, retried, failed over and
recorded exactly as a worker would do it, and shows in the same history. A post with a
future `scheduled_for` is handed to the provider's own scheduler, as the seed does.

Every method answers with a result and never raises (the seed's error table): bad input
and provider errors come back as `PostResult(success=False, error=...)`; when the
database cannot record a post, it is published straight through the credential chain
and the failure to record is logged. API keys never appear in a result or a log line
(`get_credentials` is the one method that returns a key, decrypted, as the seed's does).
"""

from __future__ import annotations

import functools
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from typing import Any, ParamSpec, TypeVar, cast

import psycopg
from psycopg.conninfo import make_conninfo

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
from providers.base import HttpProvider, post_result_from
from providers.errors import ProviderCallError
from providers.outcomes import OutcomeKind, PublishOutcome, PublishRequest
from providers.redact import clean_error
from tasks import accounts as account_tasks
from tasks import intake, results
from tasks.chain import Step, build_chain, idempotency_key
from tasks.decisions import Action, Decision, Policy, decide
from tasks.delivery import (
    AttemptResult,
    decrypt_keys,
    lease_seconds,
    provider_for,
    run_attempt,
    run_claimed,
    vault,
)
from tasks.planning import NO_CREDENTIALS, plan
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

log = logging.getLogger("socialpost.service")

SYNC_MAX_WAIT_ENV = "SOCIALPOST_SYNC_MAX_WAIT"  # seconds create_post may wait on retries
RESULTS_WAIT_ENV = "SOCIALPOST_SYNC_RESULTS_WAIT"  # seconds to wait for PostForMe's ids
FINAL = frozenset({"posted", "partial", "failed", "unconfirmed", "cancelled"})
IN_FLIGHT = frozenset({"queued", "publishing"})
POLL_SECONDS = 0.5
NIL_USER = uuid.UUID(int=0)  # stands in for a non-UUID user id while the rest is checked
NO_ACCOUNT_NOTE = "no connected account"  # in every trail entry of such a target

P = ParamSpec("P")
R = TypeVar("R")


# -- small helpers ------------------------------------------------------------------------


def _seconds(name: str, default: float) -> float:
    """A non-negative number of seconds from the environment, else `default` (logged)."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value >= 0:
        log.warning("%s=%r is not a number of seconds; using %s", name, raw, default)
        return default
    return value


def _clean(exc: BaseException | str, secrets: tuple[str | None, ...] = ()) -> str:
    """One redacted line for a log or an error field."""
    text = exc if isinstance(exc, str) else f"{type(exc).__name__}: {exc}"
    return clean_error(text, secrets)


def _jsonable(value: Any) -> Any:
    """Rows as plain JSON types: ids and times become strings."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def _uuid_or_none(value: object) -> uuid.UUID | None:
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


def _provider_name(value: object) -> str:
    """'PostForMe' / 'LATE' (the seed's display names) as the stored 'postforme' / 'late'."""
    return value.strip().lower() if isinstance(value, str) else repr(value)


def _owner() -> str:
    """A lease owner unique to one call, so the ledger can tell it from every worker."""
    return f"service-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:12]}"


def _never_raises(fallback: Callable[[str], Any]) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """The seed promises structured results: an unexpected error is logged (redacted) and
    turned into `fallback(message)` instead of reaching the caller."""

    def wrap(fn: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(fn)
        def inner(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                return fn(*args, **kwargs)
            except Exception as exc:
                message = _clean(exc)
                log.error("%s failed: %s", fn.__name__, message)
                log.debug("%s traceback", fn.__name__, exc_info=True)
                return cast(R, fallback(message))

        return inner

    return wrap


def _failed(message: str) -> PostResult:
    return PostResult(success=False, error=f"internal error: {message}")


def dsn_of(db: object) -> str | None:
    """A DSN for what the caller holds: a DSN string, a psycopg connection (its DSN plus
    password) or a psycopg_pool pool (its conninfo). None means DATABASE_URL. We never
    use the caller's connection itself: our pooled access needs its own connections."""
    if db is None:
        return None
    if isinstance(db, str):
        return db.strip()
    conninfo = getattr(db, "conninfo", None)  # ConnectionPool / AsyncConnectionPool
    if isinstance(conninfo, str):
        kwargs = getattr(db, "kwargs", None) or {}
        keys = ("user", "password", "dbname", "host", "port")
        extra = {k: kwargs[k] for k in keys if kwargs.get(k)}
        return make_conninfo(conninfo, **extra)
    info = getattr(db, "info", None)  # Connection / AsyncConnection
    dsn = getattr(info, "dsn", None)
    if isinstance(dsn, str):
        return make_conninfo(dsn, password=getattr(info, "password", None) or None)
    raise TypeError(
        f"unsupported database handle {type(db).__name__}: pass a PostgreSQL DSN, "
        "a psycopg connection or a psycopg_pool pool"
    )


# -- walking the chain without the delivery engine ----------------------------------------


@dataclass(frozen=True)
class _Walk:
    """Where a direct walk of the credential chain ended."""

    accepted: bool = False
    outcome: PublishOutcome | None = None  # the accepted answer, else the last one
    step: Step | None = None
    request: PublishRequest | None = None
    attempts: int = 0  # on `step`
    unknown: bool = False  # sent, answer lost and never found: nothing else may be sent
    trail: tuple[str, ...] = ()

    @property
    def error(self) -> str:
        return " | ".join(self.trail) or "not published"


def _request(data: PublishInput, post_id: str, step: Step) -> PublishRequest:
    """The create call for `step`; its idempotency key is the one the workers would use."""
    return PublishRequest(
        content=data.content,
        platforms=data.platforms,
        media_urls=data.media_urls,
        scheduled_for=data.scheduled_for if not data.due_now() else None,
        idempotency_key=idempotency_key(post_id, step.index),
        platform_options=data.platform_options,
    )


def _send(client: HttpProvider, request: PublishRequest, reconciling: bool) -> PublishOutcome:
    """Look the post up first when an earlier send may have landed; otherwise send."""
    if reconciling and request.idempotency_key:
        try:
            found = client.find_post(request.idempotency_key)
        except ProviderCallError as exc:
            return replace(exc.outcome, kind=OutcomeKind.AMBIGUOUS)
        if found is not None:
            return found
    return client.publish(request)


def _adopted(outcome: PublishOutcome, reconciling: bool) -> PublishOutcome | None:
    """The accepted post, including our own earlier create that LATE reports as a 409."""
    if outcome.kind is OutcomeKind.PUBLISHED:
        return outcome
    if outcome.kind is OutcomeKind.DUPLICATE and reconciling and outcome.existing_post_id:
        return replace(
            outcome, kind=OutcomeKind.PUBLISHED, provider_post_id=outcome.existing_post_id
        )
    return None


Note = Callable[[Step, PublishRequest, PublishOutcome], None]


def _walk(
    chain: list[Step],
    make_request: Callable[[Step], PublishRequest],
    deadline: float,
    policy: Policy,
    keep: Callable[[], bool],
    note: Note,
) -> _Walk:
    """DESIGN.md's outcome table over the chain in one call: retry a step while the
    deadline allows, fall over otherwise, and never send past an unknown outcome.
    `keep()` is asked before every send; `note` hears every attempt but the accepted one."""
    trail: list[str] = []
    last: PublishOutcome | None = None
    for step in chain:
        client, request = provider_for(step), make_request(step)
        attempts, reconciling = 0, False
        while True:
            if not keep():
                trail.append(f"{step.label}: not sent (the post could not be held in the ledger)")
                return _Walk(outcome=last, trail=tuple(trail))
            outcome = _send(client, request, reconciling)
            attempts += 1
            accepted = _adopted(outcome, reconciling)
            if accepted is not None:
                return _Walk(True, accepted, step, request, attempts, trail=tuple(trail))
            note(step, request, outcome)
            last = outcome
            decision = decide(outcome, attempts, policy)
            action = decision.action
            if action in (Action.RETRY, Action.RECONCILE) and (
                time.monotonic() + decision.countdown < deadline
            ):
                reconciling = reconciling or action is Action.RECONCILE
                time.sleep(decision.countdown)
                continue
            if action in (Action.RECONCILE, Action.UNCONFIRMED):
                trail.append(f"{step.label}: outcome unknown: {decision.reason}")
                return _Walk(False, outcome, step, request, attempts, True, tuple(trail))
            trail.append(f"{step.label}: {decision.reason}")
            if action is Action.RECORD:  # the same content is already there: do not double it
                return _Walk(outcome=outcome, trail=tuple(trail))
            break  # fall over (a DEFER too: a synchronous caller cannot wait that long)
    return _Walk(outcome=last, trail=tuple(trail))


def _attempt_row(step: Step, request: PublishRequest, outcome: PublishOutcome) -> ledger.AttemptRow:
    return ledger.AttemptRow(
        step=step.index,
        provider=step.provider,
        credential_source=step.source,
        platforms=list(request.platforms),
        idempotency_key=request.idempotency_key,
        http_status=outcome.http_status,
        latency_ms=int(outcome.latency_ms),
        outcome=outcome.kind.value,
        error=outcome.error,
        provider_post_id=outcome.provider_post_id or outcome.existing_post_id,
    )


# -- rows to results ------------------------------------------------------------------------


def _missing_accounts(targets: list[dict[str, Any]]) -> list[str]:
    """Platforms that failed only because no step had an account for them."""
    missing = []
    for t in targets:
        trail = [part.strip() for part in (t.get("error") or "").split(" | ") if part.strip()]
        if t["status"] == "failed" and trail and all(NO_ACCOUNT_NOTE in p.lower() for p in trail):
            missing.append(t["platform"])
    return missing


def _result_from_row(row: dict[str, Any]) -> PostResult:
    """The seed's PostResult for a recorded post: post_id is the provider's post id."""
    status = row["status"]
    error = row.get("error_message")
    missing = _missing_accounts(row.get("targets") or [])
    if missing:
        note = f"No connected accounts for: {missing}"
        error = f"{note} ({error})" if error else note
    if status not in FINAL:
        error = (
            f"Post {row['id']} is still retrying (status {status}); a worker resumes it, "
            f"see get_post('{row['id']}')"
        )
    provider = row.get("provider")
    if provider is None and row.get("attempts"):
        last = row["attempts"][-1].get("provider")
        provider = {"postforme": "PostForMe", "late": "LATE"}.get(last, last)
    return PostResult(
        success=status in ("posted", "partial"),
        post_id=row.get("provider_post_id"),
        platform_post_ids=row.get("platform_post_ids") or None,
        platform_post_urls=row.get("platform_post_urls") or None,
        error=error,
        provider=provider,
        scheduled_for=row.get("scheduled_for"),
    )


# -- the service ------------------------------------------------------------------------------


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
            log.error("init: %s; using DATABASE_URL", _clean(str(exc)))
            self._dsn = None

    @contextmanager
    def _conn(self) -> Iterator[Conn]:
        with connection(self._dsn) as conn:
            yield conn

    def _db_error(self, what: str, exc: BaseException) -> str:
        message = _clean(exc)
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
            log.error("save_credentials(%s, %s): %s", user_id, provider, _clean(exc, (secret,)))
            return False

    @_never_raises(lambda _: None)
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
            "updated_at": _jsonable(cred.updated_at),
            "valid": cred.valid,
            "invalid_reason": cred.invalid_reason,
        }

    @_never_raises(lambda _: False)
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
        uid = _uuid_or_none(user_id)
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
    @_never_raises(lambda _: None)
    def get_oauth_url(self, user_id: str, platform: str, redirect_url: str) -> str | None:
        """Where the user connects `platform`: PostForMe with the user's key, else the
        global one (LATE only when no PostForMe key exists). None on failure (logged)."""
        chain = sorted(self._chain(user_id), key=lambda s: (s.provider != "postforme", s.index))
        if not chain:
            log.warning("get_oauth_url: %s", NO_CREDENTIALS)
            return None
        return provider_for(chain[0]).get_oauth_url(platform, redirect_url)

    @_never_raises(lambda _: [])
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

    @_never_raises(lambda m: {"refreshed": 0, "invalid": 0, "errors": 1, "error": m})
    def refresh_connected_platforms(self, user_id: str) -> dict[str, Any]:
        """Re-read each stored credential's accounts into connected_platforms; a rejected
        key is marked invalid. Returns {refreshed, invalid, errors}."""
        uid = _uuid_or_none(user_id)
        if uid is None:
            return {"refreshed": 0, "invalid": 0, "errors": 1, "error": "user_id: must be a UUID"}
        return account_tasks.refresh_all(str(uid), dsn=self._dsn)

    # -- history ----------------------------------------------------------------------
    @_never_raises(lambda _: [])
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
        return [_jsonable(r) for r in rows]

    @_never_raises(lambda _: None)
    def get_post(self, post_id: str) -> dict[str, Any] | None:
        """One post (our id, a UUID) with targets and attempts, or None."""
        try:
            with self._conn() as conn:
                row = posts.get_post(conn, post_id)
        except (DbError, psycopg.Error) as exc:
            self._db_error("get_post", exc)
            return None
        return _jsonable(row) if row is not None else None

    # -- posting ----------------------------------------------------------------------
    @_never_raises(_failed)
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
        """Publish now (through the delivery engine, waiting for its retries up to
        SOCIALPOST_SYNC_MAX_WAIT seconds) or, with a future `scheduled_for`, hand the post
        to the provider's scheduler. `result.post_id` is the provider's post id."""
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
            return self._post_direct(unrecorded, str(post_id))
        if data.due_now():
            return self._publish_now(data, str(post_id))
        return self._hand_over(data, str(post_id))

    def _record_refusal(self, raw: dict[str, Any], post_id: uuid.UUID) -> None:
        """Refused input becomes a failed post in history, as the workers record it."""
        try:
            intake.accept({**raw, "post_id": str(post_id)}, None, lambda _id: None, self._dsn)
        except Exception as exc:
            log.error("post %s: refusal not recorded: %s", post_id, _clean(exc))

    def _publish_now(self, data: PublishInput, post_id: str) -> PostResult:
        owner = _owner()
        held: list[ledger.Claim | str] = []
        first = intake.FirstAttempt(owner=owner, hold=held.append)
        try:
            intake.store(data, uuid.UUID(post_id), lambda _id: None, self._dsn, first)
        except InvalidInput as exc:
            return PostResult(success=False, error=str(exc))
        except (DbError, psycopg.Error) as exc:
            self._db_error(f"post {post_id} not recorded, publishing directly", exc)
            return self._post_direct(data, post_id)
        deadline = time.monotonic() + _seconds(SYNC_MAX_WAIT_ENV, 120.0)
        try:
            return self._drive(post_id, owner, held, deadline)
        except (DbError, psycopg.Error) as exc:
            message = self._db_error(f"post {post_id}", exc)
            # The post is held in the ledger; whoever takes it over looks it up at the
            # provider before any resend, so nothing is sent from here again.
            return PostResult(
                success=False,
                error=f"Database error while publishing post {post_id} ({message}); its "
                "outcome is kept in the ledger and reconciled once the database is back",
            )

    def _drive(
        self, post_id: str, owner: str, held: list[ledger.Claim | str], deadline: float
    ) -> PostResult:
        """Run the engine's attempts until the post is final or the wait runs out."""
        policy = Policy.from_env()
        item = held[0] if held else post_id
        if isinstance(item, ledger.Claim):
            result = run_claimed(item, owner, policy, dsn=self._dsn)
        else:
            result = run_attempt(post_id, owner, policy, dsn=self._dsn)
        while True:
            status = result.status or self._status_of(post_id)
            if status not in IN_FLIGHT:
                break
            wait = (result.countdown or 0.0) if result.status == "queued" else POLL_SECONDS
            if time.monotonic() + wait > deadline:
                break  # still retrying: the row says so, and a worker resumes it
            time.sleep(wait)
            result = run_attempt(post_id, owner, policy, dsn=self._dsn)
        return self._outcome(post_id, result, deadline)

    def _outcome(self, post_id: str, result: AttemptResult, deadline: float) -> PostResult:
        """The recorded post as a PostResult; if it cannot be read back, what the last
        attempt said (the post is recorded: only the read failed)."""
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
        return _result_from_row(row)

    def _status_of(self, post_id: str) -> str | None:
        with self._conn() as conn:
            row = conn.execute(
                "SELECT status FROM social_posts WHERE id = %s", (uuid.UUID(post_id),)
            ).fetchone()
        return row["status"] if row else None

    def _collect(self, post_id: str, deadline: float) -> None:
        """PostForMe tells platform ids a moment after accepting: wait a little for them."""
        until = min(deadline, time.monotonic() + _seconds(RESULTS_WAIT_ENV, 10.0))
        while not results.collect(post_id, dsn=self._dsn):
            if time.monotonic() + POLL_SECONDS > until:
                log.info("post %s: platform ids not known yet; beat's sweep fills them", post_id)
                return
            time.sleep(POLL_SECONDS)

    # -- scheduled: the provider's scheduler holds the post ---------------------------
    def _hand_over(self, data: PublishInput, post_id: str) -> PostResult:
        owner = _owner()
        try:
            with self._conn() as conn:
                new = _new_post(data, post_id)
                claim = ledger.insert_claimed(conn, new, owner, lease_seconds())
        except InvalidInput as exc:
            return PostResult(success=False, error=str(exc), scheduled_for=data.scheduled_for)
        except (DbError, psycopg.Error) as exc:
            self._db_error(f"post {post_id} not recorded, handing it over directly", exc)
            return self._post_direct(data, post_id)
        if claim is None:
            return PostResult(success=False, error=f"post {post_id} already exists")
        chain = build_chain(decrypt_keys(claim.credentials, post_id))
        handoff = _Handoff(self._dsn, claim, owner)
        if not chain:
            handoff.fail(NO_CREDENTIALS)
            return PostResult(success=False, error=NO_CREDENTIALS, scheduled_for=data.scheduled_for)
        deadline = time.monotonic() + _seconds(SYNC_MAX_WAIT_ENV, 120.0)
        walk = _walk(
            chain, lambda s: _request(data, post_id, s), deadline, Policy.from_env(),
            handoff.keep, handoff.note,
        )
        return handoff.finish(walk, chain, data.scheduled_for)

    # -- no ledger: straight through the chain ----------------------------------------
    def _post_direct(self, data: PublishInput, post_id: str) -> PostResult:
        """Publish (or schedule) without recording: the user's keys are unreadable here,
        so only the global credentials can be used."""
        when = None if data.due_now() else data.scheduled_for
        chain = build_chain({})
        if not chain:
            return PostResult(success=False, error=NO_CREDENTIALS, scheduled_for=when)
        deadline = time.monotonic() + _seconds(SYNC_MAX_WAIT_ENV, 120.0)
        walk = _walk(
            chain, lambda s: _request(data, post_id, s), deadline, Policy.from_env(),
            lambda: True, lambda *_: None,
        )
        if not walk.accepted or walk.outcome is None or walk.step is None:
            provider = walk.outcome.provider if walk.outcome else None
            return PostResult(
                success=False, error=walk.error, provider=provider, scheduled_for=when
            )
        log.warning("post %s published by %s but not recorded", post_id, walk.step.label)
        result = post_result_from(walk.outcome, when)
        return _with_platform_ids(walk.step, result) if when is None else result

    # -- campaigns --------------------------------------------------------------------
    @_never_raises(_failed)
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
        if _uuid_or_none(user_id) != _uuid_or_none(campaign["user_id"]):
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


# -- helpers of create_post -----------------------------------------------------------------


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


def _new_post(data: PublishInput, post_id: str) -> posts.NewPost:
    return posts.NewPost(
        id=post_id,
        user_id=data.user_id,
        content=data.content,
        platforms=list(data.platforms),
        media_urls=list(data.media_urls),
        scheduled_for=data.scheduled_for,
        campaign_id=data.campaign_id,
        batch_number=data.batch_number,
        platform_options=data.platform_options or None,
    )


def _with_platform_ids(step: Step, result: PostResult) -> PostResult:
    """PostForMe answers with its own id only; ask once for the platform ids."""
    if step.provider != "postforme" or not result.post_id or result.platform_post_ids:
        return result
    try:
        found = provider_for(step).fetch_results(result.post_id)
    except ProviderCallError as exc:
        log.info("platform ids of %s not readable yet: %s", result.post_id, exc.outcome.error)
        return result
    ids = {p: r.platform_post_id for p, r in found.items() if r.platform_post_id}
    urls = {p: r.platform_post_url for p, r in found.items() if r.platform_post_url}
    return replace(result, platform_post_ids=ids or None, platform_post_urls=urls or None)


class _Handoff:
    """The ledger side of handing a scheduled post to a provider: the post is inserted
    claimed by `owner`; attempts are logged as they happen; the end is one statement."""

    def __init__(self, dsn: str | None, claim: ledger.Claim, owner: str) -> None:
        self.dsn = dsn
        self.claim = claim
        self.owner = owner
        self.post_id = claim.post_id

    def keep(self) -> bool:
        """Renew our lease before a send; no send when the post is no longer ours."""
        try:
            with connection(self.dsn) as conn:
                return posts.extend_lease(conn, self.post_id, self.owner, lease_seconds())
        except (DbError, psycopg.Error) as exc:
            log.error("post %s: lease not renewed: %s", self.post_id, _clean(exc))
            return False

    def note(self, step: Step, request: PublishRequest, outcome: PublishOutcome) -> None:
        """Log a failed attempt; a refused user key is skipped from now on."""
        row = _attempt_row(step, request, outcome)
        try:
            with connection(self.dsn) as conn:
                posts.record_attempt(conn, posts.AttemptRecord(post_id=self.post_id, **vars(row)))
                if outcome.kind is OutcomeKind.CREDENTIAL_REJECTED and step.source == "user":
                    ledger.mark_credential_invalid(
                        conn, self.claim.user_id, step.provider, outcome.error or ""
                    )
        except (DbError, psycopg.Error) as exc:
            log.error("post %s: attempt not recorded: %s", self.post_id, _clean(exc))

    def fail(self, error: str) -> None:
        try:
            with connection(self.dsn) as conn:
                posts.fail_post(conn, self.post_id, error, owner=self.owner)
        except (DbError, psycopg.Error) as exc:
            log.error("post %s: failure not recorded: %s", self.post_id, _clean(exc))

    def finish(self, walk: _Walk, chain: list[Step], when: datetime | None) -> PostResult:
        if walk.accepted and walk.outcome and walk.step and walk.request:
            self._handed(walk.step, walk.request, walk.outcome)
            return post_result_from(walk.outcome, when)
        provider = walk.outcome.provider if walk.outcome else None
        if walk.unknown and walk.outcome and walk.step:
            self._unconfirmed(walk, chain)
        else:
            self.fail(walk.error)
        return PostResult(success=False, error=walk.error, provider=provider, scheduled_for=when)

    def _handed(self, step: Step, request: PublishRequest, outcome: PublishOutcome) -> None:
        try:
            with connection(self.dsn) as conn:
                kept = ledger.hand_to_provider(
                    conn,
                    self.post_id,
                    self.owner,
                    provider=step.provider,
                    provider_post_id=outcome.provider_post_id,
                    credential_source=step.source,
                    attempt=_attempt_row(step, request, outcome),
                )
        except (DbError, psycopg.Error) as exc:
            log.error("post %s: hand-over to %s not recorded: %s", self.post_id, step.label,
                      _clean(exc))
            return
        if not kept:
            log.warning("post %s: lease lost before the hand-over was recorded", self.post_id)

    def _unconfirmed(self, walk: _Walk, chain: list[Step]) -> None:
        """Sent, answer lost, not found: `unconfirmed`, never resent by anyone."""
        assert walk.outcome is not None and walk.step is not None
        outcome_plan = plan(
            targets=self.claim.targets,
            platforms=self.claim.platforms,
            chain=chain,
            step=walk.step,
            step_attempts=walk.attempts,
            outcome=walk.outcome,
            decision=Decision(Action.UNCONFIRMED, reason=walk.error),
            reconciling=True,
        )
        try:
            with connection(self.dsn) as conn:
                ledger.record(conn, self.claim, self.owner, outcome_plan, attempt=None)
        except (DbError, psycopg.Error) as exc:
            log.error("post %s: unknown outcome not recorded: %s", self.post_id, _clean(exc))
