"""Beat's tasks: release due posts, recover lost messages, refresh account lists.

Each is safe to run from several beats at once: the ledger's SKIP LOCKED claims and
conditional UPDATEs decide, and a duplicate delivery message only loses its claim.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from tasks import accounts, scheduling
from tasks.base import SocialTask
from tasks.publish import send_deliveries
from worker.celery_app import app

log = logging.getLogger("socialpost.maintenance")


def _send(batch: Sequence[tuple[str, datetime | None]]) -> None:
    # An ETA only for a time still ahead (due within the release horizon: short).
    send_deliveries(list(batch))


@app.task(name="social.release_due_posts", base=SocialTask, ignore_result=True)
def release_due_posts() -> int:
    """Move scheduled posts due within the horizon to queued and send their delivery."""
    return scheduling.release_due(send_many=_send)


@app.task(name="social.recover_stalled_posts", base=SocialTask, ignore_result=True)
def recover_stalled_posts() -> int:
    """Re-send delivery for posts whose message was lost (Redis restart, killed worker),
    never for those whose message still waits behind a backlog (tasks.inflight)."""
    return scheduling.recover_stalled(send_many=_send)


@app.task(name="social.refresh_connected_platforms", base=SocialTask)
def refresh_connected_platforms(user_id: str | None = None) -> dict[str, Any]:
    """Refresh `connected_platforms` from each stored credential's account list."""
    return accounts.refresh_all(user_id)
