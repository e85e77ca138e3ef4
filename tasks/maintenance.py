"""Beat's tasks: release due posts, recover lost messages, refresh account lists.

Each is safe to run from several beats at once: the ledger's SKIP LOCKED claims and
conditional UPDATEs decide, and a duplicate delivery message only loses its claim.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from tasks import accounts, scheduling
from tasks.base import SocialTask
from tasks.publish import deliver
from worker.celery_app import app

log = logging.getLogger("socialpost.maintenance")


def _send(post_id: str, due: datetime | None) -> None:
    now = datetime.now(UTC)
    if due is not None and due > now:
        deliver.apply_async((post_id,), eta=due)  # short: due within the release horizon
    else:
        deliver.apply_async((post_id,))


@app.task(name="social.release_due_posts", base=SocialTask, ignore_result=True)
def release_due_posts() -> int:
    """Move scheduled posts due within the horizon to queued and send their delivery."""
    return scheduling.release_due(_send)


@app.task(name="social.recover_stalled_posts", base=SocialTask, ignore_result=True)
def recover_stalled_posts() -> int:
    """Re-send delivery for posts whose message was lost (Redis restart, killed worker)."""
    return scheduling.recover_stalled(_send)


@app.task(name="social.refresh_connected_platforms", base=SocialTask)
def refresh_connected_platforms(user_id: str | None = None) -> dict[str, Any]:
    """Refresh `connected_platforms` from each stored credential's account list."""
    return accounts.refresh_all(user_id)
