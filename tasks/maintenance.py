"""Beat's tasks: release due posts, recover lost messages, refresh account lists.

Each is safe to run from several beats at once: the ledger's SKIP LOCKED claims and
conditional UPDATEs decide, and a duplicate delivery message only loses its claim.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import settings
from tasks import accounts, provider_hooks, scheduling
from tasks.base import SocialTask
from tasks.publish import send_deliveries
from worker.celery_app import app

log = logging.getLogger("socialpost.maintenance")

MAINTENANCE_QUEUE = "social.maintenance"  # as celeryconfig's routes: beat's own work


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
    never for those whose message still waits behind a backlog (tasks.inflight); and
    forget provider webhook events older than any provider's retries."""
    provider_hooks.forget_old_events()
    return scheduling.recover_stalled(send_many=_send)


@app.task(name="social.refresh_connected_platforms", base=SocialTask)
def refresh_connected_platforms(user_id: str | None = None) -> dict[str, Any]:
    """Refresh `connected_platforms` from each stored credential's account list. For one
    user, here and now (the summary); for everyone, one `social.refresh_credentials` task
    per page of SOCIALPOST_REFRESH_PAGE credentials, so no single task walks the table
    (returns how many pages and credentials were handed out)."""
    if user_id is not None:
        return accounts.refresh_all(user_id)
    return accounts.fan_out(_send_page, settings.current().refresh_page)


def _send_page(after: list[str] | None, through: list[str] | None) -> None:
    refresh_credentials.apply_async(
        kwargs={"after": after, "through": through}, queue=MAINTENANCE_QUEUE,
        expires=settings.current().refresh_interval)


@app.task(name="social.refresh_credentials", base=SocialTask)
def refresh_credentials(after: list[str] | None = None,
                        through: list[str] | None = None) -> dict[str, Any]:
    """Refresh the credentials whose (user_id, provider) is after `after` and up to
    `through` (either open when None): one page of the fan-out."""
    return accounts.refresh_page(after, through)
