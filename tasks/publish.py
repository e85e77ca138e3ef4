"""Publishing tasks. Stable names: producers call them by name without our code.

Thin on purpose: intake (tasks.intake) and delivery (tasks.delivery) hold the decisions.
Arguments are ids and post fields, never secrets, so Flower may show all of them.
Retries and failover steps are `social.deliver` messages with a countdown.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from celery.utils import uuid
from redis.exceptions import RedisError

from tasks import confirm, delivery, inflight, intake
from tasks.base import IntakeTask, SocialTask
from worker.celery_app import app

log = logging.getLogger("socialpost.publish")

When = float | datetime | None  # a countdown in seconds, an ETA, or now


def send_deliveries(sends: Sequence[tuple[str, When]]) -> None:
    """One `social.deliver` message per (post id, countdown or ETA), each marked in flight
    first (tasks.inflight; one round trip for the lot) so the recovery sweep leaves a
    message waiting behind a backlog alone. A message that could not be sent loses its
    marker again, so the sweep resends it. Costs one Redis round trip per call (a SET per
    message, by script) on top of the sends themselves."""
    if not sends:
        return
    queue = app.amqp.router.route({}, deliver.name, (), {})["queue"].name
    now = datetime.now(UTC)
    planned = []
    for post_id, when in sends:
        if isinstance(when, datetime):
            wait = (when - now).total_seconds()
            options: dict[str, Any] = {"eta": when} if wait > 0 else {}
        else:
            wait = float(when or 0.0)
            options = {"countdown": wait} if wait > 0 else {}
        planned.append((str(post_id), uuid(), max(0.0, wait), options))
    try:
        headers = inflight.mark([(pid, tid, queue, wait) for pid, tid, wait, _ in planned])
    except RedisError as exc:  # sent unmarked: at worst the sweep sends one more copy
        log.warning("%d delivery message(s) sent without in-flight markers: %s",
                    len(planned), exc)
        headers = [None] * len(planned)
    for i, ((pid, tid, _, options), header) in enumerate(zip(planned, headers, strict=True)):
        try:
            deliver.apply_async((pid,), task_id=tid,
                                headers={inflight.HEADER: header} if header else None,
                                **options)
        except Exception:
            inflight.unmark([(p, t) for p, t, _, _ in planned[i:]])
            raise


def _enqueue_delivery(post_id: str, countdown: float = 0.0) -> None:
    send_deliveries([(post_id, countdown)])


def _follow_up(result: delivery.AttemptResult) -> None:
    if result.countdown is not None:
        _enqueue_delivery(result.post_id, result.countdown)


class AcceptThenAttemptTask(IntakeTask):
    """An intake task that makes its post's first provider attempt itself, after its
    answer is stored and before its message is acked: one task per post instead of two.

    The producer's `send_task` and its result see only the acceptance; the attempt runs
    from `on_success`, which Celery calls once the task's return value is stored::

        producer      worker (publish_post)               PostgreSQL        provider
           |--message-->| intake: validate, insert claimed ->| (publishing, lease)
           |<--result---| acceptance stored ("queued")       |
           |            | on_success: run_first_attempt ------------------------>| create
           |            | record the attempt --------------->|                   |
           |            | ack the message (acks_late)        |                   |

        worker killed anywhere after the insert:
           broker redelivers the message (same task id) -> intake finds the post ->
           RepeatOfDuePost -> claim under the same owner -> needs_reconcile -> look the
           post up at the provider before any resend (tasks.delivery._attempt)

    Intake hands the attempt over through `intake.HoldFirstAttempt`; what it holds is a
    `delivery.ClaimedAtInsert` (a new post) or a `delivery.RepeatOfDuePost` (a repeat).
    """

    abstract = True

    def hold_first_attempt(self) -> intake.HoldFirstAttempt:
        """Where intake leaves the first attempt for `run_first_attempt`."""

        def hold(item: delivery.FirstAttempt) -> None:
            self.request.first_attempt = item

        self.request.first_attempt = None
        return intake.HoldFirstAttempt(owner=self.request.id, hold=hold)

    def run_first_attempt(self, task_id: str) -> None:
        held: delivery.FirstAttempt | None = getattr(self.request, "first_attempt", None)
        if held is None:
            return
        try:
            _follow_up(held.run(owner=task_id))
        except Exception:
            # The post is held under a lease in PostgreSQL: when it expires the recovery
            # sweep hands it to another worker, which reconciles before any resend.
            log.exception("post %s: first attempt interrupted; recovery will resume it",
                          held.post_id)

    def on_success(self, retval: Any, task_id: str, args: Any, kwargs: Any) -> None:
        self.run_first_attempt(task_id)


@app.task(name="social.publish_post", base=AcceptThenAttemptTask, bind=True)
def publish_post(
    self: AcceptThenAttemptTask,
    user_id: str | None = None,
    content: str | None = None,
    platforms: list[str] | None = None,
    media_urls: list[str] | None = None,
    scheduled_for: str | None = None,
    campaign_id: str | None = None,
    batch_number: int | None = None,
    post_id: str | None = None,
    platform_options: dict[str, dict[str, Any]] | None = None,
    account_ids: dict[str, str] | None = None,
    notify_task: str | None = None,
    notify_queue: str | None = None,
    overrides: dict[str, dict[str, Any]] | None = None,
    **unexpected: Any,
) -> dict[str, Any]:
    """Accept one post: returns {post_id, status: queued|scheduled|failed[, error]} at once.
    The final outcome is recorded in PostgreSQL (see `socialpost show POST_ID`); with
    `notify_task` (and optionally `notify_queue`), that task is sent the final event
    (`send_task(notify_task, kwargs={"event": ...})`, at least once: dedupe on its id).
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
        "account_ids": account_ids,
        "notify_task": notify_task,
        "notify_queue": notify_queue,
        "overrides": overrides,
    }
    return intake.accept(raw, self.request.id, _enqueue_delivery, first=self.hold_first_attempt())


@app.task(name="social.publish_batch", base=AcceptThenAttemptTask, bind=True)
def publish_batch(
    self: AcceptThenAttemptTask,
    user_id: str | None = None,
    campaign_id: str | None = None,
    batch_number: int | None = None,
    platforms: list[str] | None = None,
    media_urls: list[str] | None = None,
    scheduled_for: str | None = None,
    post_id: str | None = None,
    platform_options: dict[str, dict[str, Any]] | None = None,
    account_ids: dict[str, str] | None = None,
    notify_task: str | None = None,
    notify_queue: str | None = None,
    overrides: dict[str, dict[str, Any]] | None = None,
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
        "account_ids": account_ids,
        "notify_task": notify_task,
        "notify_queue": notify_queue,
        "overrides": overrides,
    }
    return intake.accept_batch(
        raw, self.request.id, _enqueue_delivery, first=self.hold_first_attempt()
    )


@app.task(name="social.deliver", base=SocialTask, bind=True, ignore_result=True)
def deliver(self: SocialTask, post_id: str) -> str | None:
    """One provider attempt for one post. The lease owner is this task's id, so a copy
    redelivered after a worker died takes its own claim back and reconciles first."""
    result = delivery.run_attempt(post_id, owner=self.request.id)
    _follow_up(result)
    return result.status


@app.task(name="social.confirm_outcomes", base=SocialTask, ignore_result=True)
def confirm_outcomes() -> int:
    """Ask the providers what the platforms did with accepted targets (beat, every few
    seconds; PostForMe up to 100 results per call): posted only when a platform says so;
    a provider-side failure sends the target on to the next step."""
    return confirm.sweep(_enqueue_delivery)
