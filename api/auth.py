"""Who may do what: `Authorization: Bearer <token>` names a token (db/tokens.py); an admin
token acts for every user and manages tokens and webhooks, a scoped one only for its
users. Reads outside the scope answer 404 (the resource's existence is not told), writes
naming a user outside it 403, and nothing is stored."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import Depends, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.problems import Problem
from db import tokens
from db.pool import connection

# auto_error off: a missing token is our 401 problem document, not the framework's 403.
_bearer = HTTPBearer(auto_error=False, description="a token from `socialpost tokens create`")
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="socialpost"'}
MAX_TOKEN = 200  # ours are 46 characters; a longer string is not worth hashing


def principal(
    creds: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
) -> tokens.Token:
    """The calling token, or 401 (the token itself is never logged nor echoed)."""
    if creds is None or not creds.credentials:
        raise Problem(401, "unauthenticated", "send Authorization: Bearer <token> (create "
                      "one with `socialpost tokens create`)", headers=_CHALLENGE)
    given = creds.credentials
    token = None
    if len(given) <= MAX_TOKEN:
        with connection() as conn:
            token = tokens.find_token(conn, given)
    if token is None:
        raise Problem(401, "unauthenticated", "unknown or revoked token",
                      headers={**_CHALLENGE, "WWW-Authenticate":
                               'Bearer realm="socialpost", error="invalid_token"'})
    return token


Principal = Annotated[tokens.Token, Depends(principal)]


def admin(token: Principal) -> tokens.Token:
    """Only an admin token passes."""
    if not token.admin:
        raise Problem(403, "forbidden", "this needs an admin token")
    return token


Admin = Annotated[tokens.Token, Depends(admin)]


def may_write(token: tokens.Token, user_id: uuid.UUID) -> None:
    """403 when the request names a user outside the token's scope."""
    if not token.may_act_for(user_id):
        raise Problem(403, "forbidden", f"this token may not act for user {user_id}",
                      errors=[("user_id", "outside this token's users")])


def may_read(token: tokens.Token, user_id: uuid.UUID, what: str) -> None:
    """404 when the resource belongs to a user outside the token's scope: to such a token
    another user's post is indistinguishable from no post."""
    if not token.may_act_for(user_id):
        raise Problem(404, "not-found", f"no {what}", title="Not found")


def owned(token: tokens.Token, row: dict[str, Any] | None, what: str) -> dict[str, Any]:
    """The resource `row` when it exists and is one of the token's users', else 404."""
    if row is None:
        raise Problem(404, "not-found", f"no {what}", title="Not found")
    may_read(token, row["user_id"], what)
    return row
