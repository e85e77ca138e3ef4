"""The sweeps' own rules, against real Redis and PostgreSQL (no worker processes): the
in-flight markers (tasks.inflight), the recovery sweep's choice between a lost message and
a waiting one (db.recovery.take_stalled), the confirmation sweep's take per provider and
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

from db import delivery, posts, recovery
from db.posts import NewPost
from providers.errors import ProviderCallError
from providers.outcomes import OutcomeKind, PublishOutcome
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


def test_a_marker_is_stale_once_the_queue_moved_a_window_past_it(
        broker: redis.Redis, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(inflight, "REORDER_WINDOW", 1)  # one ticket, to see it move
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


def test_messages_of_two_senders_pushed_side_by_side_still_wait(broker: redis.Redis) -> None:
    """Two senders at once: each takes its tickets, then pushes; the later batch's
    messages land first. Taking them must not make the earlier batch look lost."""
    queue = _queue()
    early = [str(uuid.uuid4()) for _ in range(3)]
    late = [str(uuid.uuid4()) for _ in range(3)]
    early_headers = inflight.mark([(p, f"e{i}", queue, 0.0) for i, p in enumerate(early)])
    late_headers = inflight.mark([(p, f"l{i}", queue, 0.0) for i, p in enumerate(late)])
    broker.lpush(queue, *[f"message l{i}" for i in range(3)])  # the later batch lands first
    broker.lpush(queue, *[f"message e{i}" for i in range(3)])
    for i, header in enumerate(late_headers):
        assert header
        _receive(broker, queue, header, f"l{i}")
    assert int(str(late_headers[-1]).split()[2]) > int(str(early_headers[0]).split()[2])
    assert inflight.waiting(early + late) == set(early)  # still in the queue: not lost
    broker.delete(queue)


def test_a_message_a_live_worker_holds_waits_until_its_task_ends(broker: redis.Redis) -> None:
    """A worker took it (an ETA ahead, or no thread free yet): not in the queue, but not
    lost either, while the worker beats; its task's end lets it go."""
    queue, node = _queue(), f"w-{uuid.uuid4().hex[:6]}@test"
    post_id = str(uuid.uuid4())
    (header,) = _sent(broker, queue, [(post_id, "held-task")])
    inflight.heartbeat(node)
    broker.rpop(queue)
    inflight.taken(header, "held-task", node)
    assert broker.get(inflight.key(post_id)) is None  # the marker went at receipt
    assert inflight.waiting([post_id]) == {post_id}  # ...and the worker holds it
    inflight.ended(header, node)
    assert inflight.waiting([post_id]) == set()
    inflight.stopped(node)


def test_what_a_dead_worker_held_is_not_waited_for(broker: redis.Redis) -> None:
    queue, node = _queue(), f"w-{uuid.uuid4().hex[:6]}@test"
    held, other = str(uuid.uuid4()), str(uuid.uuid4())
    headers = _sent(broker, queue, [(held, "t1"), (other, "t2")])
    inflight.heartbeat(node)
    broker.rpop(queue)
    inflight.taken(headers[0], "t1", node)
    ttl: Any = broker.ttl(inflight.ALIVE + node)
    assert 3 <= ttl <= 20  # the stall time, within bounds
    assert inflight.waiting([held, other]) == {held, other}
    broker.delete(inflight.ALIVE + node)  # its beats stopped (killed)
    assert inflight.waiting([held, other]) == {other}  # other's message is still queued
    assert not broker.exists(inflight.HELD + node)  # its holdings are forgotten
    assert node.encode() not in broker.smembers(inflight.NODES)
    broker.delete(queue)


def test_a_new_broker_connection_starts_holding_nothing(broker: redis.Redis) -> None:
    """Celery drops the messages a consumer held when its connection breaks (the broker
    gives them back later): the heartbeat step, started again with the new connection,
    empties the worker's held set, so none of them is vouched for by a live worker."""
    from types import SimpleNamespace

    from kombu.asynchronous.timer import Timer

    queue, node = _queue(), f"w-{uuid.uuid4().hex[:6]}@test"
    post_id = str(uuid.uuid4())
    (header,) = _sent(broker, queue, [(post_id, "dropped")])
    consumer = SimpleNamespace(hostname=node, timer=Timer())  # what the step reads
    step = inflight.Heartbeat(consumer)
    step.start(consumer)
    broker.rpop(queue)
    inflight.taken(header, "dropped", node)
    assert inflight.waiting([post_id]) == {post_id}
    step.stop(consumer)  # the connection broke: Celery restarts the consumer's steps
    assert not broker.exists(inflight.ALIVE + node, inflight.HELD + node)
    inflight.taken(header, "dropped", node)  # a late receipt, as the old connection's
    step.start(consumer)  # the new connection
    assert broker.exists(inflight.ALIVE + node)
    assert inflight.waiting([post_id]) == set()
    step.shutdown(consumer)


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
        taken = recovery.take_stalled(conn, older_than_seconds=30, limit=2,
                                      waiting=inflight.waiting)
        assert set(taken) == {lost, expired}
        assert recovery.take_stalled(conn, older_than_seconds=30, limit=2,
                                     waiting=inflight.waiting) == []  # fresh queued_at

        broker.delete(queue)  # the messages were lost after all (a purge)
        again = recovery.take_stalled(conn, older_than_seconds=30, limit=100,
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
        assert recovery.take_stalled(conn, older_than_seconds=30, limit=2, scan_pages=2,
                                     waiting=inflight.waiting) == []  # 4 looked at, all wait
        assert recovery.take_stalled(conn, older_than_seconds=30, limit=2, scan_pages=4,
                                     waiting=inflight.waiting) == [lost]
        broker.delete(queue)


# -- the confirmation sweep: take per provider, give back --------------------------------


def _accepted(conn: psycopg.Connection[dict[str, Any]], provider: str, n: int) -> list[str]:
    ids = []
    for _ in range(n):
        row, _ = posts.insert_post(conn, NewPost(user_id=uuid.uuid4(), content="hi",
                                                 platforms=["twitter"]))
        ids.append(str(row["id"]))
    conn.execute("UPDATE social_posts SET status = 'publishing' WHERE id = ANY(%s::uuid[])",
                 (ids,))
    conn.execute(
        """UPDATE post_targets SET status = 'accepted', provider = %(p)s,
                  credential_source = 'global', provider_post_id = 'pp-' || post_id::text,
                  accepted_at = now() - interval '1 minute', checked_at = NULL
           WHERE post_id = ANY(%(ids)s::uuid[])""", {"ids": ids, "p": provider})
    return ids


def _take(conn: psycopg.Connection[dict[str, Any]], provider: str | None, limit: int,
          ids: list[str] | None = None) -> list[dict[str, Any]]:
    from db import confirmations

    return confirmations.take_awaiting(conn, settle_seconds=0.5, every_seconds=60,
                                       revision_window=0, revisit_seconds=60, limit=limit,
                                       provider=provider, post_ids=ids)


def test_take_awaiting_takes_one_providers_targets(database_url: str) -> None:
    with _conn(database_url) as conn:
        conn.execute("UPDATE post_targets SET status = 'failed' WHERE status = 'accepted'")
        pfm = _accepted(conn, "postforme", 4)
        late = _accepted(conn, "late", 2)
        first = _take(conn, "postforme", 3)
        assert {r["provider"] for r in first} == {"postforme"} and len(first) == 3
        # the other provider's targets are not behind the first one's backlog
        assert {str(r["post_id"]) for r in _take(conn, "late", 3)} == set(late)
        rest = _take(conn, "postforme", 3)  # the taken ones are stamped: the fourth
        assert [str(r["post_id"]) for r in rest] == list(set(pfm) - {str(r["post_id"])
                                                                     for r in first})
        assert _take(conn, "postforme", 3) == [] and _take(conn, None, 10) == []


def test_a_target_asked_at_one_sweep_is_asked_again_at_the_next(database_url: str) -> None:
    """At the defaults (a sweep every 2 s, ask again after 2 s) a target stamped a moment
    after its sweep began is due at the next sweep, not the one after it."""
    from db import confirmations
    from tasks.confirm import _due_again

    with _conn(database_url) as conn:
        conn.execute("UPDATE post_targets SET status = 'failed' WHERE status = 'accepted'")
        ids = _accepted(conn, "postforme", 1)
        # asked 1.95 s ago: the stamp came 50 ms after that sweep started, 2 s ago
        conn.execute("UPDATE post_targets SET checked_at = now() - interval '1.95 seconds' "
                     "WHERE post_id = ANY(%s::uuid[])", (ids,))

        def take(every: float) -> list[dict[str, Any]]:
            return confirmations.take_awaiting(
                conn, settle_seconds=0.5, every_seconds=every, revision_window=0,
                revisit_seconds=60, limit=10, provider="postforme", post_ids=ids)

        assert take(2.0) == []  # compared exactly, this sweep would pass it over
        assert [str(r["post_id"]) for r in take(_due_again(2.0, 2.0))] == ids


def test_give_back_puts_unasked_targets_first_in_line(database_url: str) -> None:
    from db import confirmations

    with _conn(database_url) as conn:
        conn.execute("UPDATE post_targets SET status = 'failed' WHERE status = 'accepted'")
        ids = _accepted(conn, "late", 3)
        conn.execute("UPDATE post_targets SET checked_at = now() - interval '10 minutes'"
                     " WHERE post_id = %s", (ids[0],))
        taken = _take(conn, "late", 10)
        prev = {str(r["post_id"]): r["prev"] for r in taken}
        assert prev[ids[0]] is not None and prev[ids[1]] is None and all(r["took"] for r in taken)
        unasked = [r for r in taken if str(r["post_id"]) != ids[1]]
        assert confirmations.give_back(conn, unasked) == 2
        again = _take(conn, "late", 10)  # asked again at once, not after `every`
        assert {str(r["post_id"]) for r in again} == {ids[0], ids[2]}
        assert confirmations.give_back(conn, unasked) == 0  # stamped since: left alone
        assert confirmations.give_back(conn, []) == 0


# -- the confirmation sweep's grouping and PACED stop (pure) -----------------------------


def _row(provider: str, source: str, user: str, post: str, platform: str = "twitter",
         ) -> dict[str, Any]:
    return {"provider": provider, "credential_source": source, "user_id": user,
            "provider_post_id": post, "post_id": f"{post}-ours", "platform": platform}


def _refused(kind: OutcomeKind, retry_after: float | None = None) -> ProviderCallError:
    return ProviderCallError(PublishOutcome(kind=kind, provider="LATE", error="x",
                                            retry_after=retry_after))


def test_targets_group_by_the_credential_they_were_sent_with() -> None:
    from tasks.confirm import group_by_key, units_for

    rows = [_row("late", "global", "u1", "a"), _row("late", "global", "u2", "b"),
            _row("late", "user", "u1", "c"), _row("late", "user", "u2", "d"),
            _row("postforme", "global", "u1", "e"), _row("postforme", "global", "u1", "e",
                                                         "linkedin"),
            {**_row("late", "user", "u1", "z"), "provider_post_id": None}]
    groups = group_by_key(rows)
    assert {k: [r["provider_post_id"] for r in g] for k, g in groups.items()} == {
        ("late", "global", None): ["a", "b"],  # one global key: every user's together
        ("late", "user", "u1"): ["c"], ("late", "user", "u2"): ["d"],
        ("postforme", "global", None): ["e", "e"],
    }
    many = [_row("postforme", "global", "u", f"p{i}") for i in range(250)]
    assert [len(u) for u in units_for("postforme", many)] == [100, 100, 50]  # results pages
    # A page holds 100 results, one per target: posts of two platforms go 50 to a call.
    pairs = [_row("postforme", "global", "u", f"q{i // 2}", ("twitter", "linkedin")[i % 2])
             for i in range(250)]
    paged = units_for("postforme", pairs)
    assert [len(u) for u in paged] == [100, 100, 50]
    assert all(len({r["provider_post_id"] for r in u}) == len(u) // 2 for u in paged)
    assert units_for("late", groups[("late", "global", None)]) == [[rows[0]], [rows[1]]]
    two = units_for("postforme", groups[("postforme", "global", None)])
    assert two == [[rows[4], rows[5]]]  # one provider post, both its targets


def test_a_paced_refusal_stops_that_key_and_leaves_the_rest() -> None:
    from tasks.confirm import ask_in_turn

    units = [[_row("late", "user", "u", p)] for p in "abcde"]
    asked: list[str] = []

    def ask(unit: list[dict[str, Any]]) -> None:
        post = unit[0]["provider_post_id"]
        asked.append(post)
        if post == "b":
            raise _refused(OutcomeKind.TRANSIENT)  # this one unanswered; go on
        if post == "d":
            raise _refused(OutcomeKind.PACED, retry_after=7.5)  # no permit: stop here

    left, wait = ask_in_turn(units, ask)
    assert asked == ["a", "b", "c", "d"]  # never "e": the key is not hammered
    assert [r["provider_post_id"] for r in left] == ["d", "e"] and wait == 7.5
    assert ask_in_turn(units[:1], lambda unit: None) == ([], None)


# -- the refresh fan-out's pages --------------------------------------------------------


def test_refresh_pages_cover_every_credential_once(scratch_db: str, sandbox: Any) -> None:
    from db import credentials
    from db.vault import Vault
    from tasks import accounts

    with _conn(scratch_db) as conn:
        for _ in range(4):
            user = str(uuid.uuid4())
            for provider in ("postforme", "late"):
                key = f"user-{provider}-{uuid.uuid4().hex}"
                sandbox.register_key(provider, key, ["twitter", "pinterest"])
                credentials.save_credentials(conn, Vault.from_env(), user, provider, key)
        credentials.save_credentials(conn, Vault.from_env(), str(uuid.uuid4()), "late",
                                     "revoked-" + uuid.uuid4().hex)  # refused: invalid
        assert len(credentials.page_ends(conn, 3)) == 3  # 9 credentials: 3 full pages
    pages: list[tuple[Any, Any]] = []
    out = accounts.fan_out(lambda after, through: pages.append((after, through)), 3,
                           dsn=scratch_db)
    assert out == {"pages": 4, "page_size": 3} and pages[0][0] is None
    assert pages[-1][1] is None  # the last page is open-ended: rows added meanwhile
    assert all(a[1] == b[0] for a, b in zip(pages, pages[1:], strict=False))
    seen: list[tuple[str, str]] = []
    total = {"refreshed": 0, "invalid": 0, "paced": 0, "errors": 0}
    for after, through in pages:
        with _conn(scratch_db) as conn:
            seen += [(str(r["user_id"]), r["provider"]) for r in credentials.encrypted_page(
                conn, after=accounts._key(after), through=accounts._key(through))]
        for k, v in accounts.refresh_page(after, through, dsn=scratch_db).items():
            total[k] += v
    assert len(seen) == len(set(seen)) == 9
    assert total == {"refreshed": 8, "invalid": 1, "paced": 0, "errors": 0}
    with _conn(scratch_db) as conn:
        rows = conn.execute("SELECT connected_platforms, invalid_at FROM"
                            " user_social_credentials").fetchall()
    assert sum(r["connected_platforms"] == ["pinterest", "twitter"] for r in rows) == 8
    assert sum(r["invalid_at"] is not None for r in rows) == 1


class _PacedLister:
    """A provider client whose key has no permit to spare (what providers/pacing raises)."""

    def invalidate_accounts(self) -> None:
        pass

    def accounts(self) -> list[Any]:
        from providers import pacing

        assert pacing.current_priority() is pacing.Priority.BACKGROUND
        raise _refused(OutcomeKind.PACED, retry_after=3)


def test_a_paced_refresh_leaves_the_credential_for_next_time(database_url: str) -> None:
    from tasks.accounts import refresh_one
    from tests.workers import save_key

    user = str(uuid.uuid4())
    save_key(user, "late", "some-key")
    with _conn(database_url) as conn:
        conn.execute("UPDATE user_social_credentials SET connected_platforms = '{twitter}'"
                     " WHERE user_id = %s", (user,))
    assert refresh_one(_PacedLister(), user, "late") == "paced"
    with _conn(database_url) as conn:
        row = conn.execute("SELECT connected_platforms, invalid_at FROM"
                           " user_social_credentials WHERE user_id = %s", (user,)).fetchone()
    assert row == {"connected_platforms": ["twitter"], "invalid_at": None}
