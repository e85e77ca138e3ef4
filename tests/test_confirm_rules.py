"""tasks.confirm's pure rules: what one provider answer does to a target, and to its post."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from providers.outcomes import TargetResult
from tasks.confirm import Answer, judge, settle

NOW = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)


def accepted(seconds_ago: float = 10, provider: str = "postforme") -> dict[str, Any]:
    return {"post_id": "p1", "platform": "bluesky", "status": "accepted", "provider": provider,
            "credential_source": "user", "provider_post_id": "sp_1", "error": None,
            "accepted_at": NOW - timedelta(seconds=seconds_ago)}


def failed(error_class: str) -> TargetResult:
    return TargetResult("bluesky", False, error="boom", error_class=error_class)


@pytest.mark.parametrize(("error_class", "status"), [("refused", "failed"),
                                                     ("provider", "pending")])
def test_a_final_failure_fails_or_moves_on_by_cause(error_class: str, status: str) -> None:
    change = judge(accepted(), Answer(failed(error_class), final=True), NOW, 1800)
    assert change is not None and change["status"] == status and change["was"] == "accepted"


def test_a_failure_not_final_yet_waits_then_is_unknown_never_falls_over() -> None:
    # PostForMe retries a platform once: until the post is processed a success may follow
    assert judge(accepted(10), Answer(failed("provider"), final=False), NOW, 1800) is None
    late = judge(accepted(2000), Answer(failed("provider"), final=False), NOW, 1800)
    assert late is not None and late["status"] == "unconfirmed" and "boom" in late["error"]


def test_a_success_is_posted_with_the_platforms_time() -> None:
    when = NOW - timedelta(seconds=3)
    ok = TargetResult("bluesky", True, "b1", "https://bsky.app/b1", published_at=when)
    change = judge(accepted(), Answer(ok), NOW, 1800)
    assert change is not None and (change["status"], change["published_at"]) == ("posted", when)


def test_nothing_yet_waits_until_the_deadline() -> None:
    assert judge(accepted(10), Answer(None), NOW, 1800) is None
    change = judge(accepted(1801), Answer(None), NOW, 1800)
    assert change is not None and change["status"] == "unconfirmed"
    assert "sp_1" in change["error"]


def test_a_posted_late_target_reported_failed_is_revised() -> None:
    row = {**accepted(provider="late"), "status": "posted"}
    change = judge(row, Answer(failed("provider")), NOW, 1800)
    assert change is not None and (change["status"], change["outcome"]) == ("failed", "revised")
    assert judge(row, Answer(TargetResult("bluesky", True)), NOW, 1800) is None


def test_settle_requeues_past_the_failed_step_or_finishes() -> None:
    pending = {"bluesky": {"status": "pending", "provider": "postforme",
                           "credential_source": "user"},
               "twitter": {"status": "posted", "provider": "postforme",
                           "credential_source": "user"}}
    assert settle({"targets": pending, "step": 0, "platforms": ["twitter", "bluesky"]},
                  NOW) == ("requeue", 1)
    waiting = {**pending, "bluesky": {**pending["bluesky"], "status": "accepted"}}
    assert settle({"targets": waiting, "step": 0, "platforms": ["twitter"]}, NOW) is None
    done = {**pending, "bluesky": {**pending["bluesky"], "status": "failed", "error": "x"}}
    verdict = settle({"targets": done, "step": 0, "platforms": ["twitter", "bluesky"]}, NOW)
    assert verdict is not None and verdict[0] == "finish" and verdict[1]["status"] == "partial"
