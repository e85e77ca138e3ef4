"""A dead PostForMe in front of LATE, with real workers: once its circuit is open, posts
go to LATE at once (the skip in their attempt log), without a connect timeout each; a
probe after the cool-down closes it when PostForMe is back."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from providers.sandbox import SandboxServer
from tests.stack import Stack, wait_for
from tests.workers import FINAL, conn, creates, save_key, start_stack

POSTS = 30
FAILURES = 3


@pytest.fixture(scope="module")
def box() -> Iterator[SandboxServer]:
    server = SandboxServer(host="127.0.0.1", port=0, separate_ports=True).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, database_url: str, redis_url: str,
          box: SandboxServer) -> Iterator[Stack]:
    env = {
        "POSTFORME_BASE_URL": box.postforme_url,
        "LATE_BASE_URL": box.late_url,
        "POSTFORME_API_KEY": "",
        "LATE_API_KEY": "",
        "SOCIALPOST_CONNECT_TIMEOUT": "2",
        "SOCIALPOST_CIRCUIT_FAILURES": str(FAILURES),
        "SOCIALPOST_CIRCUIT_COOLDOWN": "4",
        "SOCIALPOST_MAX_TRANSIENT_ATTEMPTS": "1",
    }
    with start_stack(tmp_path_factory, database_url, redis_url, env, concurrency=3) as s:
        yield s


def _user(box: SandboxServer) -> str:
    user = str(uuid.uuid4())
    for provider in ("postforme", "late"):
        key = f"user-{provider}-{uuid.uuid4().hex}"
        box.register_key(provider, key, ["linkedin"])
        save_key(user, provider, key)
    return user


def _final(ids: list[str], timeout: float) -> list[dict[str, Any]]:
    def done() -> list[dict[str, Any]] | None:
        with conn() as c:
            rows = c.execute("SELECT id::text, status FROM social_posts WHERE id::text = "
                             "ANY(%s)", (ids,)).fetchall()
        return rows if len(rows) == len(ids) and all(r["status"] in FINAL for r in rows) \
            else None

    return wait_for(done, timeout, "every post final")


def _attempts(ids: list[str]) -> list[dict[str, Any]]:
    with conn() as c:
        return c.execute("""SELECT post_id::text, provider, outcome, error FROM post_attempts
                            WHERE post_id::text = ANY(%s) AND step IS NOT NULL
                            ORDER BY id""", (ids,)).fetchall()


@pytest.mark.parametrize("mode", ["blackhole", "refuse"])
def test_posts_skip_a_dead_primary_once_its_circuit_is_open(stack: Stack, box: SandboxServer,
                                                            mode: str) -> None:
    from tasks.client import PublishClient

    box.set_connection_mode("postforme", mode)
    try:
        user = _user(box)
        start = time.monotonic()
        ids = [PublishClient().enqueue_post(user, f"dead primary {mode} {i}", ["linkedin"])
               for i in range(POSTS)]
        rows = _final(ids, 120)
        took = time.monotonic() - start
    finally:
        box.set_connection_mode("postforme", "serve")
    assert {r["status"] for r in rows} == {"posted"}
    attempts = _attempts(ids)
    # calls that went out to PostForMe (`paced`: held back by the open circuit, not sent)
    tried = [a for a in attempts if a["provider"] == "postforme"
             and a["outcome"] not in ("skipped", "paced")]
    skipped = [a for a in attempts if a["outcome"] == "skipped"]
    # Only the calls made before the circuit opened went out: three failures to open it,
    # and what the three worker slots had started meanwhile (refused connects fail in
    # milliseconds, so a slot may start a second one as the circuit opens): a few, not 30.
    assert len(tried) <= FAILURES + 2 * 3, tried
    assert len(skipped) >= POSTS - len(tried)
    assert all(a["error"].startswith("PostForMe unavailable (circuit open since ")
               for a in skipped)
    for post_id in ids:
        assert len(creates(box, "late", post_id)) == 1
    if mode == "blackhole":
        # a connect timeout (2 s) each would be 30 x 2 s / 3 slots = 20 s at the least
        assert took < 15, took


def test_a_probe_closes_the_circuit_when_the_primary_is_back(stack: Stack,
                                                             box: SandboxServer) -> None:
    from tasks.client import PublishClient

    user = _user(box)
    box.set_connection_mode("postforme", "refuse")
    try:
        first = [PublishClient().enqueue_post(user, f"while down {i}", ["linkedin"])
                 for i in range(6)]
        _final(first, 60)
    finally:
        box.set_connection_mode("postforme", "serve")
    time.sleep(4.5)  # the cool-down passes; the next post's call is the probe
    probe = PublishClient().enqueue_post(user, "the probe", ["linkedin"])
    _final([probe], 30)
    assert len(creates(box, "postforme", probe)) == 1  # it went, and it closed the circuit
    later = [PublishClient().enqueue_post(user, f"back up {i}", ["linkedin"])
             for i in range(3)]
    _final(later, 60)
    assert all(len(creates(box, "postforme", p)) == 1 for p in later)
    assert not any(creates(box, "late", p) for p in later)
