"""Building ledger state in tests through the API production uses (db.delivery).

A test that needs a post in some state gets there the way a worker would: claim it (or
insert it claimed), then record an attempt with a plan from tasks.planning. No second
state machine exists for tests to lean on.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from db import delivery
from db.pool import Conn
from tasks.planning import Plan, TargetChange, finalize


def attempt_row(platforms: list[str], provider: str = "postforme", *, step: int = 0,
                outcome: str = "published", http_status: int | None = 201,
                error: str | None = None, provider_post_id: str | None = "sbx_1",
                source: str = "user", key: str | None = None) -> delivery.AttemptRow:
    """One provider call as the engine logs it."""
    return delivery.AttemptRow(
        step=step, provider=provider, credential_source=source, platforms=platforms,
        idempotency_key=key, http_status=http_status, latency_ms=42, outcome=outcome,
        error=error, provider_post_id=provider_post_id,
    )


def claim(conn: Conn, post_id: Any, owner: str = "w", lease: float = 60.0) -> delivery.Claim:
    """Claim a queued post (or one whose lease ran out), failing the test if it is not ours."""
    taken = delivery.claim(conn, str(post_id), owner, lease)
    assert taken is not None, f"post {post_id} could not be claimed by {owner}"
    return taken


def finish(conn: Conn, held: delivery.Claim, owner: str, changes: list[TargetChange],
           attempt: delivery.AttemptRow | None = None) -> bool:
    """Record the attempt that settles every target of `held`: the post becomes final with
    the status finalize() derives, exactly as the engine's record would write it."""
    merged = {p: dict(t) for p, t in held.targets.items()}
    for change in changes:
        merged[change.platform].update(
            {k: v for k, v in vars(change).items() if k != "platform"})
    final = finalize(merged, held.platforms, datetime.now(UTC))
    plan = Plan(final["status"], held.step, held.step_attempts + 1, targets=changes,
                final=final)
    return delivery.record(conn, held, owner, plan, attempt)


def requeue(conn: Conn, held: delivery.Claim, owner: str, *, step: int,
            countdown: float = 0.0, changes: list[TargetChange] | None = None,
            attempt: delivery.AttemptRow | None = None) -> bool:
    """Record an attempt after which the post waits for another one (at `step`)."""
    plan = Plan("queued", step, 0, countdown=countdown, targets=changes or [])
    return delivery.record(conn, held, owner, plan, attempt)


def posted(platform: str, provider: str = "postforme", **extra: Any) -> TargetChange:
    return TargetChange(platform, "posted", provider, extra.pop("source", "user"), **extra)


def failed(platform: str, error: str, **extra: Any) -> TargetChange:
    return TargetChange(platform, "failed", error=error, **extra)


def new_id() -> str:
    return str(uuid.uuid4())
