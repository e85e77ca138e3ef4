"""Routing by capability, pure: which chain steps a target asking for a thread or a first
comment passes over, and what the plan does with targets a step never sent."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from db.delivery import Claim
from providers.outcomes import OutcomeKind, PublishOutcome
from tasks.chain import build_chain
from tasks.decisions import Policy, decide
from tasks.planning import TargetChange, plan
from tasks.routing import skip_incapable

NOW = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
FULL = build_chain({"postforme": "u-pfm", "late": "u-late"}, {"postforme": "g-pfm"})
PFM_USER, LATE_USER, PFM_GLOBAL = FULL
THREAD = {"twitter": {"thread": [{"content": "2/ more"}]}}
WHY = "twitter asks for threads, which only LATE publishes"


def claim(platforms: list[str], overrides: dict[str, Any] | None = THREAD, *,
          reconciling: bool = False) -> Claim:
    return Claim(
        post_id="p1", user_id="u1", content="hi", platforms=platforms, media_urls=[],
        platform_options=None, step=0, step_attempts=0, needs_reconcile=reconciling,
        targets={p: {"status": "pending", "error": None} for p in platforms},
        credentials={}, overrides=overrides)


def test_a_post_without_late_only_fields_is_not_touched() -> None:
    c = claim(["twitter"], {"twitter": {"content": "short"}})
    assert skip_incapable(c, FULL, PFM_USER) == (c, PFM_USER, (), {})


def test_a_step_none_of_whose_targets_it_can_publish_is_skipped_to_late() -> None:
    c, step, rows, passed = skip_incapable(claim(["twitter"]), FULL, PFM_USER)
    assert (step, passed) == (LATE_USER, {})
    assert [(r.step, r.outcome, r.platforms, r.error) for r in rows] == [
        (0, "skipped", ["twitter"], WHY)]
    assert c.step == 1 and c.targets["twitter"]["error"] == f"PostForMe (user): skipped: {WHY}"


def test_with_other_targets_the_step_stays_and_passes_the_thread_on() -> None:
    c, step, rows, passed = skip_incapable(claim(["twitter", "linkedin"]), FULL, PFM_USER)
    assert (step, passed) == (PFM_USER, {"twitter": WHY})
    assert [(r.outcome, r.platforms) for r in rows] == [("skipped", ["twitter"])]
    # a LATE step serves everything
    assert skip_incapable(claim(["twitter"]), FULL, LATE_USER)[1:] == (LATE_USER, (), {})


def test_no_late_step_after_postforme_leaves_nothing() -> None:
    only_pfm = build_chain({"postforme": "u-pfm"}, {})
    c, step, rows, _ = skip_incapable(claim(["twitter"]), only_pfm, only_pfm[0])
    assert step is None and [r.outcome for r in rows] == ["skipped"]


def test_a_step_sending_without_the_thread_never_makes_it_unconfirmed() -> None:
    # PostForMe's send for linkedin stayed ambiguous to the end of its budget: linkedin is
    # unconfirmed, but twitter was never sent there and goes on to LATE.
    targets = {p: {"status": "pending", "error": None} for p in ("twitter", "linkedin")}
    out = PublishOutcome(OutcomeKind.AMBIGUOUS, "PostForMe", None, error="timeout")
    attempts = Policy().max_ambiguous_attempts
    p = plan(targets=targets, platforms=["twitter", "linkedin"], chain=FULL, step=PFM_USER,
             step_attempts=attempts, outcome=out, decision=decide(out, attempts, Policy()),
             reconciling=True, now=NOW, passed_over={"twitter": WHY})
    assert (p.status, p.step) == ("queued", LATE_USER.index)
    changes = {c.platform: c for c in p.targets}
    assert changes["linkedin"].status == "unconfirmed"
    assert changes["twitter"] == TargetChange(
        "twitter", "pending", error=f"PostForMe (user): skipped: {WHY}")


def test_a_reconciling_step_still_passes_the_thread_on() -> None:
    c = claim(["twitter", "linkedin"], reconciling=True)
    _, step, _, passed = skip_incapable(c, FULL, PFM_USER)
    assert (step, passed) == (PFM_USER, {"twitter": WHY})
