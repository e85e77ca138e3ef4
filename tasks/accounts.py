"""Refreshing each stored credential's connected platforms from its provider."""

from __future__ import annotations

import logging
from typing import Any

from db import credentials as creds
from db.errors import VaultError
from db.pool import connection
from providers.errors import ProviderCallError
from providers.outcomes import OutcomeKind
from providers.protocols import AccountLister
from tasks.delivery import client_for, vault

log = logging.getLogger("socialpost.accounts")


def refresh_all(user_id: str | None = None, *, dsn: str | None = None) -> dict[str, Any]:
    """One pass over the credentials (of one user, or all). A rejected key is marked
    invalid and the pass goes on; a provider that is down leaves the row as it was."""
    summary = {"refreshed": 0, "invalid": 0, "errors": 0}
    with connection(dsn) as conn:
        rows = creds.list_credentials(conn, user_id)
    for info in rows:
        try:
            with connection(dsn) as conn:
                cred = creds.get_credentials(conn, vault(), info.user_id, info.provider)
        except VaultError as exc:
            log.error("credential %s/%s: %s", info.user_id, info.provider, exc)
            summary["errors"] += 1
            continue
        if cred is None:
            continue
        client: AccountLister = client_for(info.provider, cred.api_key)
        try:
            client.invalidate_accounts()
            accounts = client.accounts()
        except ProviderCallError as exc:
            if exc.outcome.kind is OutcomeKind.CREDENTIAL_REJECTED:
                with connection(dsn) as conn:
                    creds.mark_invalid(
                        conn, info.user_id, info.provider, exc.outcome.error or "rejected"
                    )
                summary["invalid"] += 1
            else:
                summary["errors"] += 1
            log.warning("credential %s/%s: %s", info.user_id, info.provider, exc.outcome.error)
            continue
        platforms = sorted({a.platform for a in accounts})
        with connection(dsn) as conn:
            creds.set_connected_platforms(conn, info.user_id, info.provider, platforms)
        summary["refreshed"] += 1
    return summary
