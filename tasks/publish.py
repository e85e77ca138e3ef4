"""Publishing tasks. Stable names: producers call them by name without our code.

Thin on purpose: intake (tasks.intake) and delivery (tasks.delivery) hold the decisions.
Arguments are ids and post fields, never secrets, so Flower may show all of them.

A due post's first provider attempt runs in the intake task, after its acceptance has
been stored as the task's result (`on_success`), and before the message is acked (late
acks): the producer gets its answer at once, the post costs one task instead of two, and
a worker dying mid-attempt gets the message redelivered, whose claim reconciles first.
Retries and failover steps are `social.deliver` messages with a countdown.
"""

from __future__ import annotations

import logging
from typing import Any

from db import delivery as ledger
from tasks import delivery, intake, results
from tasks.base import SocialTask
from worker.celery_app import app

log = logging.getLogger("socialpost.publish")


def _enqueue_delivery(post_id: str, countdown: float = 0.0) -> None:
    deliver.apply_async((post_id,), countdown=countdown or None)


def _follow_up(result: delivery.AttemptResult) -> None:
    if result.countdown is not None:
        _enqueue_delivery(result.post_id, result.countdown)


class IntakeTask(SocialTask):
    """Runs the held first attempt once the acceptance is stored."""

    abstract = True

    def _first(self) -> intake.FirstAttempt:
        def hold(item: ledger.Claim | str) -> None:
            self.request.held_attempt = item

        self.request.held_attempt = None
        return intake.FirstAttempt(owner=self.request.id, hold=hold)

    def on_success(self, retval: Any, task_id: str, args: Any, kwargs: Any) -> None:
        held = getattr(self.request, "held_attempt", None)
        if held is None:
            return
        try:
            if isinstance(held, ledger.Claim):
                _follow_up(delivery.run_claimed(held, owner=task_id))
            else:
                _follow_up(delivery.run_attempt(held, owner=task_id))
        except Exception:
            # The post is held under a lease in PostgreSQL: when it expires the recovery
            # sweep hands it to another worker, which reconciles before any resend.
            post_id = held.post_id if isinstance(held, ledger.Claim) else held
            log.exception("post %s: first attempt interrupted; recovery will resume it", post_id)


@app.task(name="social.publish_post", base=IntakeTask, bind=True)
def publish_post(
    self: IntakeTask,
    user_id: str | None = None,
    content: str | None = None,
    platforms: list[str] | None = None,
    media_urls: list[str] | None = None,
    scheduled_for: str | None = None,
    campaign_id: str | None = None,
    batch_number: int | None = None,
    post_id: str | None = None,
    platform_options: dict[str, dict[str, Any]] | None = None,
    **unexpected: Any,
) -> dict[str, Any]:
    """Accept one post: returns {post_id, status: queued|scheduled|failed[, error]} at once.
    The final outcome is recorded in PostgreSQL (see `socialpost show POST_ID`).
    Every argument is optional here so that a missing or unknown one is refused by
    intake, naming it, rather than failing the task before our code runs."""
    raw = {
        **unexpected,
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
    return intake.accept(raw, self.request.id, _enqueue_delivery, first=self._first())


@app.task(name="social.publish_batch", base=IntakeTask, bind=True)
def publish_batch(
    self: IntakeTask,
    user_id: str | None = None,
    campaign_id: str | None = None,
    batch_number: int | None = None,
    platforms: list[str] | None = None,
    media_urls: list[str] | None = None,
    scheduled_for: str | None = None,
    post_id: str | None = None,
    platform_options: dict[str, dict[str, Any]] | None = None,
    **unexpected: Any,
) -> dict[str, Any]:
    """Accept batch `batch_number` of a campaign's creative calendar as one post
    (arguments optional for the same reason as publish_post's)."""
    raw = {
        **unexpected,
        "user_id": user_id,
        "campaign_id": campaign_id,
        "batch_number": batch_number,
        "platforms": platforms,
        "media_urls": media_urls,
        "scheduled_for": scheduled_for,
        "post_id": post_id,
        "platform_options": platform_options,
    }
    return intake.accept_batch(raw, self.request.id, _enqueue_delivery, first=self._first())


@app.task(name="social.deliver", base=SocialTask, bind=True, ignore_result=True)
def deliver(self: SocialTask, post_id: str) -> str | None:
    """One provider attempt for one post. The lease owner is this task's id, so a copy
    redelivered after a worker died takes its own claim back and reconciles first."""
    result = delivery.run_attempt(post_id, owner=self.request.id)
    _follow_up(result)
    return result.status


@app.task(name="social.collect_results", base=SocialTask, ignore_result=True)
def collect_results() -> int:
    """Fill in platform post ids PostForMe reports after accepting posts (beat, every few
    seconds; up to 100 results per HTTP call). Posts are final meanwhile."""
    return results.sweep()
