"""The worker pipeline end to end: real Redis, PostgreSQL, `celery worker` and `celery beat`
subprocesses, and the provider sandbox. Every assertion reads the ledger or the sandbox."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.flow_state import clear_flow_state
from tests.stack import Stack, wait_for
from tests.workers import calls, save_key, start_stack, wait_final
from tests.workers import client as new_client
from tests.workers import conn as db_conn
from tests.workers import post as read_post

GLOBAL_PFM = "global-pfm-" + uuid.uuid4().hex[:8]
GLOBAL_LATE = "global-late-" + uuid.uuid4().hex[:8]


@pytest.fixture(scope="module")
def stack(
    database_url: str, redis_url: str, sandbox_server: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    env = {"POSTFORME_API_KEY": GLOBAL_PFM, "LATE_API_KEY": GLOBAL_LATE,
           "SOCIALPOST_RELEASE_INTERVAL": "0.5"}
    # The shipped worker (threads x8): the guarantees hold in the default pool.
    with start_stack(tmp_path_factory, database_url, redis_url, env, pool=None,
                     concurrency=None) as s:
        yield s


def _wait_ids(post_id: str, platforms: set[str], timeout: float = 20) -> dict[str, Any]:
    """PostForMe reports platform ids after accepting: they arrive shortly after `posted`."""

    def filled() -> dict[str, Any] | None:
        row = read_post(post_id)
        return row if row and set(row["platform_post_ids"] or {}) == platforms else None

    return wait_for(filled, timeout, f"platform ids of post {post_id}")


def test_producer_without_our_code_enqueues_by_name(
    stack: Stack, sandbox: Any, redis_url: str, tmp_path: Path
) -> None:
    user, key = str(uuid.uuid4()), "user-pfm-" + uuid.uuid4().hex
    sandbox.register_key("postforme", key, ["twitter", "linkedin"])
    save_key(user, "postforme", key)
    producer = textwrap.dedent(f"""
        import json, sys
        from celery import Celery
        app = Celery(broker={redis_url!r}, backend={redis_url!r})
        r = app.send_task("social.publish_post", kwargs={{
            "user_id": {user!r}, "content": "hello from another service",
            "platforms": ["twitter", "linkedin"]}})
        accepted = r.get(timeout=30)
        ours = [m for m in sys.modules if m.split(".")[0] in ("tasks", "db", "providers", "worker")]
        print(json.dumps({{"accepted": accepted, "ours": ours}}))
    """)
    out = subprocess.run(
        [sys.executable, "-c", producer], cwd=tmp_path, capture_output=True, text=True,
        timeout=60, env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
    )
    assert out.returncode == 0, out.stderr
    answer = json.loads(out.stdout.strip().splitlines()[-1])
    assert answer["ours"] == []
    assert answer["accepted"]["status"] == "queued"
    post = wait_final(answer["accepted"]["post_id"])
    assert post["status"] == "posted", post
    assert post["provider"] == "PostForMe"
    post = _wait_ids(post["id"], {"twitter", "linkedin"})
    assert all(u.startswith("http") for u in post["platform_post_urls"].values())
    assert calls(post) == ["published"]


def test_failover_user_postforme_401_user_late_503_global_postforme_posts(
    stack: Stack, sandbox: Any
) -> None:
    user = str(uuid.uuid4())
    save_key(user, "postforme", "revoked-" + uuid.uuid4().hex)  # unknown to the sandbox: 401
    late_key = "user-late-" + uuid.uuid4().hex
    sandbox.register_key("late", late_key)
    save_key(user, "late", late_key)
    # 429s prove nothing was created (a 5xx would not: the post might exist at LATE)
    sandbox.set_faults("late", rate_limit_rate=1.0, retry_after=0.1)
    sandbox.register_key("postforme", GLOBAL_PFM)

    post_id = new_client().enqueue_post(user, "failover walk", ["twitter", "bluesky"])
    post = wait_final(post_id, timeout=120)

    assert post["status"] == "posted", post
    steps = [(a["step"], a["provider"], a["credential_source"], a["outcome"])
             for a in post["attempts"] if a["step"] is not None]
    assert steps[0] == (0, "postforme", "user", "credential_rejected")
    assert {s[3] for s in steps if s[0] == 1} == {"rate_limited"}
    assert steps[-1] == (2, "postforme", "global", "published")
    assert {t["credential_source"] for t in post["targets"]} == {"global"}
    with db_conn() as conn:
        row = conn.execute(
            "SELECT invalid_at FROM user_social_credentials WHERE user_id = %s"
            " AND provider = 'postforme'", (user,)).fetchone()
    assert row["invalid_at"] is not None  # the refused key is skipped from now on
    # exactly one create at the provider for this post
    assert sandbox.stats()["postforme"]["by_external_id"].get(f"{post_id}-s2") == 1


def test_platform_only_late_serves_goes_to_late_while_others_go_to_postforme(
    stack: Stack, sandbox: Any
) -> None:
    user = str(uuid.uuid4())
    pfm, late = "user-pfm-" + uuid.uuid4().hex, "user-late-" + uuid.uuid4().hex
    sandbox.register_key("postforme", pfm, ["twitter", "linkedin"])
    sandbox.register_key("late", late, ["bluesky"])
    save_key(user, "postforme", pfm)
    save_key(user, "late", late)

    post_id = new_client().enqueue_post(user, "two providers", ["twitter", "linkedin", "bluesky"])
    post = wait_final(post_id)

    assert post["status"] == "posted", post
    by_platform = {t["platform"]: t for t in post["targets"]}
    assert by_platform["twitter"]["provider"] == "postforme"
    assert by_platform["linkedin"]["provider"] == "postforme"
    assert by_platform["bluesky"]["provider"] == "late"
    assert all(t["status"] == "posted" for t in post["targets"])
    post = _wait_ids(post_id, {"twitter", "linkedin", "bluesky"})
    assert post["provider"] == "PostForMe"  # the first published target's provider


def test_rate_limit_retry_after_is_honoured(stack: Stack, sandbox: Any) -> None:
    user, key = str(uuid.uuid4()), "user-pfm-" + uuid.uuid4().hex
    sandbox.register_key("postforme", key, ["twitter"])
    save_key(user, "postforme", key)
    sandbox.push_responses("postforme", [{"status": 429, "retry_after": 2}])

    post_id = new_client().enqueue_post(user, "patience", ["twitter"])
    post = wait_final(post_id)

    assert post["status"] == "posted", post
    first, second = post["attempts"][0], post["attempts"][1]
    assert first["outcome"] == "rate_limited" and second["outcome"] == "published"
    gap = (second["created_at"] - first["created_at"]).total_seconds()
    # created_at is when each attempt was recorded: the retry's call starts >= 2 s later
    assert gap >= 2.0, gap


def test_scheduled_post_is_released_on_time_and_a_cancelled_one_never_sent(
    stack: Stack, sandbox: Any
) -> None:
    user, key = str(uuid.uuid4()), "user-pfm-" + uuid.uuid4().hex
    sandbox.register_key("postforme", key, ["linkedin"])
    save_key(user, "postforme", key)
    when = datetime.now(UTC) + timedelta(seconds=3)
    client = new_client()
    kept = client.enqueue_post(user, "on time", ["linkedin"], scheduled_for=when)
    dropped = client.enqueue_post(user, "never", ["linkedin"], scheduled_for=when)
    wait_for(lambda: (read_post(dropped) or {}).get("status") == "scheduled", 10, "acceptance")
    assert client.cancel(dropped) is True

    post = wait_final(kept, timeout=20)
    assert post["status"] == "posted", post
    sent_at = post["attempts"][0]["created_at"]
    assert sent_at >= when
    assert (sent_at - when).total_seconds() <= 5.0
    assert read_post(dropped)["status"] == "cancelled"  # type: ignore[index]
    by_ext = sandbox.stats()["postforme"]["by_external_id"]
    assert not any(k.startswith(dropped) for k in by_ext)


def test_same_post_id_twice_publishes_once(stack: Stack, sandbox: Any) -> None:
    user, key = str(uuid.uuid4()), "user-pfm-" + uuid.uuid4().hex
    sandbox.register_key("postforme", key, ["threads"])
    save_key(user, "postforme", key)
    post_id = str(uuid.uuid4())
    client = new_client()
    for _ in range(3):
        client.enqueue_post(user, "once", ["threads"], post_id=post_id)
    post = wait_final(post_id)
    assert post["status"] == "posted"
    wait_for(lambda: True, 1, "stragglers")
    assert sandbox.stats()["postforme"]["by_external_id"] == {f"{post_id}-s0": 1}


def test_publish_batch_from_a_campaign_row_and_bad_input_refused(
    stack: Stack, sandbox: Any
) -> None:
    from db import campaigns
    from worker.celery_app import app

    user, key = str(uuid.uuid4()), "user-pfm-" + uuid.uuid4().hex
    sandbox.register_key("postforme", key, ["twitter", "facebook"])
    save_key(user, "postforme", key)
    with db_conn() as conn:
        cid = campaigns.create_campaign(conn, user, "launch", {"batches": [
            {"caption": "batch one"}, {"caption": "batch two"}, {"caption": "batch three"}]})
    accepted = app.send_task("social.publish_batch", kwargs={
        "user_id": user, "campaign_id": str(cid), "batch_number": 2,
        "platforms": ["twitter", "facebook"]}).get(timeout=30)
    post = wait_final(accepted["post_id"])
    assert post["status"] == "posted" and post["content"] == "batch two"
    assert post["campaign_id"] == cid and post["batch_number"] == 2

    refused = app.send_task("social.publish_post", kwargs={
        "user_id": user, "content": "x", "platforms": ["myspace"]}).get(timeout=30)
    assert refused["status"] == "failed"
    assert "platforms" in refused["error"] and "twitter" in refused["error"]
    missing = app.send_task("social.publish_batch", kwargs={
        "user_id": user, "campaign_id": str(cid), "batch_number": 9,
        "platforms": ["twitter"]}).get(timeout=30)
    assert missing["status"] == "failed" and "9" in missing["error"]


def test_enqueue_campaign_of_fifty_batches(stack: Stack, sandbox: Any) -> None:
    from db import campaigns

    user, key = str(uuid.uuid4()), "user-pfm-" + uuid.uuid4().hex
    sandbox.register_key("postforme", key, ["twitter", "linkedin"])
    save_key(user, "postforme", key)
    start = datetime.now(UTC)
    batches = [
        {"caption": f"day {n}",
         **({"scheduled_for": (start + timedelta(seconds=2 + n % 5)).isoformat()}
            if n % 2 else {})}
        for n in range(1, 51)
    ]
    batches.append({"caption": "y" * 400})  # too long for twitter: refused, and recorded
    with db_conn() as conn:
        cid = campaigns.create_campaign(conn, user, "calendar", {"batches": batches})
    rows = new_client().enqueue_campaign(str(cid), ["twitter", "linkedin"])
    assert len(rows) == 51 and all(r["sent"] for r in rows)
    refused = rows.pop()
    assert "twitter" in refused["error"] and "content" in refused["error"], refused
    post = wait_final(refused["post_id"])
    assert (post["status"], post["batch_number"]) == ("failed", 51)
    assert post["error_message"] == refused["error"]
    for r in rows:
        post = wait_final(r["post_id"], timeout=60)
        assert post["status"] == "posted", post
        if r["scheduled_for"] is not None:
            assert post["attempts"][0]["created_at"] >= r["scheduled_for"]
    creates = sandbox.stats()["postforme"]["by_external_id"]
    assert len(creates) == 50 and set(creates.values()) == {1}


def test_campaign_publish_include_past_posts_a_late_batch_now(
    stack: Stack, sandbox: Any
) -> None:
    """`socialpost campaign publish --include-past` (enqueue_campaign(skip_past=False))
    with a batch an hour late: it publishes now, instead of being refused by the worker
    for the calendar time it put back."""
    from db import campaigns

    user, key = str(uuid.uuid4()), "user-pfm-" + uuid.uuid4().hex
    sandbox.register_key("postforme", key, ["twitter"])
    save_key(user, "postforme", key)
    an_hour_ago = datetime.now(UTC) - timedelta(hours=1)
    with db_conn() as conn:
        cid = campaigns.create_campaign(conn, user, "late", {"batches": [
            {"caption": "an hour late", "scheduled_for": an_hour_ago.isoformat()}]})
    def publish(*flags: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "worker.cli", "campaign", "publish", str(cid),
             "-p", "twitter", "--no-wait", *flags],
            capture_output=True, text=True, timeout=60, env=stack.env,
        )

    skipped = publish()  # by default a late batch is left alone
    assert skipped.returncode == 0, skipped.stderr
    assert "skipped 1 past batch" in skipped.stderr
    included = publish("--include-past")
    assert included.returncode == 0, included.stderr
    row = next(line.split() for line in included.stdout.splitlines()
               if line.startswith("1 "))
    post_id = row[1]
    assert uuid.UUID(post_id) and row[-1] == "yes"

    post = wait_final(post_id)
    assert post["status"] == "posted", post
    assert post["content"] == "an hour late" and post["batch_number"] == 1
    assert post["attempts"][0]["created_at"] > an_hour_ago + timedelta(minutes=59)
    assert sandbox.stats()["postforme"]["by_external_id"] == {f"{post_id}-s0": 1}


def test_refresh_connected_platforms_marks_a_refused_key_invalid_and_goes_on(
    stack: Stack, sandbox: Any
) -> None:
    from worker.celery_app import app

    good_user, bad_user = str(uuid.uuid4()), str(uuid.uuid4())
    good = "user-pfm-" + uuid.uuid4().hex
    sandbox.register_key("postforme", good, ["twitter", "pinterest"])
    save_key(good_user, "postforme", good)
    save_key(bad_user, "postforme", "revoked-" + uuid.uuid4().hex)

    # For everyone: handed out as `social.refresh_credentials` pages, refreshed by workers.
    handed = app.send_task("social.refresh_connected_platforms").get(timeout=30)
    assert handed["pages"] >= 1

    def refreshed() -> dict[str, Any] | None:
        with db_conn() as conn:
            rows = {
                str(r["user_id"]): r for r in conn.execute(
                    "SELECT user_id, connected_platforms, updated_at, invalid_at"
                    " FROM user_social_credentials WHERE user_id = ANY(%s)",
                    ([good_user, bad_user],))
            }
        done = rows[good_user]["connected_platforms"] and rows[bad_user]["invalid_at"]
        return rows if done else None

    rows = wait_for(refreshed, 30, "both credentials refreshed")
    assert sorted(rows[good_user]["connected_platforms"]) == ["pinterest", "twitter"]
    assert rows[good_user]["invalid_at"] is None
    assert rows[bad_user]["invalid_at"] is not None
    # For one user: inline, its summary in the answer.
    one = app.send_task("social.refresh_connected_platforms",
                        kwargs={"user_id": good_user}).get(timeout=30)
    assert one == {"refreshed": 1, "invalid": 0, "paced": 0, "errors": 0}


def test_rate_limit_longer_than_the_countdown_cap_goes_back_to_scheduled(
    stack: Stack, sandbox: Any
) -> None:
    user, key = str(uuid.uuid4()), "user-pfm-" + uuid.uuid4().hex
    sandbox.register_key("postforme", key, ["linkedin"])
    save_key(user, "postforme", key)
    sandbox.push_responses("postforme", [{"status": 429, "retry_after": 900}])

    post_id = new_client().enqueue_post(user, "wait for the reset", ["linkedin"])

    def deferred() -> dict[str, Any] | None:
        row = read_post(post_id)
        return row if row and row["status"] == "scheduled" else None

    row = wait_for(deferred, 20, "the post to be deferred")
    wait_left = (row["next_attempt_at"] - datetime.now(UTC)).total_seconds()
    assert 880 < wait_left <= 901, wait_left  # held in PostgreSQL, not in a Celery countdown
    assert calls(row) == ["rate_limited"]

    # The reset has come (for the fleet's pacer too, which held the key since the 429):
    # beat releases it and it goes out once.
    clear_flow_state()
    with db_conn() as conn:
        conn.execute("UPDATE social_posts SET next_attempt_at = now() WHERE id = %s", (post_id,))
    post = wait_final(post_id, timeout=20)
    assert post["status"] == "posted"
    assert sandbox.stats()["postforme"]["by_external_id"] == {f"{post_id}-s0": 1}
