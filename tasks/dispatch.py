"""The event dispatcher's passes (beat's `social.dispatch_events` runs them).

1. Fan out: undispatched outbox events, a batch at a time under `FOR UPDATE SKIP LOCKED`,
   become one delivery per matching endpoint, and the Celery callback (notify_task) of
   a final or revised post is sent, all before the transaction that marks them
   dispatched commits. A failure rolls the batch back and the next pass does it again:
   callbacks are sent at least once, never skipped.
2. Send due deliveries: each is leased in PostgreSQL, then one attempt task is sent
   with the lease as its token. A message Redis loses only lets the lease run out.

Both are plain functions taking the senders, so they run the same under beat, in the
bench and in `socialpost webhooks test`.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import settings
from db import events, webhook_deliveries
from db.pool import connection, transaction
from tasks.webhook_send import event_body

# (task name, kwargs, queue or None, event id): a producer's Celery callback
SendCallback = Callable[[str, dict[str, Any], str | None, str], None]
SendAttempt = Callable[[int, str], None]  # (delivery id, lease token)

PASS_SECONDS = 5.0  # one beat run stops taking new batches after this long


def callback_body(event: dict[str, Any]) -> dict[str, Any]:
    """What a notify_task receives as `event`: the webhook body plus the event `id`,
    which receivers dedupe on (the task id is the event id too)."""
    return {"id": str(event["id"]), **event_body(event)}


def fan_out_once(send_callback: SendCallback, limit: int) -> int:
    """One batch of undispatched events fanned out; how many events it took."""
    with transaction() as conn:
        batch = events.take_undispatched(conn, limit)
        for event in batch:
            if event["notify_task"] and event["type"] in events.NOTIFY_TYPES:
                send_callback(event["notify_task"], {"event": callback_body(event)},
                              event["notify_queue"], str(event["id"]))
        events.fan_out(conn, [e["id"] for e in batch])
    return len(batch)


def send_due_once(send_attempt: SendAttempt, limit: int, lease_seconds: float) -> int:
    """Lease one batch of due deliveries and send an attempt task for each."""
    with connection() as conn:
        due = webhook_deliveries.take_due(conn, limit, lease_seconds)
    for delivery_id, token in due:
        send_attempt(delivery_id, token)
    return len(due)


def lease_seconds() -> float:
    """How long a sent attempt holds its delivery: its HTTP call, the task's queueing and
    a margin; after that the delivery is sent again (its message is taken as lost)."""
    return settings.current().webhook_timeout * 2 + 60.0


def attempt_expires() -> float:
    """How long an attempt's message may wait in its queue: started any later, it could
    still be running (up to its time limit, SOCIALPOST_WEBHOOK_TIMEOUT + 40 s) when the
    lease ends and beat sends the delivery again, two POSTs of one event at once."""
    return max(1.0, lease_seconds() - (settings.current().webhook_timeout + 40.0))


def dispatch(send_callback: SendCallback, send_attempt: SendAttempt) -> dict[str, int]:
    """Fan out new events, then send due deliveries, batch after batch while batches come
    back full (up to PASS_SECONDS); counts of each."""
    s = settings.current()
    started = time.monotonic()
    fanned = sent = 0
    while True:
        n = fan_out_once(send_callback, s.events_batch)
        fanned += n
        if n < s.events_batch or time.monotonic() - started > PASS_SECONDS:
            break
    while True:
        n = send_due_once(send_attempt, s.events_batch, lease_seconds())
        sent += n
        if n < s.events_batch or time.monotonic() - started > PASS_SECONDS:
            break
    return {"events": fanned, "attempts": sent}


def ping(endpoint_id: uuid.UUID | str) -> str:
    """Record a `ping` for one endpoint (sent by the next dispatcher pass, or at once by
    the caller); its event id."""
    with connection() as conn:
        return str(events.insert_ping(conn, endpoint_id))


def prune() -> int:
    """Delete delivered events past SOCIALPOST_EVENTS_RETENTION, a batch at a time."""
    s = settings.current()
    total = 0
    while True:
        with connection() as conn:
            n = events.prune(conn, s.events_retention, 5000)
        total += n
        if n < 5000:
            return total
