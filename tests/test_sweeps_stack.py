"""The recovery sweep with real processes: beat and a maintenance-only worker, so delivery
messages pile up in `social.publish` as under a backlog; then a publishing worker.

What is counted is what a backlog would multiply: the messages in the broker's queue and
each post's claims (social_posts.claim_count)."""

from __future__ import annotations

import re
import signal
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from tests.stack import Stack, wait_for
from tests.workers import conn, start_stack, user_with_key, wait_final

QUEUE = "social.publish"
pytestmark = pytest.mark.timeout(150)


@pytest.fixture(scope="module")
def stack(database_url: str, redis_url: str, sandbox_server: Any,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    # TEST_SETTINGS: a post queued 5 s is stalled by its times; the sweep runs every 2 s.
    with start_stack(tmp_path_factory, database_url, redis_url, {},
                     concurrency=2, queues="social.maintenance") as s:
        yield s


@pytest.fixture
def broker(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


def _queued_posts(user: str, n: int) -> list[str]:
    """n due posts, queued a minute ago: by their times alone every one looks lost."""
    from db import posts
    from db.posts import NewPost

    ids = []
    with conn() as c:
        for _ in range(n):
            row, _ = posts.insert_post(c, NewPost(user_id=user, content=f"backlog {uuid.uuid4()}",
                                                  platforms=["twitter"]))
            ids.append(str(row["id"]))
        c.execute("UPDATE social_posts SET queued_at = now() - interval '1 minute'"
                  " WHERE id = ANY(%s::uuid[])", (ids,))
    return ids


def _rows(ids: list[str]) -> dict[str, dict[str, Any]]:
    with conn() as c:
        return {str(r["id"]): r for r in c.execute(
            "SELECT id, status, queued_at, claim_count FROM social_posts"
            " WHERE id = ANY(%s::uuid[])", (ids,))}


def _in_queue(broker: redis.Redis, ids: list[str]) -> list[str]:
    """The post ids of the delivery messages waiting in the queue (one entry per message)."""
    found = []
    for raw in broker.lrange(QUEUE, 0, -1):
        text = raw.decode() if isinstance(raw, bytes) else str(raw)
        found += [p for p in ids if p in text]
    return found


_publishers: dict[int, Any] = {}


def _publishing(stack: Stack) -> None:
    """A worker on the publishing queue, started once per stack (the module's first
    phase runs without one, so that messages wait)."""
    if id(stack) not in _publishers:
        _publishers[id(stack)] = stack.worker(concurrency=2, queues=QUEUE)


def _sweeps(stack: Stack) -> int:
    return len(re.findall(r"Task social\.recover_stalled_posts\[[0-9a-f-]+\] succeeded",
                          stack.logs()))


def _wait_sweeps(stack: Stack, n: int) -> None:
    start = _sweeps(stack)
    wait_for(lambda: _sweeps(stack) >= start + n, 30, f"{n} recovery sweeps")


def test_a_producers_backlog_is_not_resent(
    stack: Stack, sandbox: Any, broker: redis.Redis
) -> None:
    """Posts a producer recorded and sent (`social.publish_post`), waiting in the queue
    longer than the stall time, are not sent a second time by the sweep."""
    from tests.workers import client

    user = user_with_key(sandbox, "postforme", ["twitter"])
    producer = client()
    ids = [producer.enqueue_post(user, f"backlog {uuid.uuid4()}", ["twitter"])
           for _ in range(20)]
    with conn() as c:
        c.execute("UPDATE social_posts SET queued_at = now() - interval '1 minute'"
                  " WHERE id = ANY(%s::uuid[])", (ids,))
    _wait_sweeps(stack, 3)
    waiting = _in_queue(broker, ids)
    assert sorted(waiting) == sorted(ids)  # its publish_post message, and nothing more


def test_a_backlog_is_not_resent_and_a_lost_message_is(
    stack: Stack, sandbox: Any, broker: redis.Redis
) -> None:
    from tasks.publish import send_deliveries

    user = user_with_key(sandbox, "postforme", ["twitter"])
    backlog = _queued_posts(user, 40)
    send_deliveries([(p, None) for p in backlog])  # marked in flight, then sent
    lost = _queued_posts(user, 1)[0]  # queued with no message at all
    ids = [*backlog, lost]
    before = _rows(backlog)

    # The sweep finds the lost post and sends its delivery, once; the backlog, older
    # than the stall time, is left waiting in the queue, sweep after sweep.
    wait_for(lambda: lost in _in_queue(broker, ids), 30, "the lost post resent")
    _wait_sweeps(stack, 3)
    assert sorted(_in_queue(broker, ids)) == sorted(ids)  # one message each, no more
    after = _rows(backlog)
    assert all(after[p]["queued_at"] == before[p]["queued_at"] for p in backlog)

    # The queue is purged: with it empty, every marker naming it is stale, so the sweep
    # resends them (the lost post too, once the queue moves past its marker).
    broker.delete(QUEUE)
    wait_for(lambda: set(backlog) <= set(_in_queue(broker, ids)), 30, "the purged resent")
    _wait_sweeps(stack, 2)
    assert len(_in_queue(broker, ids)) == len(set(_in_queue(broker, ids)))  # one each

    # A publishing worker drains it: each post claimed and published once.
    _publishing(stack)
    for p in ids:
        assert wait_final(p, 60)["status"] == "posted"
    rows = _rows(ids)
    assert {p: rows[p]["claim_count"] for p in ids} == dict.fromkeys(ids, 1)
    made = sandbox.stats()["postforme"]["by_external_id"]
    assert all(made.get(f"{p}-s0") == 1 for p in ids), made


def test_a_worker_taking_a_message_clears_its_marker(
    stack: Stack, sandbox: Any, broker: redis.Redis
) -> None:
    from tasks import inflight
    from tasks.publish import send_deliveries

    _publishing(stack)
    user = user_with_key(sandbox, "postforme", ["twitter"])
    post_id = _queued_posts(user, 1)[0]
    send_deliveries([(post_id, 20.0)])  # a countdown: the worker holds it until then
    # Taken at once (an ETA message waits in the worker, not in the queue): no longer
    # waiting there, so were that worker killed now, the sweep's timing rules resend it.
    wait_for(lambda: broker.get(inflight.key(post_id)) is None, 15, "the marker cleared")
    assert inflight.waiting([post_id]) == {post_id}  # held by that worker, which beats
    assert _rows([post_id])[post_id]["claim_count"] == 0  # not run yet: its countdown
    # Killed, it beats no more: once its heartbeat lapses (the stall time, 5 s here),
    # what it held is not waited for, and the sweep resends it by its timing rules.
    stack.kill(_publishers.pop(id(stack)), signal.SIGKILL)
    wait_for(lambda: inflight.waiting([post_id]) == set()
             or post_id in _in_queue(broker, [post_id]), 30, "the dead worker's post let go")
    wait_for(lambda: post_id in _in_queue(broker, [post_id]), 30, "its delivery resent")
    assert _rows([post_id])[post_id]["claim_count"] == 0


def test_a_burst_a_worker_holds_past_the_stall_time_is_not_resent(
    stack: Stack, sandbox: Any, broker: redis.Redis
) -> None:
    """Thirty posts due at once, released with their ETA: one slow worker takes every
    message at once (an ETA message is not held back by the prefetch limit) and runs
    them for longer than the stall time. Held by a live worker, none is resent."""
    from datetime import UTC, datetime, timedelta

    from tasks import inflight
    from tests.workers import client

    sandbox.set_faults("postforme", latency_ms=300)
    user = user_with_key(sandbox, "postforme", ["twitter"])
    slow = stack.worker(concurrency=1, queues=QUEUE, pool="threads")
    tickets = int(broker.get(inflight.TICKETS + QUEUE) or 0)
    recoveries = stack.logs().count("stalled post(s)")
    due = datetime.now(UTC) + timedelta(seconds=3)
    producer = client()
    ids = [producer.enqueue_post(user, f"burst {i} {uuid.uuid4()}", ["twitter"],
                                 scheduled_for=due) for i in range(30)]
    try:
        for p in ids:  # 30 x 0.3 s: the last is sent about 9 s after its release
            assert wait_final(p, 90)["status"] == "posted"
    finally:
        stack.kill(slow, signal.SIGTERM)
    rows = _rows(ids)
    assert {p: rows[p]["claim_count"] for p in ids} == dict.fromkeys(ids, 1)
    sent = int(broker.get(inflight.TICKETS + QUEUE) or 0) - tickets
    assert sent == 2 * len(ids), sent  # each post's publish_post and one delivery
    assert stack.logs().count("stalled post(s)") == recoveries  # the sweep resent none


def test_a_post_held_when_its_workers_broker_connection_broke_is_published_once(
    stack: Stack, sandbox: Any, broker: redis.Redis, redis_url: str
) -> None:
    """A worker holding an ETA message loses its broker connection (the broker stays up):
    Celery drops what the old connection held, and the post is still published, once.
    (Whether the message comes back by kombu's restore or by the sweep depends on the
    moment; that a new connection starts holding nothing is tests/test_sweeps.py's.)"""
    from urllib.parse import urlsplit

    import psutil

    from tasks import inflight
    from tasks.publish import send_deliveries

    user = user_with_key(sandbox, "postforme", ["twitter"])
    worker = stack.worker(concurrency=1, queues=QUEUE, pool="threads")
    try:
        post_id = _queued_posts(user, 1)[0]
        send_deliveries([(post_id, 30.0)])  # the worker takes it and holds it 30 s
        wait_for(lambda: broker.get(inflight.key(post_id)) is None, 15, "the message taken")
        assert inflight.waiting([post_id]) == {post_id}  # held, while the worker beats

        port = urlsplit(redis_url).port or 6379
        cut = [f"{c.laddr.ip}:{c.laddr.port}"
               for c in psutil.Process(worker.popen.pid).net_connections(kind="tcp")
               if c.raddr and c.raddr.port == port]
        killed = 0
        for addr in cut:  # the worker's own connections only: the broker stays up
            try:
                killed += bool(broker.client_kill(addr))
            except redis.ResponseError:  # "No such client": that one closed meanwhile
                continue
        assert killed
        row = wait_final(post_id, 40)  # restored or resent; sent by the worker
        assert row["status"] == "posted"
        assert _rows([post_id])[post_id]["claim_count"] == 1
    finally:
        stack.kill(worker, signal.SIGTERM)
