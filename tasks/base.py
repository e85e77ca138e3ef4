"""The base task: owns database-outage retries so task bodies stay thin.

Any task may meet PostgreSQL restarting; it then retries with bounded backoff (the
message stays unacked meanwhile, so nothing is lost) instead of failing.
"""

from __future__ import annotations

import psycopg
import psycopg_pool
from celery import Task


class SocialTask(Task):
    abstract = True
    autoretry_for = (psycopg.OperationalError, psycopg_pool.PoolTimeout)
    retry_backoff = 1
    retry_backoff_max = 30
    retry_jitter = True
    max_retries = 60  # ~30 minutes of outage at the cap; PostgreSQL is the source of truth
