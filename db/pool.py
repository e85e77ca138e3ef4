"""One psycopg connection pool per process and DSN.

Celery's prefork children inherit the parent's memory, sockets included. A pool
created before the fork must never be used (two processes on one socket corrupt
the protocol) nor closed (closing sends Terminate on the parent's socket), so a
child parks inherited pools and lazily builds its own.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from db import config

Conn = psycopg.Connection[dict[str, Any]]

_lock = threading.Lock()
_pools: dict[str, ConnectionPool[Conn]] = {}
_pid = os.getpid()
# Pools inherited across fork: kept referenced so their connections are never finalised here.
_orphans: list[ConnectionPool[Conn]] = []


def _forget_inherited() -> None:
    global _pid
    if _pid != os.getpid():
        _orphans.extend(_pools.values())
        _pools.clear()
        _pid = os.getpid()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_inherited)


def get_pool(dsn: str | None = None) -> ConnectionPool[Conn]:
    """The pool for `dsn` (default DATABASE_URL), created on first use in this process."""
    url = config.database_url(dsn)
    with _lock:
        _forget_inherited()
        pool = _pools.get(url)
        if pool is None or pool.closed:
            sizes = config.pool_settings()
            pool = ConnectionPool(
                url,
                min_size=sizes.min_size,
                max_size=sizes.max_size,
                timeout=sizes.timeout,
                kwargs={"row_factory": dict_row},
                connection_class=psycopg.Connection,
                name=f"socialpost-{os.getpid()}",
                open=True,
            )
            _pools[url] = pool
        return pool


def close_pools() -> None:
    """Close this process's pools (at shutdown, or between tests)."""
    with _lock:
        _forget_inherited()
        pools = list(_pools.values())
        _pools.clear()
    for pool in pools:
        pool.close()


@contextmanager
def transaction(dsn: str | None = None) -> Iterator[Conn]:
    """A pooled connection inside a transaction: committed on success, rolled back on
    an exception, returned to the pool either way."""
    with get_pool(dsn).connection() as conn, conn.transaction():
        yield conn


@contextmanager
def connection(dsn: str | None = None) -> Iterator[Conn]:
    """A pooled connection in autocommit mode, for callers that run one atomic
    statement at a time (each ledger function is one)."""
    with get_pool(dsn).connection() as conn:
        conn.autocommit = True
        try:
            yield conn
        finally:
            conn.autocommit = False


def connect(dsn: str | None = None, autocommit: bool = True) -> Conn:
    """A plain connection outside any pool (scripts, benchmarks, tests)."""
    return psycopg.connect(config.database_url(dsn), autocommit=autocommit, row_factory=dict_row)
