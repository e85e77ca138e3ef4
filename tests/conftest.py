"""Shared fixtures: a fresh PostgreSQL database and Redis db per test run, and the sandbox.

Everything is real: the PostgreSQL and Redis on the machine's standard ports (scripts/test
starts them if they are down) and our sandbox HTTP server on a free loopback port.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

# The sandbox and the tests live on loopback: media URLs there must be allowed.
os.environ.setdefault("SOCIALPOST_ALLOW_PRIVATE_URLS", "1")
os.environ.setdefault("LATE_CDN_WAIT_SECONDS", "0")
# Flow control is on in every test, with budgets that do not bind (the sandbox's keys are
# shared by many tests); tests of pacing, caps and the circuit set their own values.
os.environ.setdefault("POSTFORME_RATE_LIMITS", "1000/second")
os.environ.setdefault("LATE_RATE_LIMITS", "1000/second")
os.environ.setdefault("SOCIALPOST_ACCOUNT_CAPS", "none")
os.environ.setdefault("SOCIALPOST_CIRCUIT_FAILURES", "1000")

ADMIN_DSN = os.environ.get("TEST_ADMIN_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_BASE = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379")


def _dsn_for(dbname: str) -> str:
    base, _, _ = ADMIN_DSN.rpartition("/")
    return f"{base}/{dbname}"


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """A database of its own for this run, migrated, dropped at the end."""
    import psycopg

    from db import migrations

    name = f"sp_test_{uuid.uuid4().hex[:10]}"
    dsn = _dsn_for(name)
    migrations.apply(dsn)  # creates the database when missing
    os.environ["DATABASE_URL"] = dsn
    yield dsn
    with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _xdist_db() -> str | None:
    """Parallel sessions (scripts/test runs `pytest -n N`) each get a db of their own,
    counted from TEST_REDIS_DB when given (else from 1): sessions sharing one db would
    consume each other's tasks."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if not worker.startswith("gw"):
        return None
    return str(int(os.environ.get("TEST_REDIS_DB") or 1) + int(worker[2:]))


@pytest.fixture(scope="session")
def redis_url() -> str:
    """A Redis logical db for this run, emptied first: one per pytest-xdist worker
    (gw0 → TEST_REDIS_DB or 1, gw1 → the next, …), else TEST_REDIS_DB, else one by pid."""
    import redis

    db = _xdist_db() or os.environ.get("TEST_REDIS_DB") or str(1 + os.getpid() % 14)
    url = f"{REDIS_BASE}/{db}"
    redis.Redis.from_url(url).flushdb()
    return url


@pytest.fixture(scope="session")
def sandbox_server() -> Iterator[object]:
    """One sandbox for the run, serving both providers on a free loopback port."""
    from providers.sandbox import SandboxServer

    server = SandboxServer(host="127.0.0.1", port=0)
    server.start()
    os.environ["POSTFORME_BASE_URL"] = server.postforme_url
    os.environ["LATE_BASE_URL"] = server.late_url
    yield server
    server.stop()


@pytest.fixture
def sandbox(sandbox_server: object) -> object:
    """The sandbox with its state (posts, keys, faults, stats) reset for this test."""
    sandbox_server.reset()  # type: ignore[attr-defined]
    return sandbox_server


from tests.flow_state import clear_flow_state  # noqa: E402


@pytest.fixture(autouse=True)
def _fresh_flow_state() -> Iterator[None]:
    """Each test starts with no key blocked, no line and no circuit open: a 429 with a
    long Retry-After in one test must not pace the next test's calls on the same key."""
    yield
    clear_flow_state()


# Files whose tests wait longest go out first, so parallel sessions finish together
# (scripts/test runs `pytest -n N --dist loadfile`): the paced campaign waits five minutes.
SLOW_FIRST = ("test_flow.py",)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        name = item.path.name
        return SLOW_FIRST.index(name) if name in SLOW_FIRST else len(SLOW_FIRST)

    items.sort(key=rank)  # stable: within a file, the written order stays
