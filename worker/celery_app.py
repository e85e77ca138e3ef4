"""The Celery app. `celery -A worker worker|beat|flower` finds it as `worker.app`.

Importing it reads no setting: celeryconfig is loaded lazily, when Celery first needs it,
so `socialpost` can check the settings and report a bad one in one line first.
"""

from __future__ import annotations

import os
from typing import Any

from celery import Celery
from celery.signals import beat_init, celeryd_init, worker_process_shutdown, worker_shutdown

app = Celery("social", include=["tasks.publish", "tasks.maintenance", "tasks.events"])
app.config_from_object("celeryconfig")
# Each worker's consumer beats, so the recovery sweep can tell what a live worker holds
# (an ETA backlog) from what a dead one, or a lost connection, dropped (tasks.inflight).
app.steps["consumer"].add("tasks.inflight:Heartbeat")


@beat_init.connect
def _make_schedule_folder(sender: Any = None, **_: Any) -> None:
    """beat keeps its schedule file in the state folder; make sure it exists (only in beat,
    so importing the app creates nothing)."""
    os.makedirs(os.path.dirname(app.conf.beat_schedule_filename) or ".", exist_ok=True)


@celeryd_init.connect
@beat_init.connect
def _no_sent_events_here(**_: Any) -> None:
    """Workers and beat send no `task-sent` events for the messages they send (releases,
    recoveries, requeues, webhook attempts): Flower sees those tasks from their receipt,
    a moment later, and each event cost more than its message (bench/schedule.py's
    profile: a release spent 0.9 ms a post on them). Producers (`PublishClient`, the
    API) still send theirs, so a post waiting in the queue shows in Flower."""
    app.conf.task_send_sent_event = False


@celeryd_init.connect
def _serve_metrics(sender: Any = None, **_: Any) -> None:
    """A worker (not beat, not a producer) serves its metrics when a port is set."""
    from worker import metrics_export

    metrics_export.start(str(sender) if sender else None)


@worker_process_shutdown.connect
def _process_metrics_end(pid: int | None = None, **_: Any) -> None:
    from worker import metrics_export

    if pid:
        metrics_export.process_ended(pid)


@worker_shutdown.connect
def _stop_metrics(**_: Any) -> None:
    from worker import metrics_export

    metrics_export.stop()
