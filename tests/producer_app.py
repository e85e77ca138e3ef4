"""A producer's own Celery app on our broker, for the notify_task test: it knows nothing of
our code, and its task only writes what it was sent to a Redis list the test reads.

Run as its own worker: `celery -A tests.producer_app worker -Q producer.events`.
"""

from __future__ import annotations

import json
import os
from typing import Any

import redis
from celery import Celery

BROKER = os.environ["REDIS_URL"]  # test-only process: the stack's environment names it
QUEUE = "producer.events"
RECEIVED = "producer:received"  # Redis list of JSON {"task_id", "event"}

app = Celery("producer", broker=BROKER)
app.conf.task_default_queue = QUEUE
app.conf.task_acks_late = True


@app.task(name="producer.on_event", bind=True, ignore_result=True)
def on_event(self: Any, event: dict[str, Any]) -> None:
    """Keep the event (and the task id, which is the event id) for the test to read."""
    redis.Redis.from_url(BROKER).rpush(
        RECEIVED, json.dumps({"task_id": self.request.id, "event": event}))
