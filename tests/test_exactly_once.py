"""Exactly once against providers as strict as the real ones (issue 10's paths): real
`celery worker` and beat processes, PostgreSQL, Redis and the sandbox. Each test asserts at
the sandbox how many creates went out, and in the ledger what was recorded."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.stack import Stack, wait_for
from tests.workers import (
    calls,
    client,
    conn,
    creates,
    post,
    start_stack,
    user_with_key,
    wait_final,
)

GLOBAL_PFM = "global-pfm-" + uuid.uuid4().hex[:8]
GLOBAL_LATE = "global-late-" + uuid.uuid4().hex[:8]
# One call may take 1 + 20 s. The first release's lease (LATE's call + 30 s = 32 s here) was
# shorter than a PostForMe create could take; now it covers the slowest provider's call.
SLOW_CALLS = {"SOCIALPOST_CONNECT_TIMEOUT": "1", "POSTFORME_READ_TIMEOUT": "40",
              "LATE_READ_TIMEOUT": "1"}


@pytest.fixture(scope="module")
def stack(database_url: str, redis_url: str, sandbox_server: Any,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    env = {"POSTFORME_API_KEY": GLOBAL_PFM, "LATE_API_KEY": GLOBAL_LATE, **SLOW_CALLS}
    # The shipped worker (threads x8): the guarantees hold in the default pool.
    with start_stack(tmp_path_factory, database_url, redis_url, env, pool=None,
                     concurrency=None) as s:
        yield s


@pytest.fixture(autouse=True)
def _globals(sandbox: Any) -> None:
    sandbox.register_key("postforme", GLOBAL_PFM)
    sandbox.register_key("late", GLOBAL_LATE)


def _created(sandbox: Any, provider: str, post_id: str) -> dict[str, int]:
    """Creates the provider really performed for `post_id`, by step key."""
    stats: dict[str, int] = sandbox.stats()[provider]["by_external_id"]
    return {k: n for k, n in stats.items() if k.startswith(post_id)}


# -- 1, 2: a send that may have landed decides alone ------------------------------------------


def test_create_then_502_is_looked_up_and_adopted_never_resent(stack: Stack, sandbox: Any) -> None:
    user = user_with_key(sandbox, "postforme")
    sandbox.push_responses("postforme", [{"create_then_status": 502}])
    post_id = client().enqueue_post(user, "made, then 502", ["twitter", "threads"])
    row = wait_final(post_id)
    assert row["status"] == "posted", row
    assert calls(row) == ["ambiguous", "published"]
    assert _created(sandbox, "postforme", post_id) == {f"{post_id}-s0": 1}
    assert not creates(sandbox, "late", post_id)


def test_a_503_with_nothing_created_is_never_resent_nor_sent_elsewhere(
    stack: Stack, sandbox: Any
) -> None:
    user = user_with_key(sandbox, "postforme")
    sandbox.set_faults("postforme", error_rate=1.0, error_status=503)
    post_id = client().enqueue_post(user, "a 503 proves nothing", ["linkedin"])
    row = wait_final(post_id)
    assert row["status"] == "unconfirmed", row
    assert "does not deduplicate" in row["error_message"]
    assert calls(row) == ["ambiguous"] * 5
    assert len(creates(sandbox, "postforme", post_id)) == 1  # one create, then lookups only
    assert not creates(sandbox, "late", post_id)  # global LATE (a later step) never asked


def test_ambiguous_then_503s_on_late_stays_on_late_then_unconfirmed(
    stack: Stack, sandbox: Any
) -> None:
    # The first release's path: ambiguous, then 503 x3 fell over to the next step, which
    # sent the post again. LATE deduplicates on our key, so resending there is safe;
    # another step never is.
    user = user_with_key(sandbox, "late")
    sandbox.set_faults("late", error_rate=1.0, error_status=503)
    post_id = client().enqueue_post(user, "late is flaky", ["bluesky"])
    row = wait_final(post_id)
    assert row["status"] == "unconfirmed", row
    assert {(a["step"], a["provider"]) for a in row["attempts"]
            if a["step"] is not None} == {(1, "late")}
    assert len(creates(sandbox, "late", post_id)) >= 2  # resent on LATE under the same key
    assert not _created(sandbox, "postforme", post_id)  # never on global PostForMe


# -- 3: the lease outlasts the longest call ---------------------------------------------------


def test_a_create_slower_than_the_old_lease_is_not_taken_over(stack: Stack, sandbox: Any) -> None:
    user = user_with_key(sandbox, "postforme")
    sandbox.push_responses("postforme", [{"delay_seconds": 35, "pass": True}])
    post_id = client().enqueue_post(user, "slow but fine", ["twitter"])
    row = wait_final(post_id, timeout=120)
    assert row["status"] == "posted", row
    assert row["claim_count"] == 1  # nobody took it over while the create was out
    assert calls(row) == ["published"]
    assert _created(sandbox, "postforme", post_id) == {f"{post_id}-s0": 1}


# -- 7: one post id, one request ------------------------------------------------------------


def test_a_post_id_reused_by_another_request_is_refused_as_a_conflict(
    stack: Stack, sandbox: Any
) -> None:
    from tasks.validation import InvalidRequest
    from worker.celery_app import app

    alice, bob = user_with_key(sandbox, "postforme"), user_with_key(sandbox, "postforme")
    post_id = client().enqueue_post(alice, "alice's words", ["twitter"])
    with pytest.raises(InvalidRequest, match=r"^post_id: .* already used by a different"):
        client().enqueue_post(bob, "bob's words", ["twitter"], post_id=post_id)
    # a producer without our code (no database): the worker refuses it, telling nothing
    answer = app.send_task("social.publish_post", kwargs={
        "user_id": bob, "content": "bob's words", "platforms": ["twitter"],
        "post_id": post_id}).get(timeout=30)
    assert answer["status"] == "failed" and answer["conflict"] is True
    assert "user_id, content differ" in answer["error"] and "alice" not in answer["error"]
    row = wait_final(post_id)
    assert (row["status"], str(row["user_id"]), row["content"]) == (
        "posted", alice, "alice's words")
    assert sum(_created(sandbox, "postforme", post_id).values()) == 1


def test_editing_a_campaign_batch_makes_a_new_post(stack: Stack, sandbox: Any) -> None:
    from db import campaigns

    user = user_with_key(sandbox, "postforme")
    with conn() as c:
        cid = campaigns.create_campaign(c, user, "edits", {"batches": [{"caption": "v1"}]})
    first = client().enqueue_campaign(str(cid), ["twitter"])[0]["post_id"]
    again = client().enqueue_campaign(str(cid), ["twitter"])[0]["post_id"]
    with conn() as c:
        campaigns.update_calendar(c, cid, {"batches": [{"caption": "v2"}]})
    edited = client().enqueue_campaign(str(cid), ["twitter"])[0]["post_id"]
    assert first == again != edited
    assert (wait_final(first)["content"], wait_final(edited)["content"]) == ("v1", "v2")


# -- 8: cancel tells the truth --------------------------------------------------------------


def test_cancel_refuses_a_post_already_published_somewhere(stack: Stack, sandbox: Any) -> None:
    from db import posts

    user = user_with_key(sandbox, "postforme")
    sandbox.set_faults("postforme", missing_platforms=["bluesky"])  # bluesky goes to LATE
    sandbox.set_faults("late", rate_limit_rate=1.0, retry_after=60)  # ...and waits there
    post_id = client().enqueue_post(user, "half out", ["twitter", "bluesky"])

    def twitter_posted() -> dict[str, Any] | None:
        row = post(post_id)
        if row is None or row["status"] != "queued":
            return None
        done = {t["platform"]: t["status"] for t in row["targets"]}
        return row if done["twitter"] == "posted" else None

    wait_for(twitter_posted, 60, "twitter posted, bluesky waiting")
    with conn() as c:
        assert posts.cancel_post(c, post_id) is False
        row = posts.get_post(c, post_id)
    assert row is not None and posts.cancel_refusal(row) == "it is already published on twitter"
    assert row["status"] == "queued"


# -- 9: only a refused key is invalid -------------------------------------------------------


def test_a_late_403_for_a_plan_limit_falls_over_and_keeps_the_key(
    stack: Stack, sandbox: Any
) -> None:
    from tasks.accounts import refresh_all

    user = user_with_key(sandbox, "late")
    sandbox.push_responses("late", [{"status": 403}])  # "Plan limit reached: ..."
    post_id = client().enqueue_post(user, "over the plan", ["twitter"])
    row = wait_final(post_id)
    assert row["status"] == "posted" and row["attempts"][-1]["provider"] == "postforme"
    with conn() as c:
        key = c.execute("SELECT invalid_at FROM user_social_credentials WHERE user_id = %s",
                        (user,)).fetchone()
        assert key["invalid_at"] is None
        # a key marked invalid earlier is cleared once it works again
        c.execute("UPDATE user_social_credentials SET invalid_at = now(), invalid_reason = 'x'"
                  " WHERE user_id = %s", (user,))
    assert refresh_all(user)["refreshed"] == 1
    with conn() as c:
        key = c.execute("SELECT invalid_at FROM user_social_credentials WHERE user_id = %s",
                        (user,)).fetchone()
    assert key["invalid_at"] is None


# -- 6: an accepted request is never dropped ------------------------------------------------


def test_a_request_intake_cannot_take_is_parked_and_replayed(
    stack: Stack, sandbox: Any
) -> None:
    import subprocess
    import sys

    from worker.celery_app import app

    user = user_with_key(sandbox, "postforme")
    post_id = str(uuid.uuid4())
    with conn() as c:  # a schema fault: every insert fails, and not as an outage
        c.execute("ALTER TABLE post_targets RENAME TO post_targets_away")
    try:
        app.send_task("social.publish_post", kwargs={
            "user_id": user, "content": "parked", "platforms": ["twitter"],
            "post_id": post_id})
        wait_for(lambda: "parked in social.dead_letter" in stack.logs() or None, 30,
                 "the request to be parked")
    finally:
        with conn() as c:
            c.execute("ALTER TABLE post_targets_away RENAME TO post_targets")
    assert post(post_id) is None
    listed = subprocess.run([sys.executable, "-m", "worker.cli", "dead-letters", "list"],
                            capture_output=True, text=True, timeout=60, env=stack.env)
    assert post_id in listed.stdout, listed.stderr
    replayed = subprocess.run([sys.executable, "-m", "worker.cli", "dead-letters", "replay"],
                              capture_output=True, text=True, timeout=60, env=stack.env)
    assert "replayed 1 request" in replayed.stderr, replayed.stderr
    assert wait_final(post_id)["status"] == "posted"
    assert _created(sandbox, "postforme", post_id) == {f"{post_id}-s0": 1}


def test_the_client_writes_the_row_first_so_a_lost_message_still_posts(
    stack: Stack, sandbox: Any
) -> None:
    from celery import Celery

    from tasks.client import PublishClient

    user = user_with_key(sandbox, "postforme")
    dead = Celery("nowhere", broker="redis://127.0.0.1:9/0", set_as_current=False)
    dead.conf.broker_connection_retry = False
    dead.conf.task_publish_retry = False
    post_id = PublishClient(dead).enqueue_post(user, "no broker, still posted", ["twitter"])
    assert post(post_id) is not None  # in PostgreSQL, though no message was ever sent
    assert wait_final(post_id, timeout=60)["status"] == "posted"  # the recovery sweep
    assert _created(sandbox, "postforme", post_id) == {f"{post_id}-s0": 1}

