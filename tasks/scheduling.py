"""Releasing scheduled posts and recovering lost ones, as plain functions over the ledger.

Scheduling lives in PostgreSQL, never in long Celery ETAs. A release looks a little
ahead (SOCIALPOST_RELEASE_HORIZON, default 2 s) and sends each message with a short ETA
at the post's time, so a post leaves on time instead of up to one beat interval late.

Recovery resends only what was lost: a queued post whose delivery message still waits in
the broker (tasks.inflight) is left alone, however long the backlog ahead of it, so a
backlog never multiplies itself; a publishing post whose lease ran out is always resent.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Sequence
from datetime import datetime

import settings
from db import recovery
from db.pool import connection

log = logging.getLogger("socialpost.scheduling")

Send = Callable[[str, datetime | None], None]
SendMany = Callable[[Sequence[tuple[str, datetime | None]]], None]
Waiting = Callable[[Sequence[str]], Collection[str]]


def _sender(send: Send | None, send_many: SendMany | None) -> SendMany:
    """A batch sender from either form (one post at a time: tests and benches)."""
    if send_many is not None:
        return send_many
    if send is None:
        raise TypeError("send or send_many is required")
    one = send

    def each(batch: Sequence[tuple[str, datetime | None]]) -> None:
        for post_id, when in batch:
            one(post_id, when)

    return each


def release_due(send: Send | None = None, *, send_many: SendMany | None = None,
                batch_size: int = 500, max_batches: int = 40) -> int:
    """Release every post due within the horizon, in batches; returns how many. Each
    batch is handed to `send_many` at once (or to `send` post by post)."""
    deliver = _sender(send, send_many)
    horizon = settings.current().release_horizon
    released = 0
    for _ in range(max_batches):
        with connection() as conn:
            due = recovery.release_due(conn, limit=batch_size, horizon_seconds=horizon)
        # Sent after commit: a crash in between leaves them queued, and the sweep resends.
        deliver([(str(post_id), when) for post_id, when in due])
        released += len(due)
        if len(due) < batch_size:
            break
    if released:
        log.info("released %d scheduled post(s)", released)
    return released


def recover_stalled(send: Send | None = None, *, send_many: SendMany | None = None,
                    waiting: Waiting | None = None, limit: int = 1000) -> int:
    """Resend delivery for queued posts whose message is gone and publishing posts whose
    lease expired. `waiting(ids)` names the queued ones whose message still waits in the
    broker (default: tasks.inflight's markers): those are not resent."""
    if waiting is None:
        from tasks import inflight

        waiting = inflight.waiting
    deliver = _sender(send, send_many)
    grace = settings.current().stall_seconds
    with connection() as conn:
        stalled = recovery.take_stalled(conn, older_than_seconds=grace, limit=limit,
                                      waiting=waiting)
    deliver([(str(post_id), None) for post_id in stalled])
    if stalled:
        log.warning("recovered %d stalled post(s)", len(stalled))
    return len(stalled)
