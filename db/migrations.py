"""Numbered SQL migrations (db/migrations/NNNN_name.sql) applied under an advisory lock.

Safe to run from several processes at once: the database is created if missing
(a concurrent creator's "already exists" is fine), then each process takes the
same advisory lock, so the second one waits and finds nothing left to do.

Both waits are bounded (tenacity): for a PostgreSQL that is still starting when
asked to (`connect_wait`), and for the lock (`lock_wait`), so a migrate stuck
holding it ends the others with an error naming it instead of a silent hang.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import errors as pg_errors
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from tenacity import (
    Retrying,
    retry_if_exception,
    retry_if_result,
    stop_after_delay,
    wait_exponential,
    wait_random,
)

from db import config
from db.errors import DbError

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
LOCK_KEY = 0x5C1A1_7057  # arbitrary, fixed: "social post" migrations
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
LOCK_WAIT_SECONDS = 600.0  # longer than any migration here takes; then something is stuck
# Polling intervals of both waits: quick at first, then about every second, jittered so
# the migrates of containers started together do not poll in step.
_WAIT = wait_exponential(multiplier=0.05, max=1.0) + wait_random(0, 0.1)


@dataclass(frozen=True)
class Migration:
    version: str
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def available() -> list[Migration]:
    """Every migration file, in version order."""
    out = []
    for path in sorted(MIGRATIONS_DIR.glob("*.sql")):
        m = _NAME.match(path.name)
        if not m:
            raise DbError(f"migration file {path.name!r} is not named NNNN_name.sql")
        out.append(Migration(m.group(1), m.group(2), path.read_text(encoding="utf-8")))
    versions = [m.version for m in out]
    if len(set(versions)) != len(versions):
        raise DbError("two migration files share a version number")
    return out


def _connect(dsn: str, **kw: object) -> psycopg.Connection[tuple[object, ...]]:
    try:
        return psycopg.connect(dsn, connect_timeout=10, **kw)  # type: ignore[arg-type]
    except psycopg.OperationalError as exc:
        raise DbError(f"cannot connect to DATABASE_URL: {_first_line(exc)}") from None


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _not_up_yet(exc: BaseException) -> bool:
    """No server answered, or it answered that it is still starting: worth waiting for.
    A running server's refusal (no such role, bad password) is final."""
    if not isinstance(exc, psycopg.OperationalError):
        return False
    text = str(exc)
    return "FATAL:" not in text or "starting up" in text


def _server(url: str) -> str:
    params = conninfo_to_dict(url)
    return f"{params.get('host') or 'localhost'}:{params.get('port') or 5432}"


def wait_until_up(dsn: str | None = None, timeout: float = 0) -> None:
    """Return once PostgreSQL accepts connections, trying for at most `timeout` seconds
    (0: once); DbError naming the server and the last error when it does not. A missing
    database counts as up: ensure_database creates it."""
    url = config.database_url(dsn)

    def probe() -> None:
        try:
            psycopg.connect(url, connect_timeout=10).close()
        except psycopg.OperationalError as exc:
            if "does not exist" not in str(exc):
                raise

    retrying = Retrying(
        stop=stop_after_delay(timeout), wait=_WAIT, retry=retry_if_exception(_not_up_yet),
        reraise=True,
    )
    try:
        retrying(probe)
    except psycopg.OperationalError as exc:
        if timeout > 0 and _not_up_yet(exc):
            raise DbError(
                f"gave up after {timeout:g} s waiting for PostgreSQL at {_server(url)}: "
                f"{_first_line(exc)}"
            ) from None
        raise DbError(f"cannot connect to DATABASE_URL: {_first_line(exc)}") from None


def _lock(conn: psycopg.Connection[tuple[object, ...]], timeout: float) -> None:
    """Take the migration lock, trying for at most `timeout` seconds; DbError naming the
    backend that holds it when that runs out."""

    def attempt() -> bool:
        row = conn.execute("SELECT pg_try_advisory_lock(%s)", (LOCK_KEY,)).fetchone()
        return bool(row and row[0])

    retrying = Retrying(
        stop=stop_after_delay(timeout), wait=_WAIT, retry=retry_if_result(lambda got: not got),
        retry_error_callback=lambda state: False,
    )
    if retrying(attempt):
        return
    holder = conn.execute(
        """SELECT string_agg(pid::text, ', ') FROM pg_locks
           WHERE locktype = 'advisory' AND granted AND objsubid = 1
             AND classid = %s::oid AND objid = %s::oid
             AND database = (SELECT oid FROM pg_database
                             WHERE datname = current_database())""",
        (LOCK_KEY >> 32, LOCK_KEY & 0xFFFFFFFF),
    ).fetchone()
    by = f"PostgreSQL backend pid {holder[0]}" if holder and holder[0] else "another session"
    raise DbError(
        f"gave up after {timeout:g} s waiting for the migration lock, held by {by} "
        "(another `socialpost migrate` still running?)"
    )


def ensure_database(dsn: str | None = None) -> bool:
    """Create the database named in `dsn` when it does not exist; True if we created it."""
    url = config.database_url(dsn)
    params = conninfo_to_dict(url)
    dbname = str(params.get("dbname") or params.get("user") or "postgres")
    try:
        with psycopg.connect(url, connect_timeout=10):
            return False
    except psycopg.OperationalError as exc:
        if "does not exist" not in str(exc):
            raise DbError(f"cannot connect to DATABASE_URL: {_first_line(exc)}") from None
    admin = make_conninfo(url, dbname="postgres")
    with _connect(admin, autocommit=True) as conn:
        try:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
        except (pg_errors.DuplicateDatabase, pg_errors.UniqueViolation):
            return False  # another process won the race: fine
        except psycopg.errors.InsufficientPrivilege:
            raise DbError(
                f"database {dbname!r} does not exist and this role may not create it"
            ) from None
    return True


def applied(dsn: str | None = None) -> list[str]:
    """Versions recorded in schema_migrations (empty when the table is missing)."""
    with _connect(config.database_url(dsn)) as conn:
        exists = conn.execute("SELECT to_regclass('schema_migrations')").fetchone()
        if not exists or exists[0] is None:
            return []
        rows = conn.execute("SELECT version FROM schema_migrations ORDER BY version").fetchall()
        return [str(r[0]) for r in rows]


def apply(
    dsn: str | None = None, *, connect_wait: float = 0, lock_wait: float = LOCK_WAIT_SECONDS
) -> list[str]:
    """Create the database if needed and apply pending migrations; return what was applied.

    `connect_wait`: seconds to wait for PostgreSQL to come up (0: fail at once).
    `lock_wait`: seconds to wait for a concurrent migrate to finish."""
    url = config.database_url(dsn)
    if connect_wait > 0:
        wait_until_up(url, connect_wait)
    ensure_database(url)
    todo = available()
    done: list[str] = []
    with _connect(url, autocommit=True) as conn:
        _lock(conn, lock_wait)
        try:
            conn.execute(
                """CREATE TABLE IF NOT EXISTS schema_migrations (
                       version    TEXT PRIMARY KEY,
                       name       TEXT NOT NULL,
                       checksum   TEXT NOT NULL,
                       applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"""
            )
            have = {
                str(r[0]): str(r[1])
                for r in conn.execute("SELECT version, checksum FROM schema_migrations")
            }
            for mig in todo:
                if mig.version in have:
                    if have[mig.version] != mig.checksum:
                        raise DbError(
                            f"migration {mig.version}_{mig.name} was edited after it was "
                            "applied; add a new migration instead"
                        )
                    continue
                try:
                    with conn.transaction():
                        conn.execute(mig.sql.encode())
                        conn.execute(
                            "INSERT INTO schema_migrations (version, name, checksum)"
                            " VALUES (%s, %s, %s)",
                            (mig.version, mig.name, mig.checksum),
                        )
                except psycopg.Error as exc:
                    raise DbError(
                        f"migration {mig.version}_{mig.name} failed: {_first_line(exc)}"
                    ) from None
                done.append(mig.version)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))
    return done
