"""Confirmed outcomes (issue 11), end to end: real workers and beat (its sweep asks the
providers), PostgreSQL, Redis and a sandbox as asynchronous as the real services.
A target is `posted` only once its platform said so."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.stack import Stack, wait_for
from tests.workers import client, creates, post, start_stack, user_with_key, wait_final

GLOBAL_LATE = "global-late-" + uuid.uuid4().hex[:8]
FAST = {"SOCIALPOST_RESULTS_INTERVAL": "0.5", "SOCIALPOST_RESULTS_EVERY": "0.5",
        "SOCIALPOST_ACCEPTED_DEADLINE": "6", "SOCIALPOST_REVISION_EVERY": "1",
        "LATE_API_KEY": GLOBAL_LATE}


@pytest.fixture(scope="module")
def stack(database_url: str, redis_url: str, sandbox_server: Any,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with start_stack(tmp_path_factory, database_url, redis_url, FAST) as s:
        yield s


@pytest.fixture(autouse=True)
def _late(sandbox: Any) -> None:
    sandbox.register_key("late", GLOBAL_LATE)


def _targets(row: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {t["platform"]: t for t in row["targets"]}


def test_accepted_then_refused_by_instagram_ends_failed_with_its_reason(
    stack: Stack, sandbox: Any
) -> None:
    user = user_with_key(sandbox, "postforme")
    sandbox.set_faults("postforme", result_delay_seconds=1,
                       fail_platforms={"instagram": "auth_expired"})
    image = f"{sandbox.url}/_sandbox/sample/image.jpg"
    post_id = client().enqueue_post(user, "a picture", ["instagram"], media_urls=[image])

    def accepted() -> dict[str, Any] | None:
        row = post(post_id)
        return row if row and _targets(row)["instagram"]["status"] == "accepted" else None

    row = wait_for(accepted, 30, "the create to be accepted")
    assert row["status"] == "publishing"  # not posted before the platform answers
    row = wait_final(post_id)
    target = _targets(row)["instagram"]
    assert (row["status"], target["status"]) == ("failed", "failed")
    assert "refused by the platform" in target["error"]
    assert not creates(sandbox, "late", post_id)  # a refused content is not tried elsewhere


def test_a_provider_side_failure_on_bluesky_goes_on_through_late_alone(
    stack: Stack, sandbox: Any
) -> None:
    # Pinterest needs an image and YouTube exactly one video, so no single post can go to
    # all nine; with one video, every other platform takes it.
    user = user_with_key(sandbox, "postforme")
    sandbox.set_faults("postforme", fail_platforms={"bluesky": "platform_error"})
    video = f"{sandbox.url}/_sandbox/sample/video.mp4"
    platforms = ["twitter", "linkedin", "instagram", "facebook", "tiktok", "threads",
                 "bluesky", "youtube"]
    required = {"tiktok": {"content_preview_confirmed": True, "express_consent_given": True},
                "youtube": {"title": "everywhere"}}
    post_id = client().enqueue_post(user, "everywhere", platforms, media_urls=[video],
                                    overrides=required)
    row = wait_final(post_id, timeout=120)
    assert row["status"] == "posted", row
    targets = _targets(row)
    assert {p: t["provider"] for p, t in targets.items()} == {
        **dict.fromkeys(platforms, "postforme"), "bluesky": "late"}
    pfm, late = creates(sandbox, "postforme", post_id), creates(sandbox, "late", post_id)
    assert len(pfm) == 1 and len(late) == 1
    assert late[0]["platforms"] == ["bluesky"]
    [fell] = [a for a in row["attempts"] if a["outcome"] == "failed_at_provider"]
    assert fell["platforms"] == ["bluesky"] and "failed at the provider" in fell["error"]


def test_a_late_target_pending_at_create_is_posted_only_once_published(
    stack: Stack, sandbox: Any
) -> None:
    user = user_with_key(sandbox, "late")
    sandbox.set_faults("late", pending_platforms=["twitter"], pending_seconds=2)
    post_id = client().enqueue_post(user, "wait for it", ["twitter"])

    def accepted() -> dict[str, Any] | None:
        row = post(post_id)
        return row if row and _targets(row)["twitter"]["status"] == "accepted" else None

    early = wait_for(accepted, 30, "the target to be accepted")
    assert _targets(early)["twitter"]["platform_post_url"] is None
    row = wait_final(post_id)
    target = _targets(row)["twitter"]
    assert (row["status"], target["status"]) == ("posted", "posted")
    assert target["platform_post_url"] and target["published_at"] is not None
    assert row["posted_at"] == target["published_at"]  # the platform's time, not ours


def test_a_postforme_post_stuck_in_processing_is_unconfirmed_after_the_deadline(
    stack: Stack, sandbox: Any
) -> None:
    user = user_with_key(sandbox, "postforme")
    sandbox.set_faults("postforme", stuck_rate=1.0)
    post_id = client().enqueue_post(user, "into the void", ["linkedin"])
    row = wait_final(post_id, timeout=60)
    target = _targets(row)["linkedin"]
    assert (row["status"], target["status"]) == ("unconfirmed", "unconfirmed")
    assert target["provider_post_id"] and target["provider_post_id"] in target["error"]
    assert "unknown whether it was published" in target["error"]
    assert len(creates(sandbox, "postforme", post_id)) == 1
    assert not creates(sandbox, "late", post_id)


def test_a_late_success_reported_failed_later_is_revised(stack: Stack, sandbox: Any) -> None:
    user = user_with_key(sandbox, "late")
    sandbox.set_faults("late", regress_platforms={"twitter": 1.5})
    post_id = client().enqueue_post(user, "gone again", ["twitter", "linkedin"])
    assert wait_final(post_id)["status"] == "posted"

    def revised() -> dict[str, Any] | None:
        row = post(post_id)
        return row if row and row["status"] == "partial" else None

    row = wait_for(revised, 30, "the post to be revised")
    targets = _targets(row)
    assert (targets["twitter"]["status"], targets["linkedin"]["status"]) == ("failed", "posted")
    [revision] = [a for a in row["attempts"] if a["outcome"] == "revised"]
    assert revision["platforms"] == ["twitter"] and "after it was published" in revision["error"]
    assert revision["created_at"] is not None
