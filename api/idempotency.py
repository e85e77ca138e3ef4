"""`Idempotency-Key` for POST /v1/posts, scoped to the post's user (as Stripe's are to an
account): a repeat with the same body answers the original status and body, one with
another body is refused with 409, and a request refused as invalid keeps nothing.

Without a `post_id` in the body, the post's id is derived from (user, key), so two
concurrent requests with one key, or a repeat after a crash between storing the post and
storing the answer, write and send one post: the ledger's own "one post id, one request"
does the rest. Keys do not expire: a key names one request for good.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any

from psycopg.types.json import Jsonb

from api.problems import Problem
from db.pool import Conn

KEY_NAMESPACE = uuid.UUID("9d3f5b8e-2c71-4e0a-b6d4-8f1a7c3e5b20")


def request_hash(body: dict[str, Any]) -> str:
    """The same request however its JSON was spelled (key order, explicit nulls)."""
    canonical = json.dumps({k: v for k, v in body.items() if v is not None},
                           sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def post_id_for(user_id: uuid.UUID, key: str) -> uuid.UUID:
    return uuid.uuid5(KEY_NAMESPACE, f"{user_id}:{key}")


def claim(conn: Conn, user_id: uuid.UUID, key: str, digest: str
          ) -> tuple[int, dict[str, Any]] | None:
    """None: go ahead (the key is now this request's). (status, body): the answer the
    first request got, to replay. 409 when the key was used with another body."""
    conn.execute(
        """INSERT INTO api_idempotency_keys (user_id, key, request_hash)
           VALUES (%s, %s, %s) ON CONFLICT (user_id, key) DO NOTHING""",
        (user_id, key, digest))
    row = conn.execute(
        """SELECT request_hash, status_code, response FROM api_idempotency_keys
           WHERE user_id = %s AND key = %s""", (user_id, key)).fetchone()
    if row is None:  # released by a concurrent refused request in between: go ahead
        return None
    if row["request_hash"] != digest:
        raise Problem(409, "idempotency-key-reused",
                      "this Idempotency-Key was used with a different request body; use a "
                      "new key for a new request", title="Idempotency-Key reused",
                      errors=[("Idempotency-Key", "already used with a different body")])
    if row["status_code"] is None:
        return None  # the first request did not finish answering: running again is safe
    return row["status_code"], row["response"]


def store(conn: Conn, user_id: uuid.UUID, key: str, status: int, body: dict[str, Any]) -> None:
    conn.execute(
        """UPDATE api_idempotency_keys SET status_code = %s, response = %s
           WHERE user_id = %s AND key = %s""", (status, Jsonb(body), user_id, key))


def release(conn: Conn, user_id: uuid.UUID, key: str) -> None:
    """A refused request keeps nothing: the key may be used again, fixed."""
    conn.execute(
        """DELETE FROM api_idempotency_keys
           WHERE user_id = %s AND key = %s AND status_code IS NULL""", (user_id, key))
