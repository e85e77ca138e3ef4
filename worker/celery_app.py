"""The Celery app. `celery -A worker worker|beat|flower` finds it as `worker.app`.

Importing it reads no setting: celeryconfig is loaded lazily, when Celery first needs it,
so `socialpost` can check the settings and report a bad one in one line first.
"""

from __future__ import annotations

import os
from typing import Any

from celery import Celery
from celery.signals import beat_init

app = Celery("social", include=["tasks.publish", "tasks.maintenance", "tasks.events"])
app.config_from_object("celeryconfig")


@beat_init.connect
def _make_schedule_folder(sender: Any = None, **_: Any) -> None:
    """beat keeps its schedule file in the state folder; make sure it exists (only in beat,
    so importing the app creates nothing)."""
    os.makedirs(os.path.dirname(app.conf.beat_schedule_filename) or ".", exist_ok=True)
