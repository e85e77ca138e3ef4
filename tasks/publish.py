"""Publishing tasks. Stable names: producers call them by name without our code.

Thin on purpose: intake (tasks.intake) and delivery (tasks.delivery) hold the decisions.
Arguments are ids and post fields, never secrets, so Flower may show all of them.
"""

from __future__ import annotations

import os
from typing import Any

from tasks import delivery, intake, results
from tasks.base import SocialTask
from worker.celery_app import app


def _enqueue_delivery(post_id: str, countdown: float = 0.0) -> None:
    deliver.apply_async((post_id,), countdown=countdown or None)


@app.task(name="social.publish_post", base=SocialTask, bind=True)
def publish_post(
    self: SocialTask,
    user_id: str,
    content: str,
    platforms: list[str],
    media_urls: list[str] | None = None,
    scheduled_for: str | None = None,
    campaign_id: str | None = None,
    batch_number: int | None = None,
    post_id: str | None = None,
    platform_options: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Accept one post: returns {post_id, status: queued|scheduled|failed[, error]} at once.
    The final outcome is recorded in PostgreSQL (see `socialpost show POST_ID`)."""
    raw = {
        "user_id": user_id,
        "content": content,
        "platforms": platforms,
        "media_urls": media_urls,
        "scheduled_for": scheduled_for,
        "campaign_id": campaign_id,
        "batch_number": batch_number,
        "post_id": post_id,
        "platform_options": platform_options,
    }
    return intake.accept(raw, self.request.id, _enqueue_delivery)


@app.task(name="social.publish_batch", base=SocialTask, bind=True)
def publish_batch(
    self: SocialTask,
    user_id: str,
    campaign_id: str,
    batch_number: int,
    platforms: list[str],
    media_urls: list[str] | None = None,
    scheduled_for: str | None = None,
    post_id: str | None = None,
    platform_options: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Accept batch `batch_number` of a campaign's creative calendar as one post."""
    raw = {
        "user_id": user_id,
        "campaign_id": campaign_id,
        "batch_number": batch_number,
        "platforms": platforms,
        "media_urls": media_urls,
        "scheduled_for": scheduled_for,
        "post_id": post_id,
        "platform_options": platform_options,
    }
    return intake.accept_batch(raw, self.request.id, _enqueue_delivery)


@app.task(name="social.deliver", base=SocialTask, bind=True, ignore_result=True)
def deliver(self: SocialTask, post_id: str) -> str | None:
    """One provider attempt for one post. The lease owner is this task's id, so a copy
    redelivered after a worker died takes its own claim back and reconciles first."""
    result = delivery.run_attempt(post_id, owner=self.request.id)
    if result.countdown is not None:
        _enqueue_delivery(post_id, result.countdown)
    if result.collect_results:
        collect_results.apply_async((post_id,), countdown=RESULTS_DELAY)
    return result.status


RESULTS_DELAY = float(os.environ.get("SOCIALPOST_RESULTS_DELAY", "") or 1.0)


@app.task(
    name="social.collect_results",
    base=SocialTask,
    bind=True,
    ignore_result=True,
    max_retries=8,
)
def collect_results(self: SocialTask, post_id: str) -> bool:
    """Fill in platform post ids PostForMe reports after accepting a post. Retries with
    backoff while its results are still processing; the post is final meanwhile."""
    done = results.collect(post_id)
    if not done and self.request.retries < 8:
        raise self.retry(countdown=min(60.0, RESULTS_DELAY * 2**self.request.retries))
    return done
