"""The ledger: idempotent insert, claim races, releasing due posts, outcomes — all through
the API the workers use (db.posts to insert and read, db.delivery to move)."""

from __future__ import annotations

import random
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from db import delivery, posts, recovery, states
from db.errors import InvalidInput
from db.posts import NewPost
from tasks.planning import Plan, TargetChange
from tests import ledger


def _conn(dsn: str) -> psycopg.Connection[dict[str, Any]]:
    return psycopg.connect(dsn, autocommit=True, row_factory=dict_row)


def _new(user: uuid.UUID | None = None, **kw: Any) -> NewPost:
    base: dict[str, Any] = {"user_id": user or uuid.uuid4(), "content": "hello",
                            "platforms": ["twitter", "linkedin"]}
    return NewPost(**{**base, **kw})


def _status(conn: psycopg.Connection[dict[str, Any]], post_id: Any) -> str:
    row = conn.execute("SELECT status FROM social_posts WHERE id = %s", (post_id,)).fetchone()
    assert row is not None
    return str(row["status"])


def test_insert_is_idempotent_under_the_callers_id(database_url: str) -> None:
    post_id = uuid.uuid4()
    with _conn(database_url) as conn:
        row, created = posts.insert_post(conn, _new(id=post_id, media_urls=["https://m/1.jpg"]))
        assert created and row["id"] == post_id and row["status"] == "queued"
        assert row["queued_at"] is not None
        again, created_again = posts.insert_post(
            conn, _new(id=str(post_id), content="different", platforms=["bluesky"]))
        assert not created_again and again["content"] == "hello"
        targets = conn.execute(
            "SELECT platform, status FROM post_targets WHERE post_id = %s ORDER BY platform",
            (post_id,)).fetchall()
        assert targets == [{"platform": "linkedin", "status": "pending"},
                           {"platform": "twitter", "status": "pending"}]


def test_insert_scheduled_and_failed(database_url: str) -> None:
    with _conn(database_url) as conn:
        later = datetime.now(UTC) + timedelta(days=400)
        row, _ = posts.insert_post(conn, _new(scheduled_for=later))
        assert row["status"] == "scheduled" and row["queued_at"] is None
        past = datetime.now(UTC) - timedelta(minutes=1)
        row, _ = posts.insert_post(conn, _new(scheduled_for=past))
        assert row["status"] == "queued"  # already due: no need to wait for the releaser
        row, _ = posts.insert_post(
            conn, _new(status="failed", platforms=["myspace", "myspace"], content="",
                       scheduled_for=datetime(2030, 1, 1), campaign_id="bad",
                       error_message="platforms: 'myspace' is not supported"))
        assert row["status"] == "failed" and row["finished_at"] is not None
        assert row["error_message"] == "platforms: 'myspace' is not supported"
        assert row["scheduled_for"] is None and row["campaign_id"] is None  # kept if storable
        with pytest.raises(InvalidInput, match="user_id"):  # a failed post still needs its user
            posts.insert_post(conn, _new(user_id="x", status="failed", error_message="bad"))


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"user_id": "abc"}, "user_id"),
        ({"id": "not-a-uuid"}, "id"),
        ({"campaign_id": "12345"}, "campaign_id"),
        ({"scheduled_for": datetime(2030, 1, 1)}, "scheduled_for"),  # naive
        ({"scheduled_for": "2030-01-01"}, "scheduled_for"),
        ({"status": "posted"}, "status"),
        ({"status": "bogus"}, "status"),
        ({"status": "scheduled"}, "scheduled_for"),
        ({"platforms": []}, "platforms"),
        ({"platforms": ["twitter", "twitter"]}, "platforms"),
        ({"platforms": "twitter"}, "platforms"),
        ({"content": "  "}, "content"),
        ({"batch_number": 0}, "batch_number"),
        ({"media_urls": [""]}, "media_urls[0]"),
        ({"status": "failed"}, "error_message"),
    ],
)
def test_bad_new_posts_are_refused(database_url: str, kwargs: dict, field: str) -> None:
    with _conn(database_url) as conn, pytest.raises(InvalidInput) as info:
        posts.insert_post(conn, _new(**kwargs))
    assert info.value.field == field
    assert isinstance(info.value, ValueError)


def test_naive_datetime_message() -> None:
    with pytest.raises(InvalidInput, match=r"^scheduled_for: must be timezone-aware$"):
        _new(scheduled_for=datetime(2030, 1, 1)).validated()
    with pytest.raises(InvalidInput, match=r"^user_id: must be a UUID, got 'abc'$"):
        _new(user_id="abc").validated()


def test_twenty_threads_claim_each_post_once(database_url: str) -> None:
    with _conn(database_url) as conn:
        ids = [str(posts.insert_post(conn, _new())[0]["id"]) for _ in range(25)]
    wins: list[tuple[str, str]] = []
    lock = threading.Lock()
    barrier = threading.Barrier(20)
    errors: list[BaseException] = []

    def claimer(n: int) -> None:
        try:
            with _conn(database_url) as conn:
                order = ids[:]
                random.Random(n).shuffle(order)
                barrier.wait()
                for pid in order:
                    taken = delivery.claim(conn, pid, f"worker-{n}", 60)
                    if taken is not None:
                        with lock:
                            wins.append((f"worker-{n}", taken.post_id))
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=claimer, args=(n,)) for n in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sorted(pid for _, pid in wins) == sorted(ids)  # each post claimed exactly once
    with _conn(database_url) as conn:
        rows = conn.execute(
            "SELECT id, status, claim_count, lease_owner FROM social_posts WHERE id = ANY(%s)",
            (ids,)).fetchall()
    owner_of = {pid: owner for owner, pid in wins}
    assert all(r["status"] == "publishing" and r["claim_count"] == 1 for r in rows)
    assert all(r["lease_owner"] == owner_of[str(r["id"])] for r in rows)


def test_claim_carries_targets_and_respects_leases(database_url: str) -> None:
    with _conn(database_url) as conn:
        row, _ = posts.insert_post(conn, _new(platforms=["threads", "bluesky", "twitter"]))
        pid = str(row["id"])
        first = ledger.claim(conn, pid, "a", 0.3)
        assert first.platforms == ["threads", "bluesky", "twitter"]
        assert {p: t["status"] for p, t in first.targets.items()} == dict.fromkeys(
            first.platforms, "pending")
        assert not first.needs_reconcile
        assert delivery.claim(conn, pid, "b", 30) is None  # lease still held
        assert delivery.start_send(conn, pid, "a", 0.3)  # "a" sends (lease renewed)
        assert not delivery.start_send(conn, pid, "b", 30)  # not b's to send
        time.sleep(0.4)
        taken = ledger.claim(conn, pid, "b", 30)  # expired lease: taken over
        # whoever takes a publishing post over must look it up before any resend
        assert taken.needs_reconcile
        again = posts.get_post(conn, pid)
        assert again is not None and again["claim_count"] == 2 and again["lease_owner"] == "b"
        # the old holder lost its lease: its late record moves nothing (the attempt is logged)
        assert ledger.finish(conn, first, "a", [ledger.posted(p) for p in first.platforms],
                             ledger.attempt_row(first.platforms)) is False
        assert _status(conn, pid) == "publishing"
        assert len(posts.get_post(conn, pid)["attempts"]) == 1  # type: ignore[index]
        with pytest.raises(InvalidInput):
            delivery.claim(conn, "nope", "c", 10)


def test_a_redelivered_message_resends_only_what_was_never_sent(database_url: str) -> None:
    with _conn(database_url) as conn:
        pid = str(posts.insert_post(conn, _new())[0]["id"])
        ledger.claim(conn, pid, "task-1", 300)
        # its worker died before sending: the redelivered copy (same task id) goes on
        again = ledger.claim(conn, pid, "task-1", 300)
        assert not again.needs_reconcile and again.open_claims == 2
        # ...this time it died while the create was out: the copy may not look it up
        # while that request could still be in flight; after the lease, the taker must
        assert delivery.start_send(conn, pid, "task-1", 0.3)
        assert delivery.claim(conn, pid, "task-1", 300) is None
        time.sleep(0.4)
        taken = ledger.claim(conn, pid, "task-1", 300)
        assert taken.needs_reconcile and taken.open_claims == 3
        # a recorded attempt resets the count of attempts that recorded nothing
        assert ledger.requeue(conn, taken, "task-1", step=0)
        assert ledger.claim(conn, pid, "w", 60).open_claims == 1


def _insert_scheduled(conn: psycopg.Connection[dict[str, Any]], n: int, when: datetime,
                      user: uuid.UUID) -> list[str]:
    rows = conn.execute(
        """INSERT INTO social_posts (user_id, content, platforms, status, scheduled_for)
           SELECT %s, 'scheduled ' || g, '{twitter}', 'scheduled',
                  %s - (g * interval '1 second')
           FROM generate_series(1, %s) g RETURNING id""",
        (user, when, n)).fetchall()
    return [str(r["id"]) for r in rows]


def test_two_releasers_release_each_due_post_once(database_url: str) -> None:
    user = uuid.uuid4()
    with _conn(database_url) as conn:
        due = _insert_scheduled(conn, 3000, datetime.now(UTC) - timedelta(seconds=1), user)
        future = _insert_scheduled(conn, 50, datetime.now(UTC) + timedelta(days=30), user)
    released: list[list[str]] = [[], []]
    barrier = threading.Barrier(2)

    def releaser(i: int) -> None:
        with _conn(database_url) as conn:
            barrier.wait()
            while batch := recovery.release_due(conn, limit=100):
                assert [w for _, w in batch] == sorted(w for _, w in batch)  # earliest first
                released[i].extend(pid for pid, _ in batch)

    threads = [threading.Thread(target=releaser, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    mine = set(due)
    got = [pid for part in released for pid in part if pid in mine]
    assert len(got) == len(set(got)) == len(due)  # every due post once, none twice
    assert all(released), "both releasers should have done some of the work"
    with _conn(database_url) as conn:
        counts = {r["status"]: r["n"] for r in conn.execute(
            "SELECT status, count(*) AS n FROM social_posts WHERE user_id = %s GROUP BY status",
            (user,))}
        assert counts == {"queued": 3000, "scheduled": 50}
        assert not set(future) & set(got)
        # the horizon releases what is due a moment ahead, nothing further
        soon = _insert_scheduled(conn, 1, datetime.now(UTC) + timedelta(seconds=5), user)
        assert recovery.release_due(conn, horizon_seconds=1) == []
        assert [pid for pid, _ in recovery.release_due(conn, horizon_seconds=10)] == soon


def test_release_due_uses_the_partial_index(database_url: str) -> None:
    user = uuid.uuid4()
    with _conn(database_url) as conn:
        _insert_scheduled(conn, 20000, datetime.now(UTC) + timedelta(days=3650), user)
        conn.execute(
            """INSERT INTO social_posts (user_id, content, platforms, status)
               SELECT %s, 'done', '{twitter}', 'posted' FROM generate_series(1, 20000)""",
            (user,))
        conn.execute("ANALYZE social_posts")
        with psycopg.ClientCursor(conn) as cur:
            cur.execute("EXPLAIN " + recovery.RELEASE_QUERY,
                        {"limit": 500, "from": ["scheduled"], "horizon": 2.0})
            plan = "\n".join(r["QUERY PLAN"] for r in cur.fetchall())
    assert "social_posts_due_idx" in plan, plan
    assert "Seq Scan on social_posts" not in plan, plan


def test_take_stalled_hands_back_lost_and_expired_posts_only(database_url: str) -> None:
    with _conn(database_url) as conn:
        queued, _ = posts.insert_post(conn, _new())
        fresh, _ = posts.insert_post(conn, _new())
        busy, _ = posts.insert_post(conn, _new())
        held, _ = posts.insert_post(conn, _new())
        conn.execute("UPDATE social_posts SET queued_at = now() - interval '1 hour'"
                     " WHERE id = %s", (queued["id"],))
        ledger.claim(conn, busy["id"], "dead-worker", 0.05)
        assert delivery.start_send(conn, str(busy["id"]), "dead-worker", 0.05)  # died sending
        ledger.claim(conn, held["id"], "live-worker", 300)
        time.sleep(0.1)
        stalled = set(recovery.take_stalled(conn, older_than_seconds=300, limit=10000))
        assert {str(queued["id"]), str(busy["id"])} <= stalled
        assert not {str(fresh["id"]), str(held["id"])} & stalled
        row = posts.get_post(conn, busy["id"])
        assert row is not None and row["status"] == "queued" and row["lease_owner"] is None
        assert row["needs_reconcile"]  # its worker may have sent: look before resending
        again = set(recovery.take_stalled(conn, older_than_seconds=300, limit=10000))
        assert not {str(queued["id"]), str(busy["id"])} & again  # fresh queued_at now


def _publishing(conn: psycopg.Connection[dict[str, Any]],
                platforms: list[str]) -> delivery.Claim:
    row, _ = posts.insert_post(conn, _new(platforms=platforms))
    return ledger.claim(conn, row["id"], "w", 60)


def test_record_writes_final_status_and_seed_columns(database_url: str) -> None:
    with _conn(database_url) as conn:
        # all posted -> posted; provider ids from the first platform in the post's order
        held = _publishing(conn, ["linkedin", "twitter"])
        assert ledger.finish(conn, held, "w", [
            ledger.posted("twitter", "late", source="global", provider_post_id="late-1",
                          platform_post_id="tw1", platform_post_url="https://x/1"),
            ledger.posted("linkedin", provider_post_id="pfm-1", platform_post_id="li1",
                          platform_post_url="https://l/1"),
        ], ledger.attempt_row(["linkedin", "twitter"], key=f"{held.post_id}-s0",
                              provider_post_id="pfm-1"))
        done = posts.get_post(conn, held.post_id)
        assert done is not None
        assert done["status"] == "posted" and done["posted_at"] is not None
        assert (done["provider"], done["provider_post_id"]) == ("PostForMe", "pfm-1")
        assert done["platform_post_ids"] == {"twitter": "tw1", "linkedin": "li1"}
        assert done["platform_post_urls"] == {"twitter": "https://x/1", "linkedin": "https://l/1"}
        assert done["error_message"] is None and done["lease_owner"] is None
        assert done["finished_at"] is not None
        assert [a["outcome"] for a in done["attempts"]] == ["published"]
        assert {t["platform"]: (t["status"], t["credential_source"]) for t in done["targets"]} \
            == {"linkedin": ("posted", "user"), "twitter": ("posted", "global")}

        cases = [
            ([ledger.posted("twitter", provider_post_id="p1", platform_post_id="t1"),
              ledger.failed("instagram", "HTTP 400: media required")],
             "partial", "instagram: HTTP 400: media required"),
            ([ledger.failed("twitter", "e1"), ledger.failed("instagram", "e2")],
             "failed", "twitter: e1; instagram: e2"),
            ([ledger.posted("twitter", "late"),
              TargetChange("instagram", "unconfirmed", error="timeout")],
             "unconfirmed", "instagram: timeout"),
        ]
        for changes, status, error in cases:
            held = _publishing(conn, ["twitter", "instagram"])
            assert ledger.finish(conn, held, "w", changes)
            done = posts.get_post(conn, held.post_id)
            assert done is not None and (done["status"], done["error_message"]) == (
                status, error)
            if status == "failed":
                assert done["posted_at"] is None and done["platform_post_ids"] == {}

        # a record under someone else's name moves nothing
        held = _publishing(conn, ["twitter"])
        assert not ledger.finish(conn, held, "somebody-else", [ledger.posted("twitter")])
        assert _status(conn, held.post_id) == "publishing"


def test_a_posted_target_is_never_changed(database_url: str) -> None:
    with _conn(database_url) as conn:
        held = _publishing(conn, ["twitter", "bluesky"])
        assert ledger.requeue(conn, held, "w", step=1, changes=[
            ledger.posted("twitter", "late", platform_post_id="t1")])
        held = ledger.claim(conn, held.post_id, "w2")
        assert held.targets["twitter"]["status"] == "posted"
        # a confused later answer naming twitter again cannot undo what was published
        assert ledger.finish(conn, held, "w2", [ledger.failed("twitter", "late echo"),
                                                ledger.posted("bluesky", "late")])
        row = posts.get_post(conn, held.post_id)
        assert row is not None
        target = row["targets"][0]
        assert target["status"] == "posted" and target["platform_post_id"] == "t1"
        assert target["error"] is None


def test_final_status_never_changes(database_url: str) -> None:
    with _conn(database_url) as conn:
        held = _publishing(conn, ["twitter"])
        ledger.finish(conn, held, "w", [ledger.posted("twitter", "late")])
        assert delivery.claim(conn, held.post_id, "x", 30) is None
        assert delivery.claim(conn, held.post_id, "w", 30) is None
        assert posts.cancel_post(conn, held.post_id) is False
        assert held.post_id not in recovery.take_stalled(conn, older_than_seconds=0, limit=100)
        assert not ledger.requeue(conn, held, "w", step=1)
        assert _status(conn, held.post_id) == "posted"
    for final in states.FINAL:
        for target in states.STATUSES:
            assert not states.can_transition(final, target)


def test_cancel_and_defer(database_url: str) -> None:
    with _conn(database_url) as conn:
        sched, _ = posts.insert_post(conn, _new(
            scheduled_for=datetime.now(UTC) + timedelta(days=365)))
        assert posts.cancel_post(conn, sched["id"]) is True
        row = posts.get_post(conn, sched["id"])
        assert row is not None and row["status"] == "cancelled"
        assert {t["status"] for t in row["targets"]} == {"cancelled"}
        assert posts.cancel_post(conn, sched["id"]) is False

        held = _publishing(conn, ["twitter"])
        assert posts.cancel_post(conn, held.post_id) is False  # too late: it is being sent
        # a long rate limit parks the post as scheduled, lease released, until its time
        until = datetime.now(UTC) + timedelta(hours=2)
        deferral = Plan("scheduled", 0, 1, defer_until=until)
        assert delivery.record(conn, held, "other", deferral, None) is False
        assert delivery.record(conn, held, "w", deferral, None) is True
        row = posts.get_post(conn, held.post_id)
        assert row is not None and row["status"] == "scheduled"
        assert row["next_attempt_at"] == until and row["lease_owner"] is None
        assert recovery.release_due(conn, limit=100) == []  # not before its time


def test_requeue_by_owner_sets_step_and_next_attempt(database_url: str) -> None:
    with _conn(database_url) as conn:
        held = _publishing(conn, ["twitter"])
        assert not ledger.requeue(conn, held, "intruder", step=2, countdown=30)
        before = datetime.now(UTC)
        assert ledger.requeue(conn, held, "w", step=2, countdown=30)
        row = posts.get_post(conn, held.post_id)
        assert row is not None and row["status"] == "queued" and row["step"] == 2
        assert timedelta(seconds=25) < row["next_attempt_at"] - before < timedelta(seconds=35)
        # an early copy of the message cannot cut the wait short
        assert delivery.claim(conn, held.post_id, "early", 60) is None


def test_cancel_leaves_a_post_held_by_a_providers_scheduler_and_says_so(
    database_url: str,
) -> None:
    # rows the first release's seed service handed to PostForMe's scheduler: cancelling
    # ours would leave the provider's copy to publish
    with _conn(database_url) as conn:
        row, _ = posts.insert_post(conn, _new(
            scheduled_for=datetime.now(UTC) + timedelta(days=1)))
        conn.execute("UPDATE social_posts SET handed_to_provider = true, provider = 'PostForMe',"
                     " provider_post_id = 'sp_9' WHERE id = %s", (row["id"],))
        assert posts.cancel_post(conn, row["id"]) is False
        held = posts.get_post(conn, row["id"])
    assert held is not None and held["status"] == "scheduled"
    assert posts.cancel_refusal(held) == (
        "it was handed to PostForMe's own scheduler (post sp_9): delete it there")
