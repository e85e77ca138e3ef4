"""The Celery app. `celery -A worker worker|beat|flower` finds it as `worker.app`."""

from __future__ import annotations

import os

from celery import Celery

app = Celery("social", include=["tasks.publish", "tasks.maintenance"])
app.config_from_object("celeryconfig")

# beat keeps its schedule file in the state folder; make sure it exists.
os.makedirs(os.path.dirname(app.conf.beat_schedule_filename) or ".", exist_ok=True)
