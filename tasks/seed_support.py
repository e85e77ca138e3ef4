"""What the seed's synchronous service (social_posting_service.py) needs besides the
engine: results in the seed's shapes, JSON-ready rows, database handles as DSNs, and the
promise that no method raises.

Kept apart so the service module stays a facade: each method there reads as the seed's
contract plus one call into tasks/ or db/.
"""

from __future__ import annotations

import functools
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import date, datetime
from typing import Any, ParamSpec, TypeVar, cast

import psycopg
from psycopg.conninfo import make_conninfo

import settings
from db import delivery as ledger
from db.credentials import Credential
from db.errors import DbError
from db.pool import Conn, connection
from db.states import FINAL
from providers import PostResult
from providers.errors import ProviderCallError
from providers.redact import clean_error
from tasks.chain import DISPLAY, Step
from tasks.delivery import provider_for
from tasks.in_process import Unrecorded
from tasks.planning import finalize
from tasks.validation import PublishInput

log = logging.getLogger("socialpost.service")

# In every trail entry of such a target: the old note, or providers.ownership's reasons.
NO_ACCOUNT_NOTE = "no connected account"

P = ParamSpec("P")
R = TypeVar("R")


def clean(exc: BaseException | str, secrets: tuple[str | None, ...] = ()) -> str:
    """One redacted line for a log or an error field."""
    text = exc if isinstance(exc, str) else f"{type(exc).__name__}: {exc}"
    return clean_error(text, secrets)


def jsonable(value: Any) -> Any:
    """Rows as plain JSON types: ids and times become strings."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def uuid_or_none(value: object) -> uuid.UUID | None:
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


def never_raises(fallback: Callable[[str], Any]) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """The seed promises structured results: an unexpected error is logged (redacted) and
    turned into `fallback(message)` instead of reaching the caller."""

    def wrap(fn: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(fn)
        def inner(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                return fn(*args, **kwargs)
            except Exception as exc:
                message = clean(exc)
                log.error("%s failed: %s", fn.__name__, message)
                log.debug("%s traceback", fn.__name__, exc_info=True)
                return cast(R, fallback(message))

        return inner

    return wrap


def internal_error(message: str) -> PostResult:
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


def _missing_accounts(targets: list[dict[str, Any]]) -> list[str]:
    """Platforms that failed only because no step had an account for them."""
    missing = []
    for t in targets:
        trail = [part.strip() for part in (t.get("error") or "").split(" | ") if part.strip()]
        notes = (NO_ACCOUNT_NOTE, f"no {t['platform']} account", "is not a connected account")
        if t["status"] == "failed" and trail and all(
            any(n in p.lower() for n in notes) for p in trail
        ):
            missing.append(t["platform"])
    return missing


def result_from_row(row: dict[str, Any]) -> PostResult:
    """The seed's PostResult for a recorded post: post_id is the provider's post id."""
    status = row["status"]
    error = row.get("error_message")
    missing = _missing_accounts(row.get("targets") or [])
    if missing:
        note = f"No connected accounts for: {missing}"
        error = f"{note} ({error})" if error else note
    accepted = [t["platform"] for t in row.get("targets") or [] if t["status"] == "accepted"]
    if status not in FINAL and accepted:
        error = (
            f"Post {row['id']} is accepted but not confirmed yet: {', '.join(accepted)} "
            f"await the platform's answer; see get_post('{row['id']}')"
        )
    elif status not in FINAL:
        error = (
            f"Post {row['id']} is still retrying (status {status}); a worker resumes it, "
            f"see get_post('{row['id']}')"
        )
    provider = row.get("provider")
    if provider is None and row.get("attempts"):
        last = row["attempts"][-1].get("provider")
        provider = DISPLAY.get(last, last)
    return PostResult(
        success=status in ("posted", "partial"),
        post_id=row.get("provider_post_id"),
        platform_post_ids=row.get("platform_post_ids") or None,
        platform_post_urls=row.get("platform_post_urls") or None,
        error=error,
        provider=provider,
        scheduled_for=row.get("scheduled_for"),
    )


def memory_claim(data: PublishInput, post_id: str) -> ledger.Claim:
    """A claim of a post that exists nowhere but here (the database is unreachable)."""
    return ledger.Claim(
        post_id=post_id,
        user_id=str(data.user_id),
        content=data.content,
        platforms=list(data.platforms),
        media_urls=list(data.media_urls),
        platform_options=data.platform_options or None,
        account_ids=dict(data.account_ids),
        overrides=data.overrides or None,
        step=0,
        step_attempts=0,
        needs_reconcile=False,
        targets={p: {"platform": p, "status": "pending", "error": None} for p in data.platforms},
        credentials={},
    )


def unrecorded_result(
    run: Unrecorded, chain: list[Step], when: datetime | None
) -> PostResult:
    """The seed's PostResult for a post the engine ran without the ledger; targets the
    provider accepted are asked about here, a few times, since nothing else will."""
    claim = run.claim
    if run.plan is not None and run.plan.status == "publishing" and when is not None:
        # handed to the provider's scheduler: it publishes at `when`, nothing to ask yet
        first = next(t for t in claim.targets.values() if t["status"] == "accepted")
        return PostResult(success=True, post_id=first.get("provider_post_id"),
                          provider=DISPLAY.get(first.get("provider") or "", None),
                          scheduled_for=when)
    if run.plan is not None and run.plan.status == "publishing":
        claim = confirm_in_memory(claim, chain, settings.current().sync_results_wait)
    targets = [{"platform": p, **claim.targets[p]} for p in claim.platforms]
    waiting = [t for t in targets if t["status"] in ("pending", "accepted")]
    if run.plan is None or (run.plan.status not in FINAL and not
                            (run.plan.status == "publishing" and len(waiting) < len(targets))):
        why = "; ".join(f"{t['platform']}: {t['error']}" for t in targets if t["error"])
        return PostResult(
            success=False, scheduled_for=when,
            error=f"not published (the database is unreachable, so nothing can wait for "
                  f"a retry): {why or 'rate limited'}",
        )
    settled = {p: dict(t) for p, t in claim.targets.items()}
    for t in settled.values():
        if t["status"] in ("pending", "accepted"):
            t.update(status="unconfirmed", error=t.get("error") or
                     "accepted, but the platform had not answered when create_post returned")
    final = finalize(settled, claim.platforms, datetime.now().astimezone())
    result = result_from_row({"id": claim.post_id, **final, "targets": targets})
    return replace(result, scheduled_for=when)


def confirm_in_memory(claim: ledger.Claim, chain: list[Step], seconds: float,
                      every: float = 0.5) -> ledger.Claim:
    """Ask the providers about the claim's accepted targets until they are answered or
    `seconds` pass (the unrecorded path's stand-in for beat's confirmation sweep)."""
    deadline = time.monotonic() + max(0.0, seconds)
    targets = {p: dict(t) for p, t in claim.targets.items()}
    while True:
        waiting = [t for t in targets.values() if t["status"] == "accepted"]
        for target in waiting:
            step = next((s for s in chain if s.provider == target.get("provider")
                         and s.source == target.get("credential_source")), None)
            if step is None or not target.get("provider_post_id"):
                continue
            try:
                found = provider_for(step).fetch_results(target["provider_post_id"])
            except ProviderCallError:
                continue
            result = found.get(target["platform"])
            if result is not None and result.success is True:
                target.update(status="posted", platform_post_id=result.platform_post_id,
                              platform_post_url=result.platform_post_url,
                              published_at=result.published_at)
            elif result is not None and result.success is False:
                target.update(status="failed", error=result.error or "refused by the platform")
        if not any(t["status"] == "accepted" for t in targets.values()):
            break
        if time.monotonic() + every > deadline:
            break
        time.sleep(every)
    return replace(claim, targets=targets)




def provider_name(value: object) -> str:
    """'PostForMe' / 'LATE' (the seed's display names) as the stored 'postforme' / 'late'."""
    return value.strip().lower() if isinstance(value, str) else repr(value)


def lease_owner() -> str:
    """A lease owner unique to one call, so the ledger can tell it from every worker."""
    return f"service-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:12]}"


def credential_dict(cred: Credential) -> dict[str, Any]:
    """The seed's get_credentials answer (the one place a key is returned, decrypted)."""
    return {
        "user_id": str(cred.user_id),
        "provider": cred.provider,
        "api_key": cred.api_key,
        "connected_platforms": cred.connected_platforms,
        "updated_at": jsonable(cred.updated_at),
        "valid": cred.valid,
        "invalid_reason": cred.invalid_reason,
    }


T = TypeVar("T")


def db_error(what: str, exc: BaseException) -> str:
    """Log a database failure of `what` (redacted); the message, for a result's error."""
    message = clean(exc)
    log.error("%s: database error: %s", what, message)
    return message


def read_or(dsn: str | None, what: str, fallback: T, read: Callable[[Conn], T]) -> T:
    """`read(conn)` on a pooled connection to `dsn`; `fallback` (logged) on a database
    error, as the seed's methods answer instead of raising."""
    try:
        with connection(dsn) as conn:
            return read(conn)
    except (DbError, psycopg.Error) as exc:
        db_error(what, exc)
        return fallback
