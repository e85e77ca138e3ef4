"""Outcome events end to end: real workers and beat, a real receiving HTTP server in the
test, signatures checked with the `standardwebhooks` verifier, a producer's own Celery
app on the same broker for notify_task. Faults: a receiver answering 500 half the time,
a receiver down then back, and the worker killed (-9) after the state changes and before
any dispatch, with Redis emptied too.

Receivers dedupe on `webhook-id`; what is asserted is what a receiver then holds."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from db.events import FINAL_TYPES
from tests.receiver import Delivery, Receiver
from tests.stack import Stack, wait_for
from tests.workers import client, conn, start_stack, user_with_key, wait_final

pytestmark = pytest.mark.timeout(240)

PRODUCER_QUEUE = "producer.events"
RECEIVED = "producer:received"
ENV = {
    "SOCIALPOST_WEBHOOK_RETRY_SCHEDULE": "1,2",  # retries within seconds, not minutes
    "SOCIALPOST_WEBHOOK_TIMEOUT": "3",
    "SOCIALPOST_RESULTS_INTERVAL": "1",
}


@pytest.fixture(scope="module")
def stack(database_url: str, redis_url: str, sandbox_server: Any,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with start_stack(tmp_path_factory, database_url, redis_url, ENV, concurrency=3) as s:
        s.worker(concurrency=1, queues=PRODUCER_QUEUE, app="tests.producer_app",
                 name="producer")
        yield s
    with conn() as c:  # endpoints are global: later modules' events must not go here
        c.execute("DELETE FROM webhook_endpoints WHERE url LIKE 'http://127.0.0.1:%%/hooks'")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A receiver, and its endpoints removed when the test ends (endpoints are global)."""
    r = Receiver().start()
    yield r
    r.stop()
    with conn() as c:
        c.execute("DELETE FROM webhook_endpoints WHERE url = %s", (r.url,))


def _endpoint(url: str, user: str | None = None) -> tuple[str, str]:
    from db import webhooks

    with conn() as c:
        row, secret = webhooks.create_endpoint(c, url, user_id=user)
    return str(row["id"]), secret


def _finals(got: dict[str, Delivery], post_ids: set[str]) -> dict[str, list[Delivery]]:
    """post id -> its final events as the receiver holds them (deduped by webhook-id)."""
    out: dict[str, list[Delivery]] = {p: [] for p in post_ids}
    for d in got.values():
        event = d.event
        pid = event["data"].get("post_id")
        if event["type"] in FINAL_TYPES and pid in out:
            out[pid].append(d)
    return out


def _wait_finals(receiver: Receiver, post_ids: set[str], timeout: float = 90) -> dict[
        str, list[Delivery]]:
    def every() -> dict[str, list[Delivery]] | None:
        finals = _finals(receiver.by_id(), post_ids)
        return finals if all(finals.values()) else None

    return wait_for(every, timeout, f"final events of {len(post_ids)} posts")


def _statuses(post_ids: set[str]) -> dict[str, str]:
    with conn() as c:
        return {str(r["id"]): r["status"] for r in c.execute(
            "SELECT id, status FROM social_posts WHERE id = ANY(%s::uuid[])", (list(post_ids),))}


def _callbacks(redis_url: str) -> list[dict[str, Any]]:
    return [json.loads(x) for x in redis.Redis.from_url(redis_url).lrange(RECEIVED, 0, -1)]


def test_every_final_post_is_told_once_signed_and_to_the_producers_task(
        stack: Stack, sandbox: Any, receiver: Receiver, redis_url: str) -> None:
    endpoint, secret = _endpoint(receiver.url)
    confirmed = user_with_key(sandbox, "postforme", ["twitter", "linkedin"])  # confirmations
    immediate = user_with_key(sandbox, "late", ["twitter", "bluesky"])  # posted in-request
    producer = client()
    ids = {producer.enqueue_post(confirmed, f"confirmed {i}", ["twitter", "linkedin"],
                                 notify_task="producer.on_event", notify_queue=PRODUCER_QUEUE)
           for i in range(4)}
    ids |= {producer.enqueue_post(immediate, f"now {i}", ["twitter", "bluesky"],
                                  notify_task="producer.on_event", notify_queue=PRODUCER_QUEUE)
            for i in range(4)}
    # a request refused at intake leaves a failed row: post.failed too, and its callback
    refused = str(uuid.uuid4())
    producer.app.send_task("social.publish_post", kwargs={
        "user_id": immediate, "content": "x", "platforms": ["myspace"], "post_id": refused,
        "notify_task": "producer.on_event", "notify_queue": PRODUCER_QUEUE})
    ids.add(refused)
    for pid in ids:
        wait_final(pid)
    finals = _wait_finals(receiver, ids)
    statuses = _statuses(ids)
    assert statuses[refused] == "failed"
    for pid, got in finals.items():
        assert len(got) == 1, (pid, [d.event["type"] for d in got])  # exactly one final event
        event = got[0].event
        assert event["type"] == f"post.{statuses[pid]}"
        assert event["data"]["status"] == statuses[pid] and event["data"]["user_id"]
        assert "timestamp" in event and "encrypted_api_key" not in got[0].body.decode()

    # every request verifies with the endpoint's secret; none with another secret
    mine = [d for d in receiver.snapshot() if d.event.get("data", {}).get("post_id") in ids]
    for d in mine:
        Webhook(secret).verify(d.body, d.headers)
        assert d.headers["webhook-signature"].startswith("v1,")
        with pytest.raises(WebhookVerificationError):
            Webhook("whsec_" + "A" * 32).verify(d.body, d.headers)
    # each posted platform was told as it happened: one post.target.posted per target
    target_events = {(d.event["data"]["post_id"], d.event["data"]["platform"])
                     for d in receiver.by_id().values()
                     if d.event["type"] == "post.target.posted"
                     and d.event["data"]["post_id"] in ids}
    posted = {pid for pid in ids if statuses[pid] == "posted"}
    assert len(posted) == 8
    assert {p for p, _ in target_events} == posted and len(target_events) == 16

    # the producer's own Celery app: one call per post (deduped on the event id), right status
    def called() -> dict[str, list[dict[str, Any]]] | None:
        calls: dict[str, list[dict[str, Any]]] = {}
        for c in {c["event"]["id"]: c for c in _callbacks(redis_url)}.values():
            calls.setdefault(c["event"]["data"]["post_id"], []).append(c)
        return calls if ids <= set(calls) else None

    calls = wait_for(called, 60, "a callback for every post")
    for pid in ids:
        assert [c["event"]["data"]["status"] for c in calls[pid]] == [statuses[pid]]
        assert calls[pid][0]["task_id"] == calls[pid][0]["event"]["id"]


def test_a_receiver_failing_half_the_time_still_gets_every_event(
        stack: Stack, sandbox: Any, receiver: Receiver) -> None:
    receiver.flaky = True
    user = user_with_key(sandbox, "late", ["twitter"])
    endpoint, _ = _endpoint(receiver.url, user)
    ids = {client().enqueue_post(user, f"flaky {i}", ["twitter"]) for i in range(6)}
    finals = _wait_finals(receiver, ids)
    assert all(len(v) == 1 for v in finals.values())
    assert receiver.refused >= 6  # it did fail, and was retried
    from db import webhooks

    with conn() as c:
        log = webhooks.list_deliveries(c, endpoint_id=endpoint, failed_only=True, limit=1000)
    assert log and all(r["http_status"] == 500 for r in log)


def test_a_receiver_down_for_a_while_gets_the_backlog_when_it_returns(
        stack: Stack, sandbox: Any, receiver: Receiver) -> None:
    user = user_with_key(sandbox, "late", ["twitter"])
    endpoint, _ = _endpoint(receiver.url, user)
    receiver.stop()
    ids = {client().enqueue_post(user, f"backlog {i}", ["twitter"]) for i in range(5)}
    for pid in ids:
        wait_final(pid)
    from db import webhooks

    def failing() -> bool:
        with conn() as c:
            row = webhooks.get_endpoint(c, endpoint)
        return bool(row and row["consecutive_failures"] >= 10)

    wait_for(failing, 60, "deliveries failing while the receiver is down")
    receiver.start()  # the same port
    finals = _wait_finals(receiver, ids, timeout=60)
    assert all(len(v) == 1 for v in finals.values())


def test_kill_9_between_state_change_and_dispatch_loses_nothing(
        stack: Stack, sandbox: Any, receiver: Receiver, redis_url: str) -> None:
    user = user_with_key(sandbox, "late", ["twitter", "bluesky"])
    _endpoint(receiver.url, user)
    for proc in [p for p in stack.procs if p.name == "beat"]:
        stack.kill(proc)  # no dispatcher: the events stay in the outbox
        stack.procs.remove(proc)
    ids = {client().enqueue_post(user, f"kill {i}", ["twitter", "bluesky"]) for i in range(5)}
    for pid in ids:
        wait_final(pid)
    with conn() as c:
        waiting = c.execute(
            """SELECT count(*) AS n FROM post_events
               WHERE post_id = ANY(%s::uuid[]) AND dispatched_at IS NULL""",
            (list(ids),)).fetchone()
    assert waiting is not None and waiting["n"] == 15  # 5 final + 10 target events
    for proc in list(stack.procs):
        stack.kill(proc)  # SIGKILL, worker children too
        stack.procs.remove(proc)
    redis.Redis.from_url(redis_url).flushdb()  # and Redis loses every message
    assert receiver.by_id() == {} or not (
        {d.event["data"].get("post_id") for d in receiver.by_id().values()} & ids)
    stack.worker(concurrency=3)
    stack.worker(concurrency=1, queues=PRODUCER_QUEUE, app="tests.producer_app",
                 name="producer2")
    stack.beat(name="beat2")
    finals = _wait_finals(receiver, ids)
    assert all(len(v) == 1 for v in finals.values())

    def ours() -> list[Delivery]:
        return [d for d in receiver.by_id().values() if d.event["data"].get("post_id") in ids]

    # every event, once by webhook-id (deliveries run in parallel: a target's event may
    # arrive after its post's final one)
    got = wait_for(lambda: found if len(found := ours()) >= 15 else None, 60,
                   "all 15 events")
    assert len(got) == 15
