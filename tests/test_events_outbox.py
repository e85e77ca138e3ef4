"""The outbox: every state change that matters writes its event in the same statement
(migration 0011's triggers), and only then; endpoints take the types their globs match;
a delivery's state machine and the endpoint's health. Real PostgreSQL, no workers."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from cryptography.fernet import Fernet
from psycopg.rows import dict_row

from db import confirmations, events, posts, webhook_deliveries, webhooks
from db.errors import InvalidInput
from db.post_view import post_document
from db.posts import NewPost
from db.vault import Vault
from tests import ledger

VAULT = Vault([Fernet.generate_key().decode()])


@pytest.fixture(autouse=True)
def _no_endpoints_left(database_url: str) -> Iterator[None]:
    """Endpoints are global: none of these (dead ports, other keys) may outlive its test,
    or later modules' workers would try to deliver there."""
    yield
    with _conn(database_url) as conn:
        conn.execute("DELETE FROM webhook_endpoints WHERE url LIKE 'http://127.0.0.1:9/%%'")


def _conn(dsn: str) -> psycopg.Connection[dict[str, Any]]:
    return psycopg.connect(dsn, autocommit=True, row_factory=dict_row)


def _types(conn: psycopg.Connection[dict[str, Any]], post_id: Any) -> list[str]:
    return [e["type"] for e in events.events_for_post(conn, post_id)]


def _publishing(conn: psycopg.Connection[dict[str, Any]], platforms: list[str],
                user: uuid.UUID | None = None) -> Any:
    row, _ = posts.insert_post(conn, NewPost(user_id=user or uuid.uuid4(), content="hi",
                                             platforms=platforms, notify_task="p.done"))
    return ledger.claim(conn, row["id"], "w", 60)


def test_final_and_target_events_come_with_their_change_and_only_then(
        database_url: str) -> None:
    with _conn(database_url) as conn:
        held = _publishing(conn, ["twitter", "linkedin"])
        assert _types(conn, held.post_id) == []  # queued -> publishing: no event
        assert ledger.finish(conn, held, "w", [
            ledger.posted("twitter", provider_post_id="p1", platform_post_id="t1"),
            ledger.failed("linkedin", "HTTP 400: media required")])
        assert sorted(_types(conn, held.post_id)) == [
            "post.partial", "post.target.failed", "post.target.posted"]
        final = [e for e in events.events_for_post(conn, held.post_id)
                 if e["type"] == "post.partial"][0]
        data = events.get_event(conn, final["id"])["data"]  # type: ignore[index]
        doc = post_document(data)
        assert doc["post_id"] == held.post_id and doc["status"] == "partial"
        assert {t["platform"]: t["status"] for t in doc["targets"]} == {
            "twitter": "posted", "linkedin": "failed"}
        assert doc["notify_task"] == "p.done" and "lease_owner" not in doc

        # a later provider report revising the final post: post.revised, once
        assert confirmations.apply(conn, [{
            "post_id": held.post_id, "platform": "twitter", "status": "failed",
            "was": "posted", "outcome": "revised", "error": "deleted by platform"}])
        assert confirmations.finish(conn, held.post_id, {
            "status": "failed", "error_message": "twitter: deleted"}, revision=True)
        assert _types(conn, held.post_id).count("post.revised") == 1

        # a refusal recorded at intake is post.failed at once; a cancel is post.cancelled
        refused, _ = posts.insert_post(conn, NewPost(
            user_id=uuid.uuid4(), content=None, platforms=[], status="failed",
            error_message="platforms: required"))
        assert _types(conn, refused["id"]) == ["post.failed"]
        queued, _ = posts.insert_post(conn, NewPost(user_id=uuid.uuid4(), content="x",
                                                    platforms=["twitter"]))
        assert posts.cancel_post(conn, queued["id"])
        assert _types(conn, queued["id"]) == ["post.cancelled"]

        # get_post shows the events; the JSON document lists them
        shown = posts.get_post(conn, held.post_id)
        assert shown is not None
        assert [e["type"] for e in post_document(shown)["events"]] == _types(
            conn, held.post_id)


def test_a_rolled_back_change_leaves_no_event(database_url: str) -> None:
    with _conn(database_url) as conn:
        held = _publishing(conn, ["twitter"])
        with pytest.raises(psycopg.errors.DivisionByZero), conn.transaction():
            ledger.finish(conn, held, "w", [ledger.posted("twitter")])
            conn.execute("SELECT 1/0")
        assert _types(conn, held.post_id) == []


def test_endpoints_take_what_their_globs_match_and_fan_out_is_once(database_url: str) -> None:
    user, other = uuid.uuid4(), uuid.uuid4()
    with _conn(database_url) as conn:
        conn.execute("DELETE FROM webhook_endpoints")
        every, secret = webhooks.create_endpoint(conn, "http://127.0.0.1:9/all", vault=VAULT)
        assert secret.startswith("whsec_") and "encrypted_secret" not in every
        stored = conn.execute("SELECT encrypted_secret FROM webhook_endpoints WHERE id = %s",
                              (every["id"],)).fetchone()
        assert stored is not None and secret not in stored["encrypted_secret"]
        targets, _ = webhooks.create_endpoint(conn, "http://127.0.0.1:9/t", user_id=user,
                                              event_types=["post.target.*"], vault=VAULT)
        webhooks.create_endpoint(conn, "http://127.0.0.1:9/o", user_id=other, vault=VAULT)
        for bad, rule in ((["post.nothing"], "matches no event type"),
                          (["POST.*"], "not an event type")):
            with pytest.raises(InvalidInput, match=rule):
                webhooks.create_endpoint(conn, "http://127.0.0.1:9/x", event_types=bad,
                                         vault=VAULT)
        with pytest.raises(InvalidInput, match="url"):
            webhooks.create_endpoint(conn, "ftp://example.com/x", vault=VAULT)

        conn.execute("UPDATE post_events SET dispatched_at = now()")  # earlier tests' events
        held = _publishing(conn, ["twitter"], user)
        ledger.finish(conn, held, "w", [ledger.posted("twitter")])
        with conn.transaction():
            batch = events.take_undispatched(conn, 100)
            assert {e["type"] for e in batch} == {"post.posted", "post.target.posted"}
            assert all(e["notify_task"] == "p.done" and e["data"] for e in batch)
            assert events.fan_out(conn, [e["id"] for e in batch]) == 3  # 2 + 1 target
        with conn.transaction():
            assert events.take_undispatched(conn, 100) == []
        got = conn.execute(
            """SELECT w.url, e.type FROM webhook_deliveries d
               JOIN webhook_endpoints w ON w.id = d.endpoint_id
               JOIN post_events e ON e.id = d.event_id WHERE e.post_id = %s
               ORDER BY 1, 2""", (held.post_id,)).fetchall()
        assert [(r["url"][-2:], r["type"]) for r in got] == [
            ("ll", "post.posted"), ("ll", "post.target.posted"), ("/t", "post.target.posted")]
        assert targets["event_types"] == ["post.target.*"]


def test_a_delivery_retries_then_fails_and_the_endpoint_is_disabled(database_url: str) -> None:
    with _conn(database_url) as conn:
        conn.execute("DELETE FROM webhook_endpoints")
        endpoint, _ = webhooks.create_endpoint(conn, "http://127.0.0.1:9/d", vault=VAULT)
        ping = events.insert_ping(conn, endpoint["id"])
        [(delivery_id, token)] = webhook_deliveries.take_due(conn, 10, 60)
        assert webhook_deliveries.take_due(conn, 10, 60) == []  # leased: not twice
        assert webhook_deliveries.begin(conn, delivery_id, "2000-01-01T00:00:00+00:00") is None
        started = webhook_deliveries.begin(conn, delivery_id, token)
        assert started is not None and started["attempt"] == 1 and started["type"] == "ping"
        kept, disabled = webhook_deliveries.record(
            conn, delivery_id, token, attempt=1, ok=False, http_status=500, latency_ms=3,
            response="boom", retry_in=0.0, max_failures=2, max_failing_seconds=3600)
        assert kept and disabled is None
        [(_, token2)] = webhook_deliveries.take_due(conn, 10, 60)
        kept, disabled = webhook_deliveries.record(
            conn, delivery_id, token2, attempt=2, ok=False, http_status=None, latency_ms=5,
            response="ConnectionError: no answer", retry_in=None, max_failures=2,
            max_failing_seconds=3600)
        assert kept and disabled is not None
        shown = webhooks.get_endpoint(conn, endpoint["id"])
        assert shown is not None and shown["disabled_reason"] == "2 failed attempts in a row"
        log = webhooks.list_deliveries(conn, endpoint_id=endpoint["id"], failed_only=True)
        assert [(r["attempt"], r["http_status"], r["delivery_status"]) for r in log] == [
            (2, None, "failed"), (1, 500, "failed")]
        # redeliver: due again, but not while the endpoint is disabled
        assert webhook_deliveries.redeliver(conn, ping) == 1
        assert webhook_deliveries.take_due(conn, 10, 60) == []
        assert webhooks.enable_endpoint(conn, endpoint["id"])
        assert len(webhook_deliveries.take_due(conn, 10, 60)) == 1


def test_a_stale_failed_attempt_is_logged_but_does_not_count_against_the_endpoint(
        database_url: str) -> None:
    with _conn(database_url) as conn:
        conn.execute("DELETE FROM webhook_endpoints")
        endpoint, _ = webhooks.create_endpoint(conn, "http://127.0.0.1:9/s", vault=VAULT)
        events.insert_ping(conn, endpoint["id"])
        [(delivery_id, stale)] = webhook_deliveries.take_due(conn, 10, 60)
        assert webhook_deliveries.begin(conn, delivery_id, stale) is not None
        # the lease runs out mid-call and the delivery is taken again
        conn.execute("UPDATE webhook_deliveries SET lease_until = now() - interval '1 s' "
                     "WHERE id = %s", (delivery_id,))
        [(_, fresh)] = webhook_deliveries.take_due(conn, 10, 60)
        kept, disabled = webhook_deliveries.record(
            conn, delivery_id, stale, attempt=1, ok=False, http_status=None, latency_ms=9000,
            response="ReadTimeout: no answer", retry_in=5.0, max_failures=1,
            max_failing_seconds=3600)
        assert not kept and disabled is None
        shown = webhooks.get_endpoint(conn, endpoint["id"])
        assert shown is not None and shown["disabled_at"] is None
        assert shown["consecutive_failures"] == 0
        log = webhooks.list_deliveries(conn, endpoint_id=endpoint["id"])
        assert [(r["attempt"], r["ok"]) for r in log] == [(1, False)]  # logged all the same
        # the attempt that holds the lease counts
        kept, disabled = webhook_deliveries.record(
            conn, delivery_id, fresh, attempt=1, ok=False, http_status=500, latency_ms=3,
            response="boom", retry_in=5.0, max_failures=1, max_failing_seconds=3600)
        assert kept and disabled is not None


def test_rotation_re_encrypts_signing_secrets(database_url: str) -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    with _conn(database_url) as conn:
        conn.execute("DELETE FROM webhook_endpoints")
        row, secret = webhooks.create_endpoint(conn, "http://127.0.0.1:9/r", vault=Vault([old]))
        assert webhooks.rotate_secrets(conn, Vault([new, old])) == 1
        assert webhooks.rotate_secrets(conn, Vault([new, old])) == 0
        stored = conn.execute("SELECT encrypted_secret FROM webhook_endpoints WHERE id = %s",
                              (row["id"],)).fetchone()
        assert stored is not None and Vault([new]).decrypt(stored["encrypted_secret"]) == secret


def test_prune_keeps_what_is_undelivered(database_url: str) -> None:
    with _conn(database_url) as conn:
        conn.execute("DELETE FROM webhook_endpoints")
        endpoint, _ = webhooks.create_endpoint(conn, "http://127.0.0.1:9/p", vault=VAULT)
        waiting = events.insert_ping(conn, endpoint["id"])  # its delivery is still pending
        held = _publishing(conn, ["twitter"])
        ledger.finish(conn, held, "w", [ledger.posted("twitter")])
        mine = [e["id"] for e in events.events_for_post(conn, held.post_id)]
        conn.execute("UPDATE post_events SET created_at = now() - interval '2 days'"
                     " WHERE id = ANY(%s)", ([*mine, waiting],))
        assert events.prune(conn, 86400) == 0  # not dispatched yet: kept
        conn.execute("UPDATE post_events SET dispatched_at = now() WHERE id = ANY(%s)", (mine,))
        assert events.prune(conn, 3 * 86400) == 0  # younger than the retention
        events.prune(conn, 86400)
        assert events.events_for_post(conn, held.post_id) == []
        assert events.get_event(conn, waiting) is not None


def test_retry_waits_follow_the_schedule_with_bounded_jitter() -> None:
    import random

    from tasks.webhook_send import retry_wait

    waits = (5.0, 30.0, 120.0, 600.0, 3600.0)
    rng = random.Random(7)
    for attempt, base in [(1, 5.0), (2, 30.0), (5, 3600.0), (9, 3600.0), (40, 3600.0)]:
        got = [retry_wait(attempt, waits, 0.2, rng) for _ in range(50)]
        assert all(base * 0.8 <= g <= base * 1.2 for g in got), (attempt, got)
        assert len(set(got)) > 1  # jittered: a backlog does not return in one burst
    assert retry_wait(1, waits, 0.0) == 5.0


def test_an_attempt_ends_by_its_timeout_however_slowly_the_receiver_answers() -> None:
    """A receiver that sends its answer a byte at a time (each read gets something before
    the read timeout) is cut off at the attempt's timeout, so an attempt never outlives
    its lease for that reason."""
    import time

    from standardwebhooks.webhooks import Webhook

    from tasks.webhook_send import post_signed
    from tests.receiver import Receiver

    receiver = Receiver(trickle=0.1).start()
    try:
        started = time.monotonic()
        outcome = post_signed(receiver.url, Webhook("whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
                              "evt_1", "{}", timeout=0.6, connect_timeout=0.6)
        took = time.monotonic() - started
    finally:
        receiver.stop()
    assert outcome.http_status == 200 and outcome.response.startswith(".")
    assert took < 2.0  # the answer would take 100 s in full
