"""Driving the delivery engine inside one process, for the seed's synchronous service.

A worker makes one attempt per Celery task and lets the broker wait between attempts. A
synchronous caller has no broker to wait for it, so it waits here, between the very same
attempts (tasks.delivery), up to a deadline: tenacity retries while the post is in flight,
sleeps what the engine's plan says, and stops before the deadline. Past it the post is
left as the ledger says (queued with its next time, or scheduled after a long rate
limit), and a worker or the recovery sweep resumes it.

When the ledger cannot be written at all (the database is down), `run_unrecorded` runs
the same attempts against an in-memory copy of the claim, so even then the rules are the
engine's: the same decisions, the same plans, the same exactly-once reconciliation.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime

from tenacity import RetryCallState, Retrying, retry_if_result

from db import delivery as ledger
from db.states import TARGET_TRANSITIONS
from tasks.chain import Step
from tasks.decisions import Policy
from tasks.delivery import AttemptResult, attempt_once, result_of
from tasks.planning import Plan

IN_FLIGHT = frozenset({"queued", "publishing"})
POLL_SECONDS = 0.5  # how often to look again while another holder has the post
_MUTABLE = frozenset(s for s, nxt in TARGET_TRANSITIONS.items() if nxt)


def drive(
    attempt: Callable[[], AttemptResult],
    status_of: Callable[[str], str | None],
    deadline: float,
) -> AttemptResult:
    """Call `attempt` until the post leaves `queued`/`publishing` or the next wait would
    pass `deadline` (time.monotonic()); the last result either way. A result without a
    status (someone else holds the post) is polled through `status_of`."""

    def in_flight(result: AttemptResult) -> bool:
        if result.confirm:  # sent: what is left is the platforms' answers (tasks.confirm)
            return False
        return (result.status or status_of(result.post_id)) in IN_FLIGHT

    def pause(state: RetryCallState) -> float:
        result: AttemptResult = state.outcome.result()  # type: ignore[union-attr]
        return (result.countdown or 0.0) if result.status == "queued" else POLL_SECONDS

    def out_of_time(state: RetryCallState) -> bool:
        return time.monotonic() + pause(state) > deadline

    retrying = Retrying(
        retry=retry_if_result(in_flight),
        wait=pause,
        stop=out_of_time,
        retry_error_callback=lambda state: state.outcome.result(),  # type: ignore[union-attr]
    )
    result: AttemptResult = retrying(attempt)
    return result


def applied(claim: ledger.Claim, next_plan: Plan) -> ledger.Claim:
    """The claim as db.delivery.record would leave it, in memory: a posted or cancelled
    target never changes; ids and provider fields are kept unless the plan names new ones."""
    targets = {p: dict(t) for p, t in claim.targets.items()}
    for change in next_plan.targets:
        row = targets[change.platform]
        if row["status"] not in _MUTABLE:
            continue
        for name, value in vars(change).items():
            overwrite = name in ("status", "error")  # as record's SQL: the rest COALESCEs
            if overwrite or (name != "platform" and value is not None):
                row[name] = value
    return replace(
        claim,
        targets=targets,
        step=next_plan.step,
        step_attempts=next_plan.step_attempts,
        needs_reconcile=next_plan.needs_reconcile,
    )


@dataclass
class Unrecorded:
    """Where an unrecorded run ended: the claim's targets as the engine left them."""

    claim: ledger.Claim
    plan: Plan | None = None


def run_unrecorded(
    claim: ledger.Claim,
    chain: list[Step],
    policy: Policy,
    deadline: float,
    scheduled_for: datetime | None = None,
    shared_accounts: bool | None = None,
) -> Unrecorded:
    """The engine's attempts on an in-memory claim, waiting in process between them
    (`shared_accounts` as attempt_once's)."""
    state = Unrecorded(claim)

    def once() -> AttemptResult:
        done = attempt_once(state.claim, chain, policy, scheduled_for=scheduled_for,
                            shared_accounts=shared_accounts)
        state.claim, state.plan = applied(state.claim, done.plan), done.plan
        return result_of(claim.post_id, done.plan)

    drive(once, lambda _post_id: None, deadline)
    return state
