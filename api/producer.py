"""The producer client the API enqueues through (tasks.client.PublishClient: the same code
as every other producer), one per process."""

from __future__ import annotations

from functools import lru_cache

from tasks.client import PublishClient


@lru_cache(maxsize=1)
def client() -> PublishClient:
    return PublishClient()
