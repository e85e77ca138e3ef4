"""Bearer tokens of the HTTP API: create (the token is returned once), look up, list,
revoke. Only a sha256 digest of each token is stored: the token is 32 random bytes, so
the digest cannot be reversed, and a leaked table grants nothing."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from db import validate
from db.errors import InvalidInput
from db.pool import Conn

TOKEN_PREFIX = "sp_"  # says what a leaked string is (secret scanners match on it)
PREFIX_SHOWN = 10  # characters kept to tell tokens apart in a listing: "sp_" + 7
MAX_NAME = 100
USE_NOTED_EVERY = timedelta(minutes=1)


@dataclass(frozen=True)
class Token:
    """A token's record; never the token itself."""

    id: uuid.UUID
    name: str
    prefix: str
    admin: bool
    user_ids: tuple[uuid.UUID, ...]
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None

    def may_act_for(self, user_id: uuid.UUID) -> bool:
        """An admin token acts for every user; a scoped one for its users only."""
        return self.admin or user_id in self.user_ids


def digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


def _token(row: dict[str, Any]) -> Token:
    return Token(id=row["id"], name=row["name"], prefix=row["prefix"], admin=row["admin"],
                 user_ids=tuple(row["user_ids"] or ()), created_at=row["created_at"],
                 last_used_at=row["last_used_at"], revoked_at=row["revoked_at"])


def create_token(
    conn: Conn, name: str, user_ids: Iterable[uuid.UUID | str] = (), admin: bool = False
) -> tuple[Token, str]:
    """Store a new token; returns (its record, the token). The token is not kept."""
    if not isinstance(name, str) or not name.strip() or len(name.strip()) > MAX_NAME:
        raise InvalidInput("name", f"must be 1 to {MAX_NAME} characters")
    users = sorted({validate.as_uuid(u, "user") for u in user_ids})
    if not admin and not users:
        raise InvalidInput("user", "name at least one user the token acts for, or make it admin")
    if admin and users:
        raise InvalidInput("user", "an admin token acts for every user: give no user")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = conn.execute(
        """INSERT INTO api_tokens (id, name, token_hash, prefix, admin, user_ids)
           VALUES (%s, %s, %s, %s, %s, %s) RETURNING *""",
        (uuid.uuid4(), name.strip(), digest(token), token[:PREFIX_SHOWN], admin, users),
    ).fetchone()
    assert row is not None
    return _token(row), token


def find_token(conn: Conn, token: str) -> Token | None:
    """The live (not revoked) token, or None: one indexed read. Its use is noted at most
    once a minute, so a busy client does not turn every read into a write."""
    row = conn.execute(
        "SELECT * FROM api_tokens WHERE token_hash = %s AND revoked_at IS NULL",
        (digest(token),),
    ).fetchone()
    if row is None:
        return None
    found = _token(row)
    if found.last_used_at is None or found.last_used_at < datetime.now(UTC) - USE_NOTED_EVERY:
        conn.execute("UPDATE api_tokens SET last_used_at = now() WHERE id = %s", (found.id,))
    return found


def list_tokens(conn: Conn, include_revoked: bool = False) -> list[Token]:
    where = "" if include_revoked else "WHERE revoked_at IS NULL"
    rows = conn.execute(f"SELECT * FROM api_tokens {where} ORDER BY created_at, id").fetchall()
    return [_token(r) for r in rows]


def revoke_token(conn: Conn, ident: str) -> Token | None:
    """Revoke by id or by the prefix `tokens list` shows; None when nothing live matches.
    A prefix matching several tokens is refused (naming how many), never a guess."""
    if not isinstance(ident, str) or not ident.strip():
        raise InvalidInput("token", "give a token id or the prefix `tokens list` shows")
    ident = ident.strip()
    try:
        tid: uuid.UUID | None = uuid.UUID(ident)
    except ValueError:
        tid = None
    if tid is not None:
        where, arg = "id = %s", tid
    else:
        where, arg = "prefix = %s", ident  # type: ignore[assignment]
    live = conn.execute(
        f"SELECT id FROM api_tokens WHERE {where} AND revoked_at IS NULL", (arg,)).fetchall()
    if len(live) > 1:
        raise InvalidInput("token", f"{len(live)} tokens start with {ident}: give the id")
    if not live:
        return None
    row = conn.execute(
        "UPDATE api_tokens SET revoked_at = now() WHERE id = %s AND revoked_at IS NULL "
        "RETURNING *", (live[0]["id"],)).fetchone()
    return _token(row) if row else None
