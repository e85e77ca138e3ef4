"""Numbered SQL migrations (db/migrations/NNNN_name.sql) applied under an advisory lock.

Safe to run from several processes at once: the database is created if missing
(a concurrent creator's "already exists" is fine), then each process takes the
same pg_advisory_lock, so the second one waits and finds nothing left to do.
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

from db import config
from db.errors import DbError

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
LOCK_KEY = 0x5C1A1_7057  # arbitrary, fixed: "social post" migrations
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


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


def apply(dsn: str | None = None) -> list[str]:
    """Create the database if needed and apply pending migrations; return what was applied."""
    url = config.database_url(dsn)
    ensure_database(url)
    todo = available()
    done: list[str] = []
    with _connect(url, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
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
