"""Per-(user, provider) API keys, encrypted at rest in user_social_credentials.

Plain keys exist only in memory, inside a Credential whose repr hides them.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from psycopg_pool import ConnectionPool

from db import validate
from db.errors import InvalidInput, VaultError
from db.pool import Conn, get_pool
from db.vault import Vault


@dataclass(frozen=True)
class Credential:
    """A decrypted credential; never print api_key (repr hides it)."""

    user_id: uuid.UUID
    provider: str
    api_key: str = field(repr=False)
    connected_platforms: list[str] | None
    updated_at: datetime | None
    invalid_at: datetime | None = None
    invalid_reason: str | None = None

    def __repr__(self) -> str:
        return (
            f"Credential(user_id={self.user_id}, provider={self.provider!r}, api_key=<hidden>, "
            f"connected_platforms={self.connected_platforms!r}, "
            f"invalid={self.invalid_at is not None})"
        )

    __str__ = __repr__

    @property
    def valid(self) -> bool:
        return self.invalid_at is None


@dataclass(frozen=True)
class CredentialInfo:
    """What may be shown about a stored credential: everything but the key."""

    user_id: uuid.UUID
    provider: str
    connected_platforms: list[str] | None
    updated_at: datetime | None
    created_at: datetime | None
    invalid_at: datetime | None
    invalid_reason: str | None


def save_credentials(
    conn: Conn,
    vault: Vault,
    user_id: uuid.UUID | str,
    provider: str,
    api_key: str,
    connected_platforms: list[str] | None = None,
) -> None:
    """Insert or replace the key; a new key is presumed good, so invalid_at is cleared."""
    uid = validate.as_uuid(user_id, "user_id")
    prov = validate.provider(provider)
    if not isinstance(api_key, str) or not api_key.strip():
        raise InvalidInput("api_key", "must be a non-empty string")
    platforms = (
        None if connected_platforms is None
        else validate.platforms(connected_platforms, "connected_platforms", allow_empty=True)
    )
    token = vault.encrypt(api_key.strip())
    conn.execute(
        """INSERT INTO user_social_credentials
               (user_id, provider, encrypted_api_key, connected_platforms, updated_at)
           VALUES (%s, %s, %s, %s, now())
           ON CONFLICT (user_id, provider) DO UPDATE SET
               encrypted_api_key = EXCLUDED.encrypted_api_key,
               connected_platforms = COALESCE(EXCLUDED.connected_platforms,
                                              user_social_credentials.connected_platforms),
               updated_at = now(), invalid_at = NULL, invalid_reason = NULL""",
        (uid, prov, token, platforms),
    )


def get_credentials(
    conn: Conn, vault: Vault, user_id: uuid.UUID | str, provider: str
) -> Credential | None:
    """The decrypted credential, or None when the user has none for that provider."""
    uid = validate.as_uuid(user_id, "user_id")
    prov = validate.provider(provider)
    row = conn.execute(
        """SELECT user_id, provider, encrypted_api_key, connected_platforms, updated_at,
                  invalid_at, invalid_reason
           FROM user_social_credentials WHERE user_id = %s AND provider = %s""",
        (uid, prov),
    ).fetchone()
    if row is None:
        return None
    try:
        key = vault.decrypt(row["encrypted_api_key"])
    except VaultError as exc:
        raise VaultError(f"{exc} [user {uid}, provider {prov}]") from None
    return Credential(
        user_id=row["user_id"], provider=row["provider"], api_key=key,
        connected_platforms=row["connected_platforms"], updated_at=row["updated_at"],
        invalid_at=row["invalid_at"], invalid_reason=row["invalid_reason"],
    )


def list_credentials(conn: Conn, user_id: uuid.UUID | str | None = None) -> list[CredentialInfo]:
    """Stored credentials without decrypting anything."""
    query = """SELECT user_id, provider, connected_platforms, updated_at, created_at,
                      invalid_at, invalid_reason
               FROM user_social_credentials"""
    params: tuple[Any, ...] = ()
    if user_id is not None:
        query += " WHERE user_id = %s"
        params = (validate.as_uuid(user_id, "user_id"),)
    rows = conn.execute(query + " ORDER BY user_id, provider", params).fetchall()
    return [CredentialInfo(**r) for r in rows]


def delete_credentials(conn: Conn, user_id: uuid.UUID | str, provider: str) -> bool:
    """True when a row was deleted."""
    uid = validate.as_uuid(user_id, "user_id")
    prov = validate.provider(provider)
    cur = conn.execute(
        "DELETE FROM user_social_credentials WHERE user_id = %s AND provider = %s", (uid, prov)
    )
    return cur.rowcount > 0


def mark_invalid(conn: Conn, user_id: uuid.UUID | str, provider: str, reason: str) -> bool:
    """Remember that the provider rejected this key (a 401, or a 403 saying the key is
    bad) so failover skips it; a later refresh that finds the key working clears it."""
    uid = validate.as_uuid(user_id, "user_id")
    prov = validate.provider(provider)
    cur = conn.execute(
        """UPDATE user_social_credentials SET invalid_at = now(), invalid_reason = %s
           WHERE user_id = %s AND provider = %s""",
        ((reason or "rejected")[:500], uid, prov),
    )
    return cur.rowcount > 0


def set_connected_platforms(
    conn: Conn, user_id: uuid.UUID | str, provider: str, platforms: list[str]
) -> bool:
    """Replace connected_platforms after an account-list refresh. The key answered, so
    an earlier refusal no longer holds: the invalid mark is cleared too."""
    uid = validate.as_uuid(user_id, "user_id")
    prov = validate.provider(provider)
    names = validate.platforms(platforms, "platforms", allow_empty=True)
    cur = conn.execute(
        """UPDATE user_social_credentials SET connected_platforms = %s, updated_at = now(),
                  invalid_at = NULL, invalid_reason = NULL
           WHERE user_id = %s AND provider = %s""",
        (names, uid, prov),
    )
    return cur.rowcount > 0


Key = tuple[uuid.UUID, str]  # (user_id, provider): the table's primary key, its order


def page_ends(conn: Conn, size: int) -> list[Key]:
    """The key ending each full page of `size` credentials, in (user_id, provider) order:
    page n is (ends[n-1], ends[n]], the last one open-ended. One pass over the primary
    key's index, no key decrypted, so a fan-out can hand the pages out at once."""
    rows = conn.execute(
        """SELECT user_id, provider FROM (
               SELECT user_id, provider,
                      row_number() OVER (ORDER BY user_id, provider) AS n
               FROM user_social_credentials) k
           WHERE n %% %s = 0 ORDER BY user_id, provider""",
        (validate.positive_int(size, "size", 100_000),),
    ).fetchall()
    return [(r["user_id"], r["provider"]) for r in rows]


def encrypted_page(
    conn: Conn, *, after: Key | None = None, through: Key | None = None,
    user_id: uuid.UUID | str | None = None,
) -> list[dict[str, Any]]:
    """(user_id, provider, encrypted_api_key) of the credentials after `after` and up to
    `through` (open ends when None), or of one user: one statement for a whole page."""
    uid = validate.as_uuid(user_id, "user_id") if user_id is not None else None
    lo = (validate.as_uuid(after[0], "after"), validate.provider(after[1])) if after else None
    hi = (validate.as_uuid(through[0], "through"), validate.provider(through[1])) \
        if through else None
    return conn.execute(
        """SELECT user_id, provider, encrypted_api_key FROM user_social_credentials
           WHERE (%(uid)s::uuid IS NULL OR user_id = %(uid)s::uuid)
             AND (%(lo_u)s::uuid IS NULL OR (user_id, provider) > (%(lo_u)s::uuid, %(lo_p)s))
             AND (%(hi_u)s::uuid IS NULL OR (user_id, provider) <= (%(hi_u)s::uuid, %(hi_p)s))
           ORDER BY user_id, provider""",
        {"uid": uid, "lo_u": lo[0] if lo else None, "lo_p": lo[1] if lo else None,
         "hi_u": hi[0] if hi else None, "hi_p": hi[1] if hi else None},
    ).fetchall()


Progress = Callable[[int, int], None]


def rotate_all(
    dsn_or_pool: str | ConnectionPool[Conn] | None,
    vault: Vault,
    batch_size: int = 500,
    progress: Progress | None = None,
) -> int:
    """Re-encrypt every stored key with the vault's first key; return how many changed.

    Walks the table in primary-key order, one transaction per batch with the rows
    locked, so an interrupted run keeps what it committed and a rerun skips rows
    already on the first key. `progress(scanned, rotated)` is called after each batch.
    """
    validate.positive_int(batch_size, "batch_size", 100_000)
    pool = dsn_or_pool if isinstance(dsn_or_pool, ConnectionPool) else get_pool(dsn_or_pool)
    last: tuple[uuid.UUID, str] | None = None
    scanned = rotated = 0
    while True:
        with pool.connection() as conn, conn.transaction():
            if last is None:
                rows = conn.execute(
                    """SELECT user_id, provider, encrypted_api_key FROM user_social_credentials
                       ORDER BY user_id, provider LIMIT %s FOR UPDATE""",
                    (batch_size,),
                ).fetchall()
            else:
                rows = conn.execute(
                    """SELECT user_id, provider, encrypted_api_key FROM user_social_credentials
                       WHERE (user_id, provider) > (%s, %s)
                       ORDER BY user_id, provider LIMIT %s FOR UPDATE""",
                    (last[0], last[1], batch_size),
                ).fetchall()
            if not rows:
                break
            changes: list[tuple[str, uuid.UUID, str]] = []
            for r in rows:
                token = r["encrypted_api_key"]
                if vault.is_current(token):
                    continue
                try:
                    changes.append((vault.rotate_token(token), r["user_id"], r["provider"]))
                except VaultError as exc:
                    where = f"[user {r['user_id']}, provider {r['provider']}]"
                    raise VaultError(f"{exc} {where}") from None
            if changes:
                with conn.cursor() as cur:
                    cur.executemany(
                        """UPDATE user_social_credentials SET encrypted_api_key = %s
                           WHERE user_id = %s AND provider = %s""",
                        changes,
                    )
            scanned += len(rows)
            rotated += len(changes)
            last = (rows[-1]["user_id"], rows[-1]["provider"])
        if progress is not None:
            progress(scanned, rotated)
        if len(rows) < batch_size:
            break
    return rotated
