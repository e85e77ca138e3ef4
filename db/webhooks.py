"""Webhook endpoints (their signing secrets encrypted like API keys) and the delivery log.

An endpoint is global (every user's events) or one user's, and takes the event types its
globs match (`post.*`, `post.target.*`; none given: every post event). Its secret
(`whsec_` + 24 random bytes, base64, as Standard Webhooks defines it) is shown once, at
creation, and stored only encrypted (db.vault). Deliveries' own state machine lives in
db.webhook_deliveries.
"""

from __future__ import annotations

import base64
import fnmatch
import re
import secrets
import uuid
from typing import Any

from db import validate
from db.errors import InvalidInput
from db.events import POST_TYPES
from db.pool import Conn
from db.vault import Vault

SECRET_PREFIX = "whsec_"
_GLOB = re.compile(r"^[a-z*][a-z.*]*$")
# Every column but the secret: what listing an endpoint may show.
_PUBLIC = ("id, user_id, url, event_types, created_at, consecutive_failures, failing_since,"
           " last_success_at, disabled_at, disabled_reason")


def new_secret() -> str:
    """A Standard Webhooks signing secret: `whsec_` and 24 random bytes in base64."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(24)).decode("ascii")


def check_event_types(value: object) -> list[str] | None:
    """The endpoint's globs, each matching at least one post event type; None (or an empty
    list) means every post event. InvalidInput naming `event_types` otherwise."""
    if value is None:
        return None
    if isinstance(value, str):
        value = value.split(",")
    if not isinstance(value, list):
        raise InvalidInput("event_types", "must be a list of event types or `post.*` globs")
    globs = []
    for raw in value:
        glob = raw.strip() if isinstance(raw, str) else raw
        if not isinstance(glob, str) or not _GLOB.match(glob):
            raise InvalidInput("event_types", f"{raw!r} is not an event type or glob "
                               "(lower-case letters, dots and `*`, e.g. post.*)")
        if not any(fnmatch.fnmatchcase(t, glob) for t in POST_TYPES):
            raise InvalidInput("event_types", f"{glob!r} matches no event type (known: "
                               f"{', '.join(POST_TYPES)})")
        if glob not in globs:
            globs.append(glob)
    return globs or None


def check_url(url: object) -> str:
    """An endpoint URL: http(s), and a public address unless
    SOCIALPOST_ALLOW_PRIVATE_URLS=1 (the one rule media URLs follow, providers.media)."""
    from providers.media import check_public_url

    if not isinstance(url, str) or not url.strip():
        raise InvalidInput("url", "is required (the endpoint's http(s) URL)")
    problem = check_public_url(url.strip(), "webhook")
    if problem:
        raise InvalidInput("url", problem)
    return url.strip()


def create_endpoint(
    conn: Conn, url: str, *, user_id: uuid.UUID | str | None = None,
    event_types: list[str] | None = None, vault: Vault | None = None,
) -> tuple[dict[str, Any], str]:
    """Store an endpoint; (its row without the secret, the plaintext secret, shown once)."""
    checked_url = check_url(url)
    user = validate.opt_uuid(user_id, "user_id")
    globs = check_event_types(event_types)
    secret = new_secret()
    token = (vault or Vault.from_env()).encrypt(secret)
    row = conn.execute(
        f"""INSERT INTO webhook_endpoints (user_id, url, event_types, encrypted_secret)
            VALUES (%s, %s, %s, %s) RETURNING {_PUBLIC}""",
        (user, checked_url, globs, token),
    ).fetchone()
    if row is None:  # pragma: no cover - an INSERT returns its row or raises
        raise RuntimeError("endpoint not stored")
    return row, secret


def list_endpoints(conn: Conn, *, user_id: uuid.UUID | str | None = None) -> list[dict[str, Any]]:
    """Endpoints (no secrets), oldest first; with `user_id`, that user's and the global
    ones (every endpoint its events go to). Each with its pending delivery count."""
    user = validate.opt_uuid(user_id, "user_id")
    return conn.execute(
        f"""SELECT {_PUBLIC},
                   (SELECT count(*) FROM webhook_deliveries d
                     WHERE d.endpoint_id = w.id AND d.status = 'pending') AS pending
            FROM webhook_endpoints w
            WHERE %(user)s::uuid IS NULL OR w.user_id IS NULL OR w.user_id = %(user)s::uuid
            ORDER BY created_at, id""",
        {"user": user},
    ).fetchall()


def get_endpoint(conn: Conn, endpoint_id: uuid.UUID | str) -> dict[str, Any] | None:
    """One endpoint without its secret, or None."""
    return conn.execute(f"SELECT {_PUBLIC} FROM webhook_endpoints WHERE id = %s",
                        (validate.as_uuid(endpoint_id, "endpoint_id"),)).fetchone()


def remove_endpoint(conn: Conn, endpoint_id: uuid.UUID | str) -> bool:
    """Delete an endpoint with its deliveries and log; False when there was none."""
    cur = conn.execute("DELETE FROM webhook_endpoints WHERE id = %s",
                       (validate.as_uuid(endpoint_id, "endpoint_id"),))
    return cur.rowcount == 1


def enable_endpoint(conn: Conn, endpoint_id: uuid.UUID | str) -> bool:
    """Enable a disabled endpoint again (its failure count starts over; pending
    deliveries resume); False when there is no such endpoint."""
    cur = conn.execute(
        """UPDATE webhook_endpoints SET disabled_at = NULL, disabled_reason = NULL,
                  consecutive_failures = 0, failing_since = NULL
           WHERE id = %s""", (validate.as_uuid(endpoint_id, "endpoint_id"),))
    return cur.rowcount == 1


def list_deliveries(
    conn: Conn, *, endpoint_id: uuid.UUID | str | None = None, failed_only: bool = False,
    limit: int = 50,
) -> list[dict[str, Any]]:
    """The delivery log, newest first: one row per attempt (event, type, endpoint, attempt
    number, ok, HTTP status, latency, the answer's first bytes) and the delivery's state
    now (`delivery_status`, `next_attempt_at`). `failed_only`: attempts that failed."""
    endpoint = validate.opt_uuid(endpoint_id, "endpoint_id")
    return conn.execute(
        """SELECT a.id, a.created_at, a.event_id, e.type, a.endpoint_id, a.attempt, a.ok,
                  a.http_status, a.latency_ms, a.response, d.status AS delivery_status,
                  d.next_attempt_at
           FROM webhook_attempts a
           JOIN webhook_deliveries d ON d.id = a.delivery_id
           JOIN post_events e ON e.id = a.event_id
           WHERE (%(endpoint)s::uuid IS NULL OR a.endpoint_id = %(endpoint)s::uuid)
             AND (NOT %(failed)s OR NOT a.ok)
           ORDER BY a.id DESC LIMIT %(limit)s""",
        {"endpoint": endpoint, "failed": bool(failed_only),
         "limit": validate.positive_int(limit, "limit", 10_000)},
    ).fetchall()


def rotate_secrets(conn: Conn, vault: Vault) -> int:
    """Re-encrypt every endpoint's signing secret with the vault's first key (part of
    `socialpost credentials rotate`: the old ENCRYPTION_KEY may then be dropped); how many
    changed. Endpoints are few: one transaction, rows locked."""
    changed = 0
    with conn.transaction():
        rows = conn.execute(
            "SELECT id, encrypted_secret FROM webhook_endpoints ORDER BY id FOR UPDATE"
        ).fetchall()
        for row in rows:
            if vault.is_current(row["encrypted_secret"]):
                continue
            conn.execute("UPDATE webhook_endpoints SET encrypted_secret = %s WHERE id = %s",
                         (vault.rotate_token(row["encrypted_secret"]), row["id"]))
            changed += 1
    return changed
