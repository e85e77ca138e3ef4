"""Event tasks: beat's dispatcher, one task per webhook attempt, the pruner.

Thin: tasks.dispatch and tasks.webhook_send decide. Arguments are ids and lease tokens,
never a secret or a payload, so Flower may show them.
"""

from __future__ import annotations

from typing import Any

from tasks import dispatch, webhook_send
from tasks.base import SocialTask
from worker.celery_app import app


def _send_callback(task: str, kwargs: dict[str, Any], queue: str | None,
                   event_id: str) -> None:
    # The task id is the event id: a receiver (or its result backend) sees a repeat as one.
    app.send_task(task, kwargs=kwargs, queue=queue, task_id=event_id)


def _send_attempt(delivery_id: int, token: str) -> None:
    # Routed to social.events by celeryconfig (a slow receiver holds only those slots).
    deliver_webhook.apply_async((delivery_id, token), expires=dispatch.attempt_expires())


@app.task(name="social.dispatch_events", base=SocialTask, ignore_result=True)
def dispatch_events() -> dict[str, int]:
    """Fan new post events out to webhook deliveries and Celery callbacks; send an
    attempt task for every due delivery (beat, every SOCIALPOST_EVENTS_INTERVAL s)."""
    return dispatch.dispatch(_send_callback, _send_attempt)


# No worker-side monitoring events (received, started, succeeded) for attempts: three
# Redis publishes per attempt, for every event of every post, would cost more than the
# attempt; the delivery log in PostgreSQL (socialpost webhooks deliveries) is the record.
@app.task(name="social.deliver_webhook", base=SocialTask, ignore_result=True,
          send_events=False)
def deliver_webhook(delivery_id: int, token: str) -> str:
    """One attempt of one webhook delivery; its outcome and the next attempt's time are
    recorded in PostgreSQL (beat sends the retry when it is due)."""
    return webhook_send.attempt(int(delivery_id), str(token))


@app.task(name="social.prune_events", base=SocialTask, ignore_result=True)
def prune_events() -> int:
    """Delete delivered events older than SOCIALPOST_EVENTS_RETENTION (beat, hourly)."""
    return dispatch.prune()
