"""DESIGN.md's outcome table, row by row, on the pure `decide()`; and the backoff it uses.

No database, no network: every branch is driven directly with a built PublishOutcome.
"""

from __future__ import annotations

import math
import random

import pytest

from providers.outcomes import OutcomeKind, PublishOutcome
from tasks.backoff import backoff_seconds
from tasks.decisions import Action, Decision, Policy, decide

POLICY = Policy()
MARGIN = 1.0  # "a small margin" past Retry-After: anything above this is no longer small


def outcome(
    kind: OutcomeKind,
    *,
    error: str | None = None,
    retry_after: float | None = None,
    status: int | None = None,
) -> PublishOutcome:
    return PublishOutcome(
        kind=kind, provider="PostForMe", http_status=status, error=error, retry_after=retry_after
    )


def backoff_bounds(attempt: int, policy: Policy) -> tuple[float, float]:
    """[exp/2, exp] with exp = min(cap, base * 2**(attempt-1)), never above max_countdown."""
    ceiling = min(policy.backoff_cap, policy.backoff_base * 2 ** (max(1, attempt) - 1))
    return min(ceiling / 2, policy.max_countdown), min(ceiling, policy.max_countdown)


# -- Policy -----------------------------------------------------------------------------------


def test_policy_defaults_keep_countdowns_bounded() -> None:
    p = Policy()
    assert p.max_transient_attempts >= 1
    assert p.max_rate_limited_attempts >= 1
    assert p.max_ambiguous_attempts >= 1
    assert 0 < p.backoff_base <= p.backoff_cap <= p.max_countdown


def test_policy_from_env_reads_every_knob(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOCIALPOST_MAX_TRANSIENT_ATTEMPTS", "2")
    monkeypatch.setenv("SOCIALPOST_MAX_RATE_LIMITED_ATTEMPTS", "3")
    monkeypatch.setenv("SOCIALPOST_MAX_AMBIGUOUS_ATTEMPTS", "7")
    monkeypatch.setenv("SOCIALPOST_BACKOFF_BASE", "0.5")
    monkeypatch.setenv("SOCIALPOST_BACKOFF_CAP", "8")
    monkeypatch.setenv("SOCIALPOST_MAX_COUNTDOWN", "120")
    assert Policy.from_env() == Policy(2, 3, 7, 0.5, 8.0, 120.0)


def test_policy_from_env_falls_back_to_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "SOCIALPOST_MAX_TRANSIENT_ATTEMPTS",
        "SOCIALPOST_MAX_RATE_LIMITED_ATTEMPTS",
        "SOCIALPOST_MAX_AMBIGUOUS_ATTEMPTS",
        "SOCIALPOST_BACKOFF_BASE",
        "SOCIALPOST_BACKOFF_CAP",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SOCIALPOST_MAX_COUNTDOWN", "")  # empty counts as unset
    assert Policy.from_env() == Policy()


# -- done: 2xx, and LATE's 409 duplicate ------------------------------------------------------


@pytest.mark.parametrize("kind", [OutcomeKind.PUBLISHED, OutcomeKind.DUPLICATE])
@pytest.mark.parametrize("attempts", [1, 3, 50])
def test_published_and_duplicate_are_recorded_at_once(kind: OutcomeKind, attempts: int) -> None:
    d = decide(outcome(kind, status=201), attempts, POLICY)
    assert d == Decision(Action.RECORD, 0.0, kind.value)


def test_reason_is_the_outcome_error_when_there_is_one() -> None:
    d = decide(outcome(OutcomeKind.DUPLICATE, error="HTTP 409: already posted"), 1, POLICY)
    assert d.reason == "HTTP 409: already posted"


# -- not sent / transient: retry with bounded backoff, then fall over ---------------------------


@pytest.mark.parametrize("attempt", range(1, Policy().max_transient_attempts))
def test_transient_retries_this_step_with_bounded_backoff(attempt: int) -> None:
    for _ in range(20):  # jitter: every draw must stay within the bounds
        d = decide(outcome(OutcomeKind.TRANSIENT, error="HTTP 503: down"), attempt, POLICY)
        assert d.action is Action.RETRY
        assert d.reason == "HTTP 503: down"
        low, high = backoff_bounds(attempt, POLICY)
        assert low <= d.countdown <= high


def test_transient_backoff_grows_with_the_attempt_number() -> None:
    policy = Policy(max_transient_attempts=10, backoff_base=1.0, backoff_cap=1000.0)
    first = [decide(outcome(OutcomeKind.TRANSIENT), 1, policy).countdown for _ in range(20)]
    fifth = [decide(outcome(OutcomeKind.TRANSIENT), 5, policy).countdown for _ in range(20)]
    assert max(first) <= 1.0 and min(fifth) >= 8.0


@pytest.mark.parametrize("attempt", [Policy().max_transient_attempts, 9, 100])
def test_transient_falls_over_once_the_budget_is_spent(attempt: int) -> None:
    d = decide(outcome(OutcomeKind.TRANSIENT, error="connection refused"), attempt, POLICY)
    assert d == Decision(Action.FALL_OVER, 0.0, "connection refused")


def test_transient_with_a_budget_of_one_falls_over_immediately() -> None:
    d = decide(outcome(OutcomeKind.TRANSIENT), 1, Policy(max_transient_attempts=1))
    assert d.action is Action.FALL_OVER
    assert d.reason == "transient"  # no error text: the kind names it


def test_transient_countdown_never_exceeds_max_countdown() -> None:
    policy = Policy(max_transient_attempts=30, backoff_cap=10_000.0, max_countdown=45.0)
    for attempt in range(1, 30):
        d = decide(outcome(OutcomeKind.TRANSIENT), attempt, policy)
        assert d.action is Action.RETRY
        assert 0 < d.countdown <= 45.0


# -- rate limited: wait at least Retry-After, defer when longer than a countdown may be ---------


@pytest.mark.parametrize("retry_after", [0.5, 7.0, 42.0, 250.0])
def test_rate_limited_retries_after_retry_after_plus_a_small_margin(retry_after: float) -> None:
    d = decide(outcome(OutcomeKind.RATE_LIMITED, retry_after=retry_after, status=429), 1, POLICY)
    assert d.action is Action.RETRY
    assert retry_after < d.countdown <= retry_after + MARGIN
    assert d.countdown <= POLICY.max_countdown


@pytest.mark.parametrize("retry_after", [None, 0.0, -3.0])
@pytest.mark.parametrize("attempt", [1, 2, 4])
def test_rate_limited_without_a_usable_wait_uses_backoff(
    retry_after: float | None, attempt: int
) -> None:
    d = decide(outcome(OutcomeKind.RATE_LIMITED, retry_after=retry_after), attempt, POLICY)
    assert d.action is Action.RETRY
    low, high = backoff_bounds(attempt, POLICY)
    assert low <= d.countdown <= high + MARGIN


@pytest.mark.parametrize("retry_after", [301.0, 3600.0, 86_400.0])
def test_rate_limited_longer_than_max_countdown_defers(retry_after: float) -> None:
    d = decide(outcome(OutcomeKind.RATE_LIMITED, retry_after=retry_after), 1, POLICY)
    assert d.action is Action.DEFER
    assert retry_after <= d.countdown <= retry_after + MARGIN


@pytest.mark.parametrize("delta", [-0.04, -0.01, 0.0])
def test_rate_limited_retry_countdown_never_exceeds_max_countdown(delta: float) -> None:
    """Policy: "countdowns never exceed max_countdown" (DESIGN: no retry countdown may
    exceed the visibility timeout), margin included. A wait right at the limit defers."""
    retry_after = POLICY.max_countdown + delta
    d = decide(outcome(OutcomeKind.RATE_LIMITED, retry_after=retry_after), 1, POLICY)
    if d.action is Action.RETRY:
        assert retry_after < d.countdown <= POLICY.max_countdown
    else:
        assert d.action is Action.DEFER
        assert d.countdown >= retry_after


@pytest.mark.parametrize("retry_after", [5.0, 3600.0, None])
@pytest.mark.parametrize("attempt", [Policy().max_rate_limited_attempts, 20])
def test_rate_limited_falls_over_after_its_budget(retry_after: float | None, attempt: int) -> None:
    d = decide(
        outcome(OutcomeKind.RATE_LIMITED, retry_after=retry_after, error="429"), attempt, POLICY
    )
    assert d == Decision(Action.FALL_OVER, 0.0, "429")


def test_rate_limited_budget_is_its_own() -> None:
    policy = Policy(max_transient_attempts=2, max_rate_limited_attempts=5)
    assert (
        decide(outcome(OutcomeKind.RATE_LIMITED, retry_after=1), 4, policy).action is Action.RETRY
    )
    assert decide(outcome(OutcomeKind.RATE_LIMITED, retry_after=1), 5, policy).action is (
        Action.FALL_OVER
    )


@pytest.mark.parametrize("retry_after", [math.inf, 1e12, 400 * 86_400.0])
def test_rate_limited_with_an_absurd_wait_falls_over_instead_of_waiting_forever(
    retry_after: float,
) -> None:
    """A Retry-After of "inf" or thousands of years cannot be waited for (nor turned into a
    datetime): the next credential step may serve now."""
    d = decide(
        outcome(OutcomeKind.RATE_LIMITED, retry_after=retry_after, error="HTTP 429"), 1, POLICY
    )
    assert d.action is Action.FALL_OVER
    assert d.reason.startswith("HTTP 429") and "too long" in d.reason


def test_rate_limited_nan_wait_is_treated_as_unknown() -> None:
    d = decide(outcome(OutcomeKind.RATE_LIMITED, retry_after=math.nan), 1, POLICY)
    assert d.action is Action.RETRY
    assert math.isfinite(d.countdown) and 0 < d.countdown <= POLICY.max_countdown


# -- ambiguous: reconcile before any resend, unconfirmed when it cannot be known ---------------


@pytest.mark.parametrize("attempt", range(1, Policy().max_ambiguous_attempts))
def test_ambiguous_reconciles_with_bounded_backoff(attempt: int) -> None:
    d = decide(outcome(OutcomeKind.AMBIGUOUS, error="read timeout after send"), attempt, POLICY)
    assert d.action is Action.RECONCILE
    assert d.reason == "read timeout after send"
    low, high = backoff_bounds(attempt, POLICY)
    assert low <= d.countdown <= high


@pytest.mark.parametrize("attempt", [Policy().max_ambiguous_attempts, 12])
def test_ambiguous_too_long_is_unconfirmed(attempt: int) -> None:
    d = decide(outcome(OutcomeKind.AMBIGUOUS, error="reset"), attempt, POLICY)
    assert d == Decision(Action.UNCONFIRMED, 0.0, "reset")


def test_ambiguous_never_falls_over_or_retries_blind() -> None:
    for attempt in range(1, 20):
        d = decide(outcome(OutcomeKind.AMBIGUOUS), attempt, POLICY)
        assert d.action in (Action.RECONCILE, Action.UNCONFIRMED)


def test_ambiguous_countdown_never_exceeds_max_countdown() -> None:
    policy = Policy(max_ambiguous_attempts=30, backoff_cap=10_000.0, max_countdown=30.0)
    for attempt in range(1, 30):
        assert 0 < decide(outcome(OutcomeKind.AMBIGUOUS), attempt, policy).countdown <= 30.0


# -- credential rejected, rejected, no account: fall over at once -----------------------------


@pytest.mark.parametrize(
    ("kind", "status", "error"),
    [
        (OutcomeKind.CREDENTIAL_REJECTED, 401, "HTTP 401: invalid key"),
        (OutcomeKind.CREDENTIAL_REJECTED, 403, "HTTP 403: plan limit"),
        (OutcomeKind.REJECTED, 400, "HTTP 400: caption too long"),
        (OutcomeKind.REJECTED, 422, None),
        (OutcomeKind.NO_ACCOUNT, None, "No connected accounts for: ['tiktok']"),
    ],
)
@pytest.mark.parametrize("attempt", [1, 2])
def test_refusals_fall_over_at_once(
    kind: OutcomeKind, status: int | None, error: str | None, attempt: int
) -> None:
    d = decide(outcome(kind, status=status, error=error), attempt, POLICY)
    assert d == Decision(Action.FALL_OVER, 0.0, error or kind.value)


# -- the whole table ---------------------------------------------------------------------------


EXPECTED_FIRST_ACTION = {
    OutcomeKind.PUBLISHED: Action.RECORD,
    OutcomeKind.DUPLICATE: Action.RECORD,
    OutcomeKind.TRANSIENT: Action.RETRY,
    OutcomeKind.RATE_LIMITED: Action.RETRY,
    OutcomeKind.AMBIGUOUS: Action.RECONCILE,
    OutcomeKind.CREDENTIAL_REJECTED: Action.FALL_OVER,
    OutcomeKind.REJECTED: Action.FALL_OVER,
    OutcomeKind.NO_ACCOUNT: Action.FALL_OVER,
    OutcomeKind.PACED: Action.WAIT,
    OutcomeKind.HELD: Action.DEFER,
}


def test_every_outcome_kind_has_a_row() -> None:
    assert set(EXPECTED_FIRST_ACTION) == set(OutcomeKind)
    for kind, action in EXPECTED_FIRST_ACTION.items():
        assert decide(outcome(kind, retry_after=1.0), 1, POLICY).action is action


def test_every_retry_budget_ends() -> None:
    """Driving any kind step after step reaches a terminal action within its budget."""
    terminal = {Action.RECORD, Action.FALL_OVER, Action.UNCONFIRMED}
    # A call held back by pacing or a cap is no attempt: those end by time (below).
    for kind in set(OutcomeKind) - {OutcomeKind.PACED, OutcomeKind.HELD}:
        for attempt in range(1, 100):
            d = decide(outcome(kind, retry_after=2.0), attempt, POLICY)
            if d.action in terminal:
                break
            assert d.action in (Action.RETRY, Action.RECONCILE)
            assert 0 < d.countdown <= POLICY.max_countdown
        else:
            pytest.fail(f"{kind} never ends")
        assert attempt <= max(
            POLICY.max_transient_attempts,
            POLICY.max_rate_limited_attempts,
            POLICY.max_ambiguous_attempts,
        )


# -- backoff ----------------------------------------------------------------------------------


class Fixed(random.Random):
    """A stdlib Random that always draws `value`: pins the two ends of the jitter range."""

    def __init__(self, value: float) -> None:
        super().__init__(0)
        self.value = value

    def random(self) -> float:
        return self.value


@pytest.mark.parametrize(
    ("attempt", "base", "cap", "ceiling"),
    [
        (1, 1.0, 60.0, 1.0),
        (2, 1.0, 60.0, 2.0),
        (3, 1.0, 60.0, 4.0),
        (6, 1.0, 60.0, 32.0),
        (7, 1.0, 60.0, 60.0),  # 64 capped
        (30, 1.0, 60.0, 60.0),
        (3, 0.25, 60.0, 1.0),
        (4, 2.0, 10.0, 10.0),
    ],
)
def test_backoff_range_ends(attempt: int, base: float, cap: float, ceiling: float) -> None:
    assert backoff_seconds(attempt, base=base, cap=cap, rng=Fixed(0.0)) == ceiling / 2
    top = backoff_seconds(attempt, base=base, cap=cap, rng=Fixed(1.0 - 1e-12))
    assert ceiling / 2 < top <= ceiling
    assert top == pytest.approx(ceiling)


def test_backoff_jitter_spreads_over_the_upper_half() -> None:
    rng = random.Random(1234)
    draws = [backoff_seconds(5, base=1.0, cap=60.0, rng=rng) for _ in range(500)]
    assert all(8.0 <= d <= 16.0 for d in draws)
    assert len(set(draws)) > 450  # jitter: retries do not stampede together
    assert min(draws) < 9.0 and max(draws) > 15.0  # both ends of [exp/2, exp] are reached


def test_backoff_is_reproducible_with_a_seeded_rng() -> None:
    a = [backoff_seconds(n, rng=random.Random(7)) for n in range(1, 10)]
    b = [backoff_seconds(n, rng=random.Random(7)) for n in range(1, 10)]
    assert a == b


def test_backoff_never_exceeds_the_cap() -> None:
    rng = random.Random(99)
    for attempt in range(-3, 200):
        for cap in (0.5, 3.0, 60.0, 300.0):
            d = backoff_seconds(attempt, base=1.0, cap=cap, rng=rng)
            assert 0 < d <= cap


@pytest.mark.parametrize("attempt", [0, -1, -100])
def test_backoff_treats_non_positive_attempts_as_the_first(attempt: int) -> None:
    assert backoff_seconds(attempt, rng=Fixed(0.5)) == backoff_seconds(1, rng=Fixed(0.5))


@pytest.mark.parametrize("attempt", [1025, 5000, 10**6])
def test_backoff_with_a_huge_attempt_number_is_the_cap_not_an_overflow(attempt: int) -> None:
    d = backoff_seconds(attempt, base=1.0, cap=60.0, rng=Fixed(0.0))
    assert d == 30.0


def test_backoff_without_rng_uses_the_module_random() -> None:
    for attempt in range(1, 12):
        assert 0 < backoff_seconds(attempt) <= 60.0


# -- exactly once: nothing falls over past a send that may have landed ------------------------


@pytest.mark.parametrize("kind", [OutcomeKind.TRANSIENT, OutcomeKind.REJECTED,
                                  OutcomeKind.CREDENTIAL_REJECTED, OutcomeKind.NO_ACCOUNT,
                                  OutcomeKind.RATE_LIMITED])
def test_while_reconciling_what_would_fall_over_is_unconfirmed(kind: OutcomeKind) -> None:
    # ambiguous, then 503 x N (or a 4xx, a refused key, no account, 429 x N): falling over
    # would send the post again through another step while the first may hold it
    attempts = 50  # past every budget
    plain = decide(outcome(kind, error="HTTP 503: down"), attempts, POLICY)
    assert plain.action is Action.FALL_OVER
    held = decide(outcome(kind, error="HTTP 503: down"), attempts, POLICY, reconciling=True)
    assert held.action is Action.UNCONFIRMED
    assert "no other provider may send it" in held.reason and "HTTP 503: down" in held.reason


def test_while_reconciling_retries_and_records_are_unchanged() -> None:
    retry = decide(outcome(OutcomeKind.TRANSIENT), 1, POLICY, reconciling=True)
    assert retry.action is Action.RETRY
    found = decide(outcome(OutcomeKind.PUBLISHED), 1, POLICY, reconciling=True)
    assert found.action is Action.RECORD
