"""Operators' view and other services' door: a real Flower process in front of a real
worker. A service that knows only Flower's URL and credentials enqueues over HTTP."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from cryptography.fernet import Fernet

from tests.stack import Stack, wait_for

AUTH = ("ops", "s3cret-" + uuid.uuid4().hex[:6])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def flower(
    database_url: str, redis_url: str, sandbox_server: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    os.environ.setdefault("ENCRYPTION_KEY", Fernet.generate_key().decode())
    stack = Stack.create(
        tmp_path_factory.mktemp("flower"),
        {"DATABASE_URL": database_url, "REDIS_URL": redis_url},
    )
    port = _free_port()
    try:
        stack.worker(concurrency=2)
        stack.beat()  # its sweep confirms what PostForMe accepted
        stack.flower(port, f"{AUTH[0]}:{AUTH[1]}")
        url = f"http://127.0.0.1:{port}"
        wait_for(lambda: requests.get(url, timeout=2).status_code in (200, 401), 20, "flower")
        yield url
    finally:
        stack.stop()


def test_another_service_enqueues_over_flower_http_and_the_post_is_posted(
    flower: str, sandbox: Any
) -> None:
    from db import credentials, posts
    from db.pool import connect
    from db.vault import Vault

    user, key = str(uuid.uuid4()), "user-pfm-" + uuid.uuid4().hex
    sandbox.register_key("postforme", key, ["twitter", "bluesky"])
    with connect() as conn:
        credentials.save_credentials(conn, Vault.from_env(), user, "postforme", key)
    post_id = str(uuid.uuid4())

    body = {"kwargs": {"user_id": user, "content": "via Flower's HTTP API",
                       "platforms": ["twitter", "bluesky"], "post_id": post_id}}
    refused = requests.post(f"{flower}/api/task/async-apply/social.publish_post",
                            json=body, timeout=10)
    assert refused.status_code == 401  # no credentials, no enqueue
    answer = requests.post(f"{flower}/api/task/async-apply/social.publish_post",
                           json=body, auth=AUTH, timeout=10)
    assert answer.status_code == 200, answer.text
    task_id = answer.json()["task-id"]

    def final() -> dict[str, Any] | None:
        with connect() as conn:
            row = posts.get_post(conn, post_id)
        return row if row and row["status"] not in ("queued", "publishing") else None

    post = wait_for(final, 30, "the post to be final")
    assert post["status"] == "posted"
    assert sandbox.stats()["postforme"]["by_external_id"] == {f"{post_id}-s0": 1}

    # Flower shows the task by its readable name, with arguments free of secrets.
    def listed() -> dict[str, Any] | None:
        tasks = requests.get(f"{flower}/api/tasks", auth=AUTH, timeout=10).json()
        return tasks.get(task_id)

    shown = wait_for(listed, 20, "the task in Flower")
    assert shown["name"] == "social.publish_post"
    assert key not in str(shown)
    result = requests.get(f"{flower}/api/task/result/{task_id}", auth=AUTH, timeout=10).json()
    assert result["result"] == {"post_id": post_id, "status": "queued"}


def test_flower_sees_what_producers_send_and_what_workers_take(
        flower: str, sandbox: Any, redis_url: str) -> None:
    """A producer's message is announced when sent (`task-sent`: a post waiting in the
    queue shows in Flower); a worker's own sends (here the release of a scheduled post)
    are seen from their receipt, without a `task-sent` that cost more than the message."""
    import threading
    from datetime import UTC, datetime, timedelta

    from tests.workers import client, user_with_key, wait_final
    from worker.celery_app import app

    app.conf.broker_url = app.conf.result_backend = redis_url
    seen: list[tuple[str, str | None]] = []
    stop = threading.Event()

    def listen() -> None:
        with app.connection_for_read() as conn:
            receiver = app.events.Receiver(conn, handlers={
                "*": lambda e: seen.append((e["type"], e.get("name")))})
            while not stop.is_set():
                try:
                    receiver.capture(limit=None, timeout=0.5, wakeup=False)
                except TimeoutError:
                    continue

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    try:
        wait_for(lambda: seen, 20, "the workers' events")  # heartbeats at least
        user = user_with_key(sandbox, "postforme", ["twitter"])
        post_id = client().enqueue_post(user, "released by beat", ["twitter"],
                                        scheduled_for=datetime.now(UTC) + timedelta(seconds=2))
        assert wait_final(post_id, 30)["status"] == "posted"
        wait_for(lambda: ("task-succeeded", None) in seen
                 and ("task-received", "social.deliver") in seen, 20, "the delivery's events")
    finally:
        stop.set()
        listener.join(5)
    assert ("task-sent", "social.publish_post") in seen  # the producer announced its own
    assert ("task-sent", "social.deliver") not in seen  # the release did not
