"""Baseline tasks for bench/throughput.py, loaded into the worker with `-I bench.benchtasks`.

`bench.noop` measures Celery alone; `bench.floor` adds the one create-post HTTP call the
pipeline cannot avoid. Each counts itself in Redis so the bench knows when all are done.
"""

from __future__ import annotations

import os
import threading

import redis
import requests

from worker.celery_app import app

_local = threading.local()


def _redis() -> redis.Redis:
    client = getattr(_local, "redis", None)
    if client is None:
        client = _local.redis = redis.Redis.from_url(os.environ["REDIS_URL"])
    return client


def _session() -> requests.Session:
    session = getattr(_local, "session", None)
    if session is None:
        session = _local.session = requests.Session()
        session.trust_env = False  # as our clients do: no per-request environment scan
    return session


@app.task(name="bench.noop", ignore_result=True)
def noop(counter: str) -> None:
    _redis().incr(counter)


@app.task(name="bench.floor", ignore_result=True)
def floor(counter: str, base_url: str, key: str, account_ids: list[str], n: int) -> None:
    answer = _session().post(
        f"{base_url}/social-posts",
        json={"caption": f"floor {n}", "social_accounts": account_ids,
              "external_id": f"floor-{counter}-{n}"},
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    )
    answer.raise_for_status()
    _redis().incr(counter)
