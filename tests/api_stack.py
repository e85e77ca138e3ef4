"""What the HTTP API's tests share: `socialpost api` as a real process on a free loopback
port (with a real worker and beat when the module wants them), tokens, and a client
that speaks to it over HTTP with `requests`."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
import requests
from cryptography.fernet import Fernet

from tests.stack import Stack, free_port, wait_for
from tests.workers import conn, start_stack


@dataclass
class Api:
    """The served API: its URL, the stack it runs in, and a session per token."""

    url: str
    stack: Stack

    def call(self, method: str, path: str, token: str | None = None,
             **kwargs: Any) -> requests.Response:
        headers = dict(kwargs.pop("headers", {}) or {})
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return requests.request(method, self.url + path, headers=headers, timeout=30,
                                **kwargs)

    def log(self) -> str:
        return next(p.text() for p in self.stack.procs if p.name == "api")


@contextmanager
def start_api(
    tmp_path_factory: pytest.TempPathFactory, database_url: str, redis_url: str,
    env: Mapping[str, str], *, workers: bool = True,
) -> Iterator[Api]:
    """`socialpost api` (and, with `workers`, a worker and beat) on the run's stores."""
    port = free_port()
    if workers:
        with start_stack(tmp_path_factory, database_url, redis_url, env) as stack:
            stack.api(port)
            yield Api(f"http://127.0.0.1:{port}", stack)
        return
    os.environ.setdefault("ENCRYPTION_KEY", Fernet.generate_key().decode())
    stack = Stack.create(tmp_path_factory.mktemp("api"),
                         {"DATABASE_URL": database_url, "REDIS_URL": redis_url, **env})
    try:
        stack.api(port)
        yield Api(f"http://127.0.0.1:{port}", stack)
    finally:
        stack.stop()


def token(*users: str, admin: bool = False) -> str:
    """A new token for these users (or an admin one), as `tokens create` makes them."""
    from db import tokens

    with conn() as c:
        return tokens.create_token(c, f"test-{uuid.uuid4().hex[:6]}", users, admin=admin)[1]


def count_posts(user: str) -> int:
    with conn() as c:
        row = c.execute("SELECT count(*) AS n FROM social_posts WHERE user_id = %s",
                        (user,)).fetchone()
    return int(row["n"])


def wait_status(api: Api, tok: str, post_id: str, statuses: set[str],
                timeout: float = 90) -> dict[str, Any]:
    """Poll GET /v1/posts/{id} (the API, not the database) until its status is one of
    `statuses`."""

    def reached() -> dict[str, Any] | None:
        answer = api.call("GET", f"/v1/posts/{post_id}", tok)
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        return body if body["status"] in statuses else None

    return wait_for(reached, timeout, f"post {post_id} to reach {statuses}", every=0.3)
