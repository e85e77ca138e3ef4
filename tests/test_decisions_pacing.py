"""Decisions and plans for calls held back by flow control: no attempt is spent, the wait
is bounded by SOCIALPOST_RATE_LIMIT_MAX_WAIT, a capped account holds the post."""

from __future__ import annotations

from datetime import UTC, datetime

from providers.outcomes import OutcomeKind, PublishOutcome
from tasks.chain import Step
from tasks.decisions import Action, Policy, decide
from tasks.planning import Plan, plan

POLICY = Policy(max_rate_limit_wait=900.0, max_countdown=300.0)
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
STEPS = [Step(0, "user", "postforme", "k1"), Step(1, "user", "late", "k2")]


def paced(wait: float = 2.5) -> PublishOutcome:
    return PublishOutcome(OutcomeKind.PACED, "PostForMe", error="in line", retry_after=wait)


def test_a_paced_call_waits_its_turn() -> None:
    d = decide(paced(2.5), 0, POLICY)
    assert (d.action, d.countdown) == (Action.WAIT, 2.5)


def test_waiting_past_the_limit_falls_over() -> None:
    d = decide(paced(), 0, POLICY, waited=900.0)
    assert d.action is Action.FALL_OVER
    assert "SOCIALPOST_RATE_LIMIT_MAX_WAIT" in d.reason


def test_a_wait_never_runs_past_the_limit() -> None:
    d = decide(paced(600.0), 0, POLICY, waited=850.0)
    assert d.action is Action.WAIT and d.countdown <= 50.5


def test_a_post_with_an_unresolved_send_never_falls_over_for_want_of_a_permit() -> None:
    d = decide(paced(), 3, POLICY, reconciling=True, waited=1000.0)
    assert d.action is Action.UNCONFIRMED


def test_a_capped_account_holds_the_post_until_it_fits() -> None:
    held = PublishOutcome(OutcomeKind.HELD, "LATE", error="held: x at its cap",
                          retry_after=7200.0)
    d = decide(held, 0, POLICY, waited=5000.0)
    assert (d.action, d.countdown) == (Action.DEFER, 7200.0)


def test_a_rate_limit_retry_is_jittered_but_never_early() -> None:
    limited = PublishOutcome(OutcomeKind.RATE_LIMITED, "PostForMe", 429, retry_after=10.0)
    waits = {decide(limited, 1, POLICY).countdown for _ in range(50)}
    assert min(waits) >= 10.0 and max(waits) <= 11.05 and len(waits) > 1


def _plan(outcome: PublishOutcome) -> Plan:
    targets = {"twitter": {"status": "pending", "error": None}}
    return plan(targets=targets, platforms=["twitter"], chain=STEPS, step=STEPS[0],
                step_attempts=2, outcome=outcome,
                decision=decide(outcome, 2, POLICY), reconciling=False, now=NOW,
                max_countdown=POLICY.max_countdown)


def test_a_short_wait_is_a_countdown_on_the_same_step() -> None:
    p = _plan(paced(4.0))
    assert (p.status, p.step, p.step_attempts, p.countdown, p.paced) == (
        "queued", 0, 2, 4.0, True)


def test_a_long_wait_goes_back_to_postgresql() -> None:
    p = _plan(paced(400.0))
    assert p.status == "scheduled" and p.paced and p.defer_until is not None
    assert (p.defer_until - NOW).total_seconds() == 400.0


def test_a_held_post_is_scheduled_not_paced() -> None:
    held = PublishOutcome(OutcomeKind.HELD, "LATE", error="held", retry_after=3600.0)
    p = _plan(held)
    assert p.status == "scheduled" and not p.paced
