"""What the tests that run real `celery worker` / `celery beat` processes share: the stack,
and reading the ledger and the sandbox. Each test module makes its own stack (module
scope) with `start_stack`, so modules can use settings of their own."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import pytest
from cryptography.fernet import Fernet

from tests.stack import Stack, wait_for

FINAL = {"posted", "partial", "failed", "unconfirmed", "cancelled"}


@contextmanager
def start_stack(
    tmp_path_factory: pytest.TempPathFactory, database_url: str, redis_url: str,
    env: Mapping[str, str], *, concurrency: int | None = 3, beat: bool = True,
    queues: str | None = None, pool: str | None = "prefork",
) -> Iterator[Stack]:
    """A worker (and beat) on the run's database and Redis, stopped at the end; the
    worker consumes every queue unless `queues` names some (-Q). pool and concurrency
    None: the shipped defaults (celeryconfig: threads x8)."""
    os.environ.setdefault("ENCRYPTION_KEY", Fernet.generate_key().decode())
    os.environ["REDIS_URL"] = redis_url
    from worker.celery_app import app

    app.conf.broker_url = redis_url
    app.conf.result_backend = redis_url
    s = Stack.create(
        tmp_path_factory.mktemp("stack"),
        {"DATABASE_URL": database_url, "REDIS_URL": redis_url, **env},
    )
    try:
        s.worker(concurrency=concurrency, queues=queues, pool=pool)
        if beat:
            s.beat()
        yield s
    finally:
        s.stop()
        if os.environ.get("SHOW_STACK_LOGS"):
            print(s.logs())
        _retire_leftovers()


def _retire_leftovers() -> None:
    """End whatever this module's posts left in flight (a failed test's), so the next
    module's workers, on the same database, do not go on sending them."""
    with conn() as c:
        c.execute("""UPDATE social_posts SET status = 'failed', lease_owner = NULL,
                            lease_expires_at = NULL, finished_at = now(),
                            error_message = 'left in flight when its test module ended'
                     WHERE status IN ('queued', 'publishing', 'scheduled')""")


def conn() -> Any:
    from db.pool import connect

    return connect()


def save_key(user: str, provider: str, key: str) -> None:
    from db import credentials
    from db.vault import Vault

    with conn() as c:
        credentials.save_credentials(c, Vault.from_env(), user, provider, key)


def post(post_id: str) -> dict[str, Any] | None:
    from db import posts

    with conn() as c:
        return posts.get_post(c, post_id)


def wait_final(post_id: str, timeout: float = 90) -> dict[str, Any]:
    def final() -> dict[str, Any] | None:
        row = post(post_id)
        return row if row and row["status"] in FINAL else None

    return wait_for(final, timeout, f"post {post_id} to be final")


def client() -> Any:
    from tasks.client import PublishClient

    return PublishClient()


def creates(sandbox: Any, provider: str, post_id: str | None = None) -> list[dict[str, Any]]:
    """The create requests the sandbox received from `provider`'s clients (for `post_id`
    only, by our idempotency key `<post id>-s<step>`, when given: other modules' posts
    may still be in flight on the same sandbox)."""
    return [
        r for r in sandbox.requests(provider)
        if r.get("method") == "POST" and str(r.get("path", "")).rstrip("/").endswith("posts")
        and (post_id is None
             or str(r.get("external_id") or r.get("request_id") or "").startswith(post_id))
    ]


def new_user() -> str:
    return str(uuid.uuid4())


def user_with_key(sandbox: Any, provider: str, platforms: list[str] | None = None) -> str:
    """A new user whose own `provider` key the sandbox knows (accounts on `platforms`)."""
    user, key = new_user(), f"user-{provider}-{uuid.uuid4().hex}"
    sandbox.register_key(provider, key, platforms)
    save_key(user, provider, key)
    return user


def calls(row: dict[str, Any]) -> list[str]:
    """The outcomes of a post's provider calls, oldest first (confirmations, which carry
    no credential step, left out)."""
    return [a["outcome"] for a in row["attempts"] if a["step"] is not None]
