"""Delivery guarantees under failure, quick versions of bench/chaos.py's scenarios.

Each test builds a real world of its own (a scratch database, a private Redis, worker and
beat processes, the sandbox), hurts it, waits until every post is final and audits the
ledger against the sandbox's count of creates: nothing lost, nothing created twice,
nothing left queued or publishing. The scenarios themselves live in bench/scenarios.py
and bench/scenarios_once.py (issue 10's exactly-once rules),
shared with the full-size run (`python bench/chaos.py --posts 2000`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bench import scenarios, scenarios_once
from bench.chaoslib import Report, find_secrets, our_tracebacks
from bench.harness import ROOT
from tests.conftest import ADMIN_DSN

pytestmark = pytest.mark.timeout(150)


def _run(sandbox: Any, posts: int, tmp_path: Path) -> scenarios.Run:
    return scenarios.Run(sandbox, posts, quick=True, logs=tmp_path, timeout=100,
                         admin_dsn=ADMIN_DSN)


def _assert_clean(report: Report) -> None:
    """Every post final, none doubled, none lost, and no other problem the audit saw."""
    assert report.problems == [], "\n".join(report.problems)
    assert (report.final, report.duplicated, report.lost) == (report.sent, 0, 0), report


def test_worker_kills_mid_publish_deliver_each_post_once(sandbox: Any, tmp_path: Path) -> None:
    report = scenarios.worker_kills(_run(sandbox, 60, tmp_path))
    _assert_clean(report)
    assert "whole worker" in report.notes[0] and "pool process" in report.notes[0], report
    # the request a killed worker had taken but not stored comes back once, too
    assert any(n.startswith("1 publish message(s) stranded") for n in report.notes), report


def test_redis_restarted_empty_loses_nothing(sandbox: Any, tmp_path: Path) -> None:
    report = scenarios.redis_loss(_run(sandbox, 60, tmp_path))
    _assert_clean(report)
    assert any(n.startswith("Redis restarted") for n in report.notes), report


def test_flaky_primary_503_429_and_hangs_every_post_posted_once(
    sandbox: Any, tmp_path: Path
) -> None:
    report = scenarios.flaky_primary(_run(sandbox, 60, tmp_path))
    _assert_clean(report)  # the audit also requires an ambiguous outcome to have happened


def test_creates_answered_5xx_after_storing_are_adopted_never_resent(
    sandbox: Any, tmp_path: Path
) -> None:
    report = scenarios_once.create5xx(_run(sandbox, 60, tmp_path))
    _assert_clean(report)  # also: PostForMe asked once per post, LATE never


def test_a_create_slower_than_the_old_lease_is_never_taken_over(
    sandbox: Any, tmp_path: Path
) -> None:
    report = scenarios_once.slowcreate(_run(sandbox, 30, tmp_path))
    _assert_clean(report)  # also: 3 creates outlasted the old lease, each post claimed once
    assert report.notes[0].startswith("3 creates took > 32 s"), report


def test_tenants_on_the_shared_keys_post_only_on_their_accounts(
    sandbox: Any, tmp_path: Path
) -> None:
    report = scenarios_once.tenants(_run(sandbox, 60, tmp_path))
    _assert_clean(report)  # also: each create on the account the rules choose
    assert ", 0 wrong account(s)" in report.notes[1], report


def test_malformed_requests_refused_by_field_without_crash(
    sandbox: Any, tmp_path: Path
) -> None:
    report = scenarios.bad_input(_run(sandbox, 30, tmp_path), bad=500)
    _assert_clean(report)
    assert report.sent == 530
    assert report.notes[0].startswith("500/500 malformed refused"), report


def test_no_key_in_logs_broker_flower_or_database(sandbox: Any, tmp_path: Path) -> None:
    report = scenarios.secrets(_run(sandbox, 30, tmp_path))
    _assert_clean(report)


def test_the_searches_would_see_what_they_look_for() -> None:
    """The audit's own tools, on planted text: a check that cannot fail proves nothing."""
    key = "SECRET-user-postforme-0123456789abcdef0123456789abcdef"
    assert find_secrets(f"... Bearer {key} ...", [key]) == [key]
    assert find_secrets("...0123456789abcdef0123456789abcdef...", [key]) == [key]
    assert find_secrets("nothing here", [key]) == []
    ours = 'Traceback (most recent call last):\n  File "{}/tasks/intake.py", line 1'
    assert our_tracebacks(ours.format(ROOT))
    assert not our_tracebacks(ours.format("/elsewhere"))


def test_the_exactly_once_checks_would_see_a_violation() -> None:
    post = "p1"
    # ambiguous on step 0, then the same platform on step 2: the rule broken
    moved: scenarios_once.Attempts = {
        post: [(0, "ambiguous", ["twitter", "bluesky"]), (2, "published", ["bluesky"])]}
    assert scenarios_once.moved_after_ambiguous(moved) == [(post, "bluesky")]
    # reconciled on the same step, and another platform moving on after a plain
    # no-account answer: both fine
    fine: scenarios_once.Attempts = {
        post: [(0, "no_account", ["bluesky"]), (0, "ambiguous", ["twitter"]),
               (0, "published", ["twitter"]), (1, "published", ["bluesky"])]}
    assert scenarios_once.moved_after_ambiguous(fine) == []
    book = scenarios_once.Accounts(index={("postforme", None, "twitter"): "org-pfm",
                                          ("late", "u1", "twitter"): "u1-late",
                                          ("postforme", "u1", "linkedin"): "u1-pfm",
                                          ("late", None, "linkedin"): "org-late"})
    assert book.expected("u1", "twitter") == "org-pfm"  # PostForMe's step comes first
    assert book.expected("u1", "linkedin") == "u1-pfm"
    assert book.expected("u2", "linkedin") == "org-late"
    assert book.expected("u2", "threads") is None
