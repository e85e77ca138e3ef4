"""The ledger: idempotent insert, claim races, releasing due posts, outcomes."""

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

from db import posts, states
from db.errors import InvalidInput, InvalidTransition, NotFound
from db.posts import AttemptRecord, NewPost, TargetUpdate


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
        ids = [posts.insert_post(conn, _new())[0]["id"] for _ in range(25)]
    wins: list[tuple[str, uuid.UUID]] = []
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
                    row = posts.claim_post(conn, pid, f"worker-{n}", 60)
                    if row is not None:
                        with lock:
                            wins.append((f"worker-{n}", row["id"]))
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
    assert all(r["lease_owner"] == owner_of[r["id"]] for r in rows)


def test_claim_returns_pending_platforms_and_respects_leases(database_url: str) -> None:
    with _conn(database_url) as conn:
        row, _ = posts.insert_post(conn, _new(platforms=["threads", "bluesky", "twitter"]))
        pid = row["id"]
        claimed = posts.claim_post(conn, pid, "a", 0.2)
        assert claimed is not None and claimed["pending_platforms"] == [
            "threads", "bluesky", "twitter"]
        assert posts.claim_post(conn, pid, "b", 30) is None  # lease still held
        assert posts.extend_lease(conn, pid, "a", 0.2) is True
        assert posts.extend_lease(conn, pid, "b", 30) is False
        posts.record_targets(conn, pid, [TargetUpdate("threads", "posted", "late", "user",
                                                      "lp", "t1", "https://threads/t1")])
        time.sleep(0.3)
        retaken = posts.claim_post(conn, pid, "b", 30)  # expired lease: taken over
        assert retaken is not None and retaken["lease_owner"] == "b"
        assert retaken["claim_count"] == 2
        assert retaken["pending_platforms"] == ["bluesky", "twitter"]
        assert posts.extend_lease(conn, pid, "a", 30) is False  # the old owner lost it
        with pytest.raises(InvalidInput):
            posts.claim_post(conn, pid, "c", 0)
        with pytest.raises(InvalidInput):
            posts.claim_post(conn, "nope", "c", 10)


def _insert_scheduled(conn: psycopg.Connection[dict[str, Any]], n: int, when: datetime,
                      user: uuid.UUID) -> list[uuid.UUID]:
    rows = conn.execute(
        """INSERT INTO social_posts (user_id, content, platforms, status, scheduled_for)
           SELECT %s, 'scheduled ' || g, '{twitter}', 'scheduled',
                  %s - (g * interval '1 second')
           FROM generate_series(1, %s) g RETURNING id""",
        (user, when, n)).fetchall()
    return [r["id"] for r in rows]


def test_two_releasers_release_each_due_post_once(database_url: str) -> None:
    user = uuid.uuid4()
    with _conn(database_url) as conn:
        due = _insert_scheduled(conn, 3000, datetime.now(UTC) - timedelta(seconds=1), user)
        future = _insert_scheduled(conn, 50, datetime.now(UTC) + timedelta(days=30), user)
    released: list[list[uuid.UUID]] = [[], []]
    barrier = threading.Barrier(2)

    def releaser(i: int) -> None:
        with _conn(database_url) as conn:
            barrier.wait()
            while batch := posts.release_due(conn, limit=100):
                released[i].extend(batch)

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
            cur.execute("EXPLAIN " + posts.RELEASE_QUERY.format(now="%(now)s"),
                        {"limit": 500, "from": ["scheduled"], "now": datetime.now(UTC)})
            plan = "\n".join(r["QUERY PLAN"] for r in cur.fetchall())
    assert "social_posts_due_idx" in plan, plan
    assert "Seq Scan on social_posts" not in plan, plan


def test_find_stalled_and_requeue(database_url: str) -> None:
    with _conn(database_url) as conn:
        queued, _ = posts.insert_post(conn, _new())
        fresh, _ = posts.insert_post(conn, _new())
        busy, _ = posts.insert_post(conn, _new())
        held, _ = posts.insert_post(conn, _new())
        conn.execute("UPDATE social_posts SET queued_at = now() - interval '1 hour'"
                     " WHERE id = %s", (queued["id"],))
        assert posts.claim_post(conn, busy["id"], "dead-worker", 0.05)
        assert posts.claim_post(conn, held["id"], "live-worker", 300)
        time.sleep(0.1)
        stalled = {r["id"]: r for r in posts.find_stalled(conn, timedelta(minutes=5), 10000)}
        assert queued["id"] in stalled and busy["id"] in stalled
        assert fresh["id"] not in stalled and held["id"] not in stalled
        assert posts.requeue_expired(conn, busy["id"]) is True
        row = posts.get_post(conn, busy["id"])
        assert row is not None and row["status"] == "queued" and row["lease_owner"] is None
        assert posts.requeue_expired(conn, queued["id"]) is True  # queued_at refreshed
        assert posts.requeue_expired(conn, held["id"]) is False  # lease still valid
        again = {r["id"] for r in posts.find_stalled(conn, timedelta(minutes=5), 10000)}
        assert queued["id"] not in again and busy["id"] not in again


def _publishing(conn: psycopg.Connection[dict[str, Any]], platforms: list[str]) -> uuid.UUID:
    row, _ = posts.insert_post(conn, _new(platforms=platforms))
    assert posts.claim_post(conn, row["id"], "w", 60) is not None
    return row["id"]


def test_finish_derives_status_from_targets(database_url: str) -> None:
    with _conn(database_url) as conn:
        # all posted -> posted; provider ids from the first platform in the post's order
        pid = _publishing(conn, ["linkedin", "twitter"])
        posts.record_targets(conn, pid, [
            TargetUpdate("twitter", "posted", "late", "global", "late-1", "tw1", "https://x/1"),
            TargetUpdate("linkedin", "posted", "postforme", "user", "pfm-1", "li1", "https://l/1"),
        ])
        aid = posts.record_attempt(conn, AttemptRecord(
            pid, 0, "postforme", "user", ["linkedin", "twitter"], "ok", idempotency_key=str(pid),
            http_status=200, latency_ms=40, provider_post_id="pfm-1"))
        assert aid > 0
        done = posts.finish_post(conn, pid, owner="w")
        assert done["status"] == "posted" and done["posted_at"] is not None
        assert (done["provider"], done["provider_post_id"]) == ("postforme", "pfm-1")
        assert done["platform_post_ids"] == {"twitter": "tw1", "linkedin": "li1"}
        assert done["platform_post_urls"] == {"twitter": "https://x/1", "linkedin": "https://l/1"}
        assert done["error_message"] is None and done["lease_owner"] is None

        pid = _publishing(conn, ["twitter", "instagram"])
        posts.record_targets(conn, pid, [
            TargetUpdate("twitter", "posted", "postforme", "user", "p1", "t1"),
            TargetUpdate("instagram", "failed", error="HTTP 400: media required"),
        ])
        done = posts.finish_post(conn, pid)
        assert done["status"] == "partial"
        assert done["error_message"] == "instagram: HTTP 400: media required"

        pid = _publishing(conn, ["twitter", "instagram"])
        posts.record_targets(conn, pid, [TargetUpdate("twitter", "failed", error="e1"),
                                         TargetUpdate("instagram", "failed", error="e2")])
        done = posts.finish_post(conn, pid)
        assert done["status"] == "failed" and done["error_message"] == "twitter: e1; instagram: e2"
        assert done["posted_at"] is None and done["platform_post_ids"] == {}

        pid = _publishing(conn, ["twitter", "instagram"])
        posts.record_targets(conn, pid, [TargetUpdate("twitter", "posted", "late"),
                                         TargetUpdate("instagram", "unconfirmed", error="timeout")])
        assert posts.finish_post(conn, pid)["status"] == "unconfirmed"

        pid = _publishing(conn, ["twitter", "instagram"])
        posts.record_targets(conn, pid, [TargetUpdate("twitter", "posted", "late")])
        with pytest.raises(InvalidTransition, match="instagram"):
            posts.finish_post(conn, pid)
        assert _status(conn, pid) == "publishing"
        posts.record_targets(conn, pid, [TargetUpdate("instagram", "failed", error="x")])
        with pytest.raises(InvalidTransition, match="lease"):
            posts.finish_post(conn, pid, owner="somebody-else")
        assert _status(conn, pid) == "publishing"
        with pytest.raises(NotFound):
            posts.finish_post(conn, uuid.uuid4())


def test_a_posted_target_is_never_changed(database_url: str) -> None:
    with _conn(database_url) as conn:
        pid = _publishing(conn, ["twitter"])
        assert posts.record_targets(conn, pid, [TargetUpdate("twitter", "posted", "late",
                                                             platform_post_id="t1")]) == 1
        assert posts.record_targets(conn, pid, [TargetUpdate("twitter", "failed",
                                                             error="late echo")]) == 0
        target = posts.get_post(conn, pid)["targets"][0]  # type: ignore[index]
        assert target["status"] == "posted" and target["platform_post_id"] == "t1"
        with pytest.raises(InvalidInput, match="status"):
            posts.record_targets(conn, pid, [TargetUpdate("twitter", "done")])


def test_final_status_never_changes(database_url: str) -> None:
    with _conn(database_url) as conn:
        pid = _publishing(conn, ["twitter"])
        posts.record_targets(conn, pid, [TargetUpdate("twitter", "posted", "late")])
        posts.finish_post(conn, pid, owner="w")
        later = datetime.now(UTC) + timedelta(hours=1)
        assert posts.claim_post(conn, pid, "x", 30) is None
        assert posts.cancel_post(conn, pid) is False
        assert posts.fail_post(conn, pid, "nope") is False
        assert posts.defer_post(conn, pid, later, "429") is False
        assert posts.requeue_expired(conn, pid) is False
        with pytest.raises(InvalidTransition, match="'posted'"):
            posts.finish_post(conn, pid)
        assert _status(conn, pid) == "posted"
    for final in states.FINAL:
        for target in states.STATUSES:
            assert not states.can_transition(final, target)


def test_cancel_defer_fail(database_url: str) -> None:
    with _conn(database_url) as conn:
        sched, _ = posts.insert_post(conn, _new(
            scheduled_for=datetime.now(UTC) + timedelta(days=365)))
        assert posts.cancel_post(conn, sched["id"]) is True
        row = posts.get_post(conn, sched["id"])
        assert row is not None and row["status"] == "cancelled"
        assert {t["status"] for t in row["targets"]} == {"cancelled"}
        assert posts.cancel_post(conn, sched["id"]) is False

        pid = _publishing(conn, ["twitter"])
        assert posts.cancel_post(conn, pid) is False  # too late: it is being sent
        until = datetime.now(UTC) + timedelta(days=365, hours=2)
        with pytest.raises(InvalidInput, match="until"):
            posts.defer_post(conn, pid, datetime(2031, 1, 1), "429")
        assert posts.defer_post(conn, pid, until, "rate limited", owner="other") is False
        assert posts.defer_post(conn, pid, until, "rate limited", owner="w") is True
        row = posts.get_post(conn, pid)
        assert row is not None and row["status"] == "scheduled"
        assert row["scheduled_for"] == until and row["lease_owner"] is None

        pid = _publishing(conn, ["twitter", "bluesky"])
        posts.record_targets(conn, pid, [TargetUpdate("twitter", "posted", "late")])
        assert posts.fail_post(conn, pid, "no credentials configured", owner="w") is True
        row = posts.get_post(conn, pid)
        assert row is not None and row["status"] == "failed"
        assert {t["platform"]: t["status"] for t in row["targets"]} == {
            "twitter": "posted", "bluesky": "failed"}


def test_requeue_post_by_owner(database_url: str) -> None:
    with _conn(database_url) as conn:
        pid = _publishing(conn, ["twitter"])
        assert posts.requeue_post(conn, pid, "intruder") is False
        soon = datetime.now(UTC) + timedelta(seconds=30)
        assert posts.set_step(conn, pid, 2, next_attempt_at=soon, owner="w") is True
        assert posts.requeue_post(conn, pid, "w", next_attempt_at=soon) is True
        row = posts.get_post(conn, pid)
        assert row is not None and row["status"] == "queued" and row["step"] == 2
        assert row["next_attempt_at"] == soon
