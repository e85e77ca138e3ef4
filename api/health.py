"""`/healthz` (the process answers) and `/readyz` (PostgreSQL and Redis answer): no token,
so load balancers and compose can ask. Neither says more than ok / what is down."""

from __future__ import annotations

import logging
from functools import lru_cache
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel

import settings

log = logging.getLogger("socialpost.api")
router = APIRouter(tags=["health"])
CHECK_TIMEOUT = 2.0  # seconds per store: a probe must answer before its own timeout


@router.get("/healthz", summary="The process is up")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@lru_cache(maxsize=4)
def _redis(url: str) -> Any:
    import redis

    return redis.Redis.from_url(url, socket_timeout=CHECK_TIMEOUT,
                                socket_connect_timeout=CHECK_TIMEOUT)


def _postgres_ok() -> bool:
    from db.pool import get_pool

    try:
        with get_pool().connection(timeout=CHECK_TIMEOUT) as conn:
            conn.execute("SELECT 1")
        return True
    except Exception as exc:
        log.warning("readyz: PostgreSQL: %s", type(exc).__name__)
        return False


def _redis_ok() -> bool:
    try:
        return bool(_redis(settings.current().broker_url).ping())
    except Exception as exc:
        log.warning("readyz: Redis: %s", type(exc).__name__)
        return False


class Readiness(BaseModel):
    status: str
    checks: dict[str, str]


@router.get("/readyz", summary="PostgreSQL and Redis answer", response_model=Readiness,
            responses={503: {"model": Readiness, "description": "a store is down"}})
def readyz() -> JSONResponse:
    checks = {"postgres": "ok" if _postgres_ok() else "down",
              "redis": "ok" if _redis_ok() else "down"}
    ready = all(v == "ok" for v in checks.values())
    return JSONResponse({"status": "ok" if ready else "unavailable", "checks": checks},
                        status_code=200 if ready else 503)
