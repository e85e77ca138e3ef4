"""The sweeps' own rules, against real Redis and PostgreSQL (no worker processes): the
in-flight markers (tasks.inflight), the recovery sweep's choice between a lost message and
a waiting one (db.delivery.take_stalled), the confirmation sweep's take per provider and
give-back (db.confirmations), its grouping and PACED stop (tasks.confirm, pure), and the
refresh fan-out's pages (tasks.accounts with db.credentials)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
import redis
from cryptography.fernet import Fernet
from psycopg.rows import dict_row

from db import delivery, posts
from db.posts import NewPost
from tasks import inflight
from tests.conftest import ADMIN_DSN, _dsn_for

os.environ.setdefault("ENCRYPTION_KEY", Fernet.generate_key().decode())


def _conn(dsn: str) -> psycopg.Connection[dict[str, Any]]:
    return psycopg.connect(dsn, autocommit=True, row_factory=dict_row)


def _quiet(conn: psycopg.Connection[dict[str, Any]]) -> None:
    """End what earlier tests left queued or publishing in the shared database."""
    conn.execute("UPDATE social_posts SET status = 'failed', lease_owner = NULL"
                 " WHERE status IN ('queued', 'publishing')")


@pytest.fixture
def scratch_db(database_url: str) -> Iterator[str]:
    """A database of this test's own (the refresh walks every credential there is)."""
    from db import migrations

    name = f"sp_sweeps_{uuid.uuid4().hex[:10]}"
    dsn = _dsn_for(name)
    migrations.apply(dsn)
    yield dsn
    from db.pool import close_pools

    close_pools()
    with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def broker(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[redis.Redis]:
    """The run's Redis as the broker the markers live in, and a queue name of our own."""
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.delenv("CELERY_BROKER_URL", raising=False)
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


def _queue() -> str:
    return f"test-queue-{uuid.uuid4().hex[:8]}"


def _queued(conn: psycopg.Connection[dict[str, Any]], n: int, age: str = "1 minute",
            ) -> list[str]:
    """n queued posts that have waited `age`: every one looks stalled by its times."""
    ids = []
    for _ in range(n):
        row, _ = posts.insert_post(conn, NewPost(user_id=uuid.uuid4(), content="hi",
                                                 platforms=["twitter"]))
        ids.append(str(row["id"]))
    conn.execute("UPDATE social_posts SET queued_at = now() - %s::interval"
                 " WHERE id = ANY(%s::uuid[])", (age, ids))
    return ids


# -- the markers ------------------------------------------------------------------------


def _sent(broker: redis.Redis, queue: str, marks: list[tuple[str, str]]) -> list[str]:
    """Mark (post id, task id) messages and push a stand-in for each onto `queue`, as
    send_deliveries does: the headers their messages would carry."""
    headers = inflight.mark([(p, t, queue, 0.0) for p, t in marks])
    broker.lpush(queue, *[f"message {t}" for _, t in marks])
    return [h for h in headers if h]


def _receive(broker: redis.Redis, queue: str, header: str, task_id: str) -> None:
    """What a worker does: pop the oldest message, then the receipt hook."""
    broker.rpop(queue)
    inflight.taken(header, task_id)


def test_a_marker_counts_only_while_its_queue_holds_messages(broker: redis.Redis) -> None:
    queue = _queue()
    waiting, lost, never = (str(uuid.uuid4()) for _ in range(3))
    inflight.mark([(waiting, "task-a", queue, 0.0), (lost, "task-b", queue, 5.0)])
    ttl: Any = broker.ttl(inflight.key(lost))
    assert 3595 <= ttl <= 3605  # the wait, plus the visibility timeout
    assert inflight.waiting([waiting, lost, never]) == set()  # the queue is empty: stale
    broker.rpush(queue, "a message")
    assert inflight.waiting([waiting, lost, never]) == {waiting, lost}
    broker.delete(queue)  # purged: every marker naming it is stale at once
    assert inflight.waiting([waiting, lost]) == set()


def test_a_marker_is_stale_once_a_later_message_was_taken(broker: redis.Redis) -> None:
    queue = _queue()
    a, b, c = (str(uuid.uuid4()) for _ in range(3))
    ha, hb, hc = _sent(broker, queue, [(a, "ta"), (b, "tb"), (c, "tc")])
    assert hb.startswith(f"{b} {queue} ") and int(hc.split()[2]) == int(hb.split()[2]) + 1
    assert inflight.waiting([a, b, c]) == {a, b, c}
    _receive(broker, queue, ha, "ta")
    assert inflight.waiting([a, b, c]) == {b, c}  # taken: no longer waiting in the queue
    broker.lrem(queue, 1, "message tb")  # b's message is lost from the queue...
    assert inflight.waiting([a, b, c]) == {b, c}  # ...which nothing can tell yet
    d = str(uuid.uuid4())
    (hd,) = _sent(broker, queue, [(d, "td")])
    _receive(broker, queue, hc, "tc")  # the queue moved past b: b's marker is stale
    assert inflight.waiting([a, b, c, d]) == {d}
    broker.delete(queue)


def test_a_receipt_clears_only_its_own_message_marker(broker: redis.Redis) -> None:
    queue, post_id = _queue(), str(uuid.uuid4())
    broker.rpush(queue, "someone else's message")
    (first,) = _sent(broker, queue, [(post_id, "first")])
    (second,) = _sent(broker, queue, [(post_id, "second")])  # a newer copy, same post
    inflight.taken(first, "first")  # the older copy's receipt: the newer marker stays
    assert broker.get(inflight.key(post_id)) is not None
    inflight.taken(f"{post_id} {queue} 0", "secon")  # a prefix of another id is not it
    assert inflight.waiting([post_id]) == {post_id}
    inflight.unmark([(post_id, "second")])
    assert inflight.waiting([post_id]) == set()
    broker.delete(queue)


# -- the recovery sweep's choice --------------------------------------------------------


def test_take_stalled_skips_posts_whose_message_still_waits(
    database_url: str, broker: redis.Redis
) -> None:
    queue = _queue()
    with _conn(database_url) as conn:
        _quiet(conn)
        backlog = _queued(conn, 5, "2 minutes")  # oldest: at the head of every page
        lost = _queued(conn, 1)[0]
        expired = _queued(conn, 1)[0]
        delivery.claim(conn, expired, "dead-worker", 0.01)  # its worker died: lease runs out
        inflight.mark([(p, f"t-{p}", queue, 0.0) for p in backlog])
        broker.rpush(queue, *[f"message for {p}" for p in backlog])
        conn.execute("SELECT pg_sleep(0.05)")

        # pages of 2: the waiting backlog fills the first pages, the lost post is behind it
        taken = delivery.take_stalled(conn, older_than_seconds=30, limit=2,
                                      waiting=inflight.waiting)
        assert set(taken) == {lost, expired}
        assert delivery.take_stalled(conn, older_than_seconds=30, limit=2,
                                     waiting=inflight.waiting) == []  # fresh queued_at

        broker.delete(queue)  # the messages were lost after all (a purge)
        again = delivery.take_stalled(conn, older_than_seconds=30, limit=100,
                                      waiting=inflight.waiting)
        assert set(again) == set(backlog)


def test_take_stalled_scans_a_bounded_number_of_pages(
    database_url: str, broker: redis.Redis
) -> None:
    queue = _queue()
    with _conn(database_url) as conn:
        _quiet(conn)
        backlog = _queued(conn, 6, "2 minutes")
        lost = _queued(conn, 1)[0]
        inflight.mark([(p, f"t-{p}", queue, 0.0) for p in backlog])
        broker.rpush(queue, "a message")
        assert delivery.take_stalled(conn, older_than_seconds=30, limit=2, scan_pages=2,
                                     waiting=inflight.waiting) == []  # 4 looked at, all wait
        assert delivery.take_stalled(conn, older_than_seconds=30, limit=2, scan_pages=4,
                                     waiting=inflight.waiting) == [lost]
        broker.delete(queue)
