"""Migrations, schema contract with the seed, config errors and pool hygiene."""

from __future__ import annotations

import contextlib
import re
import socket
import subprocess
import sys
import threading
import time
import uuid

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from db import config, migrations, pool, states
from db.errors import DbError
from settings import SettingsError

ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


def _drop(name: str) -> None:
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_migrating_twice_changes_nothing(database_url: str) -> None:
    assert migrations.apply(database_url) == []
    assert migrations.applied(database_url) == [m.version for m in migrations.available()]


def test_concurrent_migrate_on_a_fresh_database() -> None:
    """Two processes race to create and migrate the same missing database."""
    name = f"sp_mig_{uuid.uuid4().hex[:10]}"
    dsn = ADMIN.rpartition("/")[0] + "/" + name
    code = "import sys; from db import migrations; print(','.join(migrations.apply(sys.argv[1])))"
    try:
        procs = [
            subprocess.Popen([sys.executable, "-c", code, dsn], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
            for _ in range(3)
        ]
        outs = [p.communicate(timeout=120) for p in procs]
        assert [p.returncode for p in procs] == [0, 0, 0], outs
        applied = [v for out, _ in outs for v in out.strip().split(",") if v]
        expected = [m.version for m in migrations.available()]
        assert sorted(applied) == sorted(expected)  # each version applied by exactly one
        with psycopg.connect(dsn) as conn:
            rows = conn.execute("SELECT version FROM schema_migrations ORDER BY 1").fetchall()
            assert [r[0] for r in rows] == expected
            assert conn.execute("SELECT to_regclass('social_posts')").fetchone() != (None,)
        # a thread in this process migrating again finds nothing to do
        assert migrations.apply(dsn) == []
    finally:
        _drop(name)


def test_edited_migration_is_refused(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    real = migrations.available()
    edited = [migrations.Migration(real[0].version, real[0].name, real[0].sql + "\n-- edit")]
    monkeypatch.setattr(migrations, "available", lambda: edited + real[1:])
    with pytest.raises(DbError, match="edited after it was applied"):
        migrations.apply(database_url)


def _check_values(conn: psycopg.Connection, constraint: str) -> set[str]:
    row = conn.execute(
        "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = %s", (constraint,)
    ).fetchone()
    assert row is not None, constraint
    return set(re.findall(r"'([a-z_]+)'::text", row[0]))


def test_check_constraints_match_states(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        assert _check_values(conn, "social_posts_status_check") == set(states.STATUSES)
        assert _check_values(conn, "post_targets_status_check") == set(states.TARGET_STATUSES)


SEED_COLUMNS = {
    "user_social_credentials": {
        "user_id": "uuid", "provider": "text", "encrypted_api_key": "text",
        "connected_platforms": "ARRAY", "updated_at": "timestamp with time zone",
    },
    "social_posts": {
        "id": "uuid", "user_id": "uuid", "provider": "text", "provider_post_id": "text",
        "platforms": "ARRAY", "platform_post_ids": "jsonb", "platform_post_urls": "jsonb",
        "content": "text", "media_urls": "ARRAY", "scheduled_for": "timestamp with time zone",
        "posted_at": "timestamp with time zone", "status": "text", "error_message": "text",
        "campaign_id": "uuid", "batch_number": "integer",
        "created_at": "timestamp with time zone",
    },
}


def test_seed_tables_keep_every_column_and_type(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        for table, columns in SEED_COLUMNS.items():
            rows = conn.execute(
                """SELECT column_name, data_type FROM information_schema.columns
                   WHERE table_name = %s""",
                (table,),
            ).fetchall()
            have: dict[str, str] = dict(rows)
            for col, typ in columns.items():
                assert have.get(col) == typ, (table, col, have.get(col))
        pk = conn.execute(
            """SELECT array_agg(a.attname ORDER BY a.attname) FROM pg_index i
               JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
               WHERE i.indrelid = 'user_social_credentials'::regclass AND i.indisprimary"""
        ).fetchone()
        assert pk is not None and sorted(pk[0]) == ["provider", "user_id"]
        # the seed's own insert (no id) still works: gen_random_uuid() default
        row = conn.execute(
            """INSERT INTO social_posts (user_id, platforms, content, status)
               VALUES (gen_random_uuid(), '{twitter}', 'seed style', 'posted') RETURNING id"""
        ).fetchone()
        assert row is not None and isinstance(row[0], uuid.UUID)
        conn.rollback()


def test_unknown_status_is_refused_by_the_database(database_url: str) -> None:
    with psycopg.connect(database_url) as conn, pytest.raises(psycopg.errors.CheckViolation):
        conn.execute(
            "INSERT INTO social_posts (user_id, status) VALUES (gen_random_uuid(), 'bogus')"
        )


@pytest.mark.parametrize(
    ("env", "value", "needle"),
    [
        ("DATABASE_URL", "mysql://x/y", "DATABASE_URL"),
        ("DATABASE_URL", "not a dsn", "DATABASE_URL"),
        ("SOCIALPOST_DB_POOL_MAX", "many", "SOCIALPOST_DB_POOL_MAX"),
        ("SOCIALPOST_DB_POOL_MIN", "-1", "SOCIALPOST_DB_POOL_MIN"),
        ("SOCIALPOST_DB_POOL_TIMEOUT", "soon", "SOCIALPOST_DB_POOL_TIMEOUT"),
    ],
)
def test_bad_settings_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, env: str, value: str, needle: str
) -> None:
    monkeypatch.setenv(env, value)
    with pytest.raises(SettingsError, match=needle) as info:
        config.database_url()
        config.pool_settings()
    assert "\n" not in str(info.value)


def test_pool_max_below_min_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOCIALPOST_DB_POOL_MIN", "5")
    monkeypatch.setenv("SOCIALPOST_DB_POOL_MAX", "2")
    with pytest.raises(SettingsError, match="SOCIALPOST_DB_POOL_MAX"):
        config.pool_settings()


def test_transaction_rolls_back_and_returns_the_connection(database_url: str) -> None:
    user = uuid.uuid4()
    p = pool.get_pool(database_url)
    assert p is pool.get_pool(database_url)  # one pool per process and dsn
    for _ in range(p.max_size + 2):  # more than the pool holds: a leak would block here
        with pytest.raises(RuntimeError), pool.transaction(database_url) as conn:
            conn.execute(
                "INSERT INTO campaigns (user_id, name) VALUES (%s, 'rolled back')", (user,)
            )
            raise RuntimeError("boom")
    with pool.transaction(database_url) as conn:
        row = conn.execute("SELECT count(*) AS n FROM campaigns WHERE user_id = %s", (user,))
        assert row.fetchone() == {"n": 0}
    # every connection is back; one the pool is still opening in the background (it grows
    # when a request had to queue) counts in pool_size before it is available: wait for it
    deadline = time.monotonic() + 10
    while True:
        stats = p.get_stats()
        in_use = stats.get("pool_size", 0) - stats.get("pool_available", 0)
        if in_use == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert in_use == 0, stats


def test_pool_is_rebuilt_after_fork(database_url: str) -> None:
    """A forked child must not reuse the parent's pool (shared sockets)."""
    import os

    parent = pool.get_pool(database_url)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        ok = 0
        try:
            child = pool.get_pool(database_url)
            with pool.transaction(database_url) as conn:
                conn.execute("SELECT 1")
            ok = int(child is not parent)
        finally:
            os.write(write, str(ok).encode())
            os._exit(0)
    os.waitpid(pid, 0)
    assert os.read(read, 1) == b"1"
    with pool.transaction(database_url) as conn:  # the parent's pool still works
        assert conn.execute("SELECT 1 AS x").fetchone() == {"x": 1}


# -- bounded waits: the migration lock, a PostgreSQL still starting --------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _dsn_on(port: int, database_url: str) -> str:
    return make_conninfo(database_url, host="127.0.0.1", port=str(port))


def test_migrate_gives_up_waiting_for_the_lock_and_names_its_holder(database_url: str) -> None:
    """A migrate stuck holding the lock used to leave every other one waiting forever."""
    with psycopg.connect(database_url, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", (migrations.LOCK_KEY,))
        pid = holder.info.backend_pid
        start = time.monotonic()
        with pytest.raises(DbError) as info:
            migrations.apply(database_url, lock_wait=0.5)
        waited = time.monotonic() - start
    assert 0.5 <= waited < 5, waited
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("gave up after 0.5 s waiting for the migration lock")
    assert f"pid {pid}" in message


def test_the_holder_named_is_in_this_database_not_another(database_url: str) -> None:
    """Advisory locks are per database: a migrate of another database on the same server
    (another deployment, a parallel test session) holds its own and is not named."""
    elsewhere = make_conninfo(database_url, dbname="postgres")
    with psycopg.connect(elsewhere, autocommit=True) as other, \
            psycopg.connect(database_url, autocommit=True) as holder:
        other.execute("SELECT pg_advisory_lock(%s)", (migrations.LOCK_KEY,))
        holder.execute("SELECT pg_advisory_lock(%s)", (migrations.LOCK_KEY,))
        with pytest.raises(DbError) as info:
            migrations.apply(database_url, lock_wait=0.2)
        mine, theirs = holder.info.backend_pid, other.info.backend_pid
    assert f"held by PostgreSQL backend pid {mine} (" in str(info.value)
    assert str(theirs) not in str(info.value)


def test_migrate_waits_for_the_lock_and_then_finds_nothing_to_do(database_url: str) -> None:
    holder = psycopg.connect(database_url, autocommit=True)
    holder.execute("SELECT pg_advisory_lock(%s)", (migrations.LOCK_KEY,))
    release = threading.Timer(0.6, holder.close)  # the session's end frees its lock
    release.start()
    try:
        start = time.monotonic()
        assert migrations.apply(database_url, lock_wait=30) == []
        assert time.monotonic() - start >= 0.5
    finally:
        release.join()


def test_wait_until_up_gives_up_after_its_bound_naming_the_server(database_url: str) -> None:
    port = _free_port()  # nothing listens there
    start = time.monotonic()
    with pytest.raises(DbError) as info:
        migrations.apply(_dsn_on(port, database_url), connect_wait=1)
    waited = time.monotonic() - start
    assert 1 <= waited < 5, waited
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"gave up after 1 s waiting for PostgreSQL at 127.0.0.1:{port}: ")
    assert "Connection refused" in message


def test_wait_until_up_refused_by_a_running_server_fails_at_once(database_url: str) -> None:
    """A server that answers 'no such role' will not change its mind: no waiting."""
    dsn = make_conninfo(database_url, user=f"nobody_{uuid.uuid4().hex[:8]}")
    start = time.monotonic()
    with pytest.raises(DbError, match="^cannot connect to DATABASE_URL: .*does not exist"):
        migrations.apply(dsn, connect_wait=30)
    assert time.monotonic() - start < 5


def test_wait_until_up_waits_for_a_server_that_comes_up(database_url: str) -> None:
    """PostgreSQL starts listening (here: a forwarder to it opens its port) 0.8 s late."""
    port = _free_port()
    stop = threading.Event()

    def pump(src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                dst.sendall(data)
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def forward() -> None:
        time.sleep(0.8)
        with socket.create_server(("127.0.0.1", port)) as server:
            server.settimeout(0.2)
            while not stop.is_set():
                try:
                    client, _ = server.accept()
                except TimeoutError:
                    continue
                upstream = socket.create_connection(("127.0.0.1", 5432))
                for a, b in ((client, upstream), (upstream, client)):
                    threading.Thread(target=pump, args=(a, b), daemon=True).start()

    thread = threading.Thread(target=forward, daemon=True)
    thread.start()
    try:
        start = time.monotonic()
        migrations.wait_until_up(_dsn_on(port, database_url), timeout=20)
        assert time.monotonic() - start >= 0.7
    finally:
        stop.set()
        thread.join(timeout=5)
