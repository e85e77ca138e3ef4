"""Refreshing each stored credential's connected platforms from its provider.

Beat's refresh fans out: `fan_out` hands the credentials out in pages of
SOCIALPOST_REFRESH_PAGE (keyset bounds on (user_id, provider), found in one pass over the
primary key) and each page is one `social.refresh_credentials` task, so no single task
has to outlive a large user table. Account lists are background calls
(`pacing.background()`): they draw from a capped share of each key's rate budget and a
refusal for want of a permit (PACED) leaves that credential for the next refresh.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from typing import Any

from db import credentials as creds
from db.errors import VaultError
from db.pool import connection
from providers import pacing
from providers.errors import ProviderCallError
from providers.outcomes import OutcomeKind
from providers.protocols import AccountLister
from tasks.delivery import client_for, vault

log = logging.getLogger("socialpost.accounts")

Bound = list[str] | None  # [user_id, provider] as JSON carries it; None: open-ended
SendPage = Callable[[Bound, Bound], None]


def _summary() -> dict[str, int]:
    return {"refreshed": 0, "invalid": 0, "paced": 0, "errors": 0}


def fan_out(send_page: SendPage, page_size: int, *, dsn: str | None = None) -> dict[str, Any]:
    """Hand every credential out as pages (after, through]; `send_page` sends one task
    each. Rows added meanwhile fall inside some page's bounds or the open-ended last one."""
    with connection(dsn) as conn:
        ends = creds.page_ends(conn, page_size)
    bounds: list[Bound] = [None, *([str(u), p] for u, p in ends)]
    pages = 0
    for after, through in zip(bounds, [*bounds[1:], None], strict=True):
        send_page(after, through)
        pages += 1
    return {"pages": pages, "page_size": page_size}


def _key(bound: Bound) -> creds.Key | None:
    return (uuid.UUID(bound[0]), bound[1]) if bound else None


def refresh_page(after: Bound, through: Bound, *, dsn: str | None = None) -> dict[str, int]:
    """Refresh the credentials after `after` and up to `through`: one page of the fan-out."""
    with connection(dsn) as conn:
        rows = creds.encrypted_page(conn, after=_key(after), through=_key(through))
    return _refresh_rows(rows, dsn)


def refresh_all(user_id: str | None = None, *, dsn: str | None = None) -> dict[str, Any]:
    """One pass over the credentials (of one user, or all), here and now. A rejected key is
    marked invalid and the pass goes on; a provider that is down, or a key without a
    permit to spare, leaves the row as it was."""
    with connection(dsn) as conn:
        rows = creds.encrypted_page(conn, user_id=user_id)
    return _refresh_rows(rows, dsn)


def _refresh_rows(rows: list[dict[str, Any]], dsn: str | None) -> dict[str, int]:
    summary = _summary()
    for row in rows:
        user_id, provider = row["user_id"], row["provider"]
        try:
            api_key = vault().decrypt(row["encrypted_api_key"])
        except VaultError as exc:
            log.error("credential %s/%s: %s", user_id, provider, exc)
            summary["errors"] += 1
            continue
        summary[refresh_one(client_for(provider, api_key), user_id, provider, dsn)] += 1
    return summary


def refresh_one(client: AccountLister, user_id: Any, provider: str,
                dsn: str | None = None) -> str:
    """Ask one credential's accounts (a background call) and write what that says:
    "refreshed", "invalid" (the key was refused: marked), "paced" (no permit now: left
    for the next refresh) or "errors" (the provider failed: left as it was)."""
    try:
        with pacing.background():
            client.invalidate_accounts()
            accounts = client.accounts()
    except ProviderCallError as exc:
        kind = exc.outcome.kind
        if kind is OutcomeKind.PACED:
            log.info("credential %s/%s: no permit to spare (retry in %s s): next refresh",
                     user_id, provider, exc.outcome.retry_after)
            return "paced"
        log.warning("credential %s/%s: %s", user_id, provider, exc.outcome.error)
        if kind is OutcomeKind.CREDENTIAL_REJECTED:
            with connection(dsn) as conn:
                creds.mark_invalid(conn, user_id, provider, exc.outcome.error or "rejected")
            return "invalid"
        return "errors"
    platforms = sorted({a.platform for a in accounts})
    with connection(dsn) as conn:
        creds.set_connected_platforms(conn, user_id, provider, platforms)
    return "refreshed"
