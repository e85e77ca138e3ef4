"""Releasing scheduled posts and recovering lost ones, as plain functions over the ledger.

Scheduling lives in PostgreSQL, never in long Celery ETAs. A release looks a little
ahead (SOCIALPOST_RELEASE_HORIZON, default 2 s) and sends each message with a short ETA
at the post's time, so a post leaves on time instead of up to one beat interval late.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

import settings
from db import delivery as ledger
from db.pool import connection

log = logging.getLogger("socialpost.scheduling")

Send = Callable[[str, datetime | None], None]


def release_due(send: Send, *, batch_size: int = 500, max_batches: int = 40) -> int:
    """Release every post due within the horizon, in batches; returns how many."""
    horizon = settings.current().release_horizon
    released = 0
    for _ in range(max_batches):
        with connection() as conn:
            due = ledger.release_due(conn, limit=batch_size, horizon_seconds=horizon)
        # Sent after commit: a crash in between leaves them queued, and the sweep resends.
        for post_id, when in due:
            send(str(post_id), when)
        released += len(due)
        if len(due) < batch_size:
            break
    if released:
        log.info("released %d scheduled post(s)", released)
    return released


def recover_stalled(send: Send, *, limit: int = 1000) -> int:
    """Resend delivery for queued posts nobody took and publishing posts whose lease expired."""
    grace = settings.current().stall_seconds
    with connection() as conn:
        stalled = ledger.take_stalled(conn, older_than_seconds=grace, limit=limit)
    for post_id in stalled:
        send(str(post_id), None)
    if stalled:
        log.warning("recovered %d stalled post(s)", len(stalled))
    return len(stalled)
