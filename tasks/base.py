"""The base task: owns database-outage retries so task bodies stay thin.

Any task may meet PostgreSQL restarting or unreachable; it then retries with bounded
backoff, without giving up (the message stays unacked meanwhile, and PostgreSQL is the
source of truth: a task that stopped retrying would drop what it carries). An intake task
that fails on any other error is parked in the dead-letter queue instead of being acked
and lost; `socialpost dead-letters replay` sends it back once the cause is mended.
"""

from __future__ import annotations

import logging
from typing import Any

import psycopg
import psycopg_pool
from billiard.exceptions import WorkerLostError
from celery import Task

import settings

log = logging.getLogger("socialpost.tasks")

DEAD_LETTER_QUEUE = "social.dead_letter"


class SocialTask(Task):
    abstract = True
    autoretry_for = (psycopg.OperationalError, psycopg.InterfaceError, psycopg_pool.PoolTimeout)
    retry_backoff = 1
    retry_backoff_max = settings.current().db_retry_max  # far below the visibility timeout
    retry_jitter = True
    max_retries = None  # for as long as the database is unreachable


class IntakeTask(SocialTask):
    """A task carrying a producer's request: it must never be dropped."""

    abstract = True

    def on_failure(self, exc: BaseException, task_id: str, args: Any, kwargs: Any,
                   einfo: Any) -> None:
        """Not a database outage (those retry): park the request, same id and arguments,
        in the dead-letter queue that no worker consumes by default. A worker lost mid-task
        is not parked: its message goes back to the queue (task_reject_on_worker_lost)."""
        if isinstance(exc, WorkerLostError):
            return
        try:
            self.app.send_task(self.name, args=args, kwargs=kwargs, task_id=task_id,
                               queue=DEAD_LETTER_QUEUE, ignore_result=True)
            log.error("%s %s failed (%s: %s); parked in %s for `socialpost dead-letters "
                      "replay`", self.name, task_id, type(exc).__name__, exc,
                      DEAD_LETTER_QUEUE)
        except Exception:
            log.exception("%s %s failed and could not be parked", self.name, task_id)
