"""The credential vault: encryption at rest, clear key errors, and key rotation."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest
from cryptography.fernet import Fernet

from db import credentials, migrations, pool
from db.errors import InvalidInput, VaultError
from db.vault import Vault

ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


def _key() -> str:
    return Fernet.generate_key().decode()


def _api_key(conn: pool.Conn, vault: Vault, user: uuid.UUID, provider: str) -> str:
    cred = credentials.get_credentials(conn, vault, user, provider)
    assert cred is not None
    return cred.api_key


@pytest.fixture
def own_db() -> Iterator[str]:
    """Rotation walks the whole table, so it gets a database of its own."""
    name = f"sp_rot_{uuid.uuid4().hex[:10]}"
    dsn = ADMIN.rpartition("/")[0] + "/" + name
    migrations.apply(dsn)
    yield dsn
    pool.close_pools()
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_save_get_delete_round_trip(database_url: str) -> None:
    vault = Vault([_key()])
    user = uuid.uuid4()
    with pool.transaction(database_url) as conn:
        credentials.save_credentials(conn, vault, user, "postforme", "sk-live-123", ["twitter"])
        cred = credentials.get_credentials(conn, vault, str(user), "postforme")
        assert cred is not None
        assert cred.api_key == "sk-live-123"
        assert cred.connected_platforms == ["twitter"]
        assert cred.updated_at is not None and cred.valid
        assert "sk-live-123" not in repr(cred) and "sk-live-123" not in str(cred)
        stored = conn.execute(
            "SELECT encrypted_api_key FROM user_social_credentials WHERE user_id = %s", (user,)
        ).fetchone()
        assert stored is not None and "sk-live-123" not in stored["encrypted_api_key"]
        assert credentials.get_credentials(conn, vault, user, "late") is None
        infos = credentials.list_credentials(conn, user)
        assert [(i.provider, i.connected_platforms) for i in infos] == [("postforme", ["twitter"])]
        assert not hasattr(infos[0], "api_key") and not hasattr(infos[0], "encrypted_api_key")
        assert credentials.delete_credentials(conn, user, "postforme") is True
        assert credentials.delete_credentials(conn, user, "postforme") is False
        assert credentials.get_credentials(conn, vault, user, "postforme") is None


def test_invalid_marking_platforms_and_upsert(database_url: str) -> None:
    vault = Vault([_key()])
    user = uuid.uuid4()
    with pool.transaction(database_url) as conn:
        credentials.save_credentials(conn, vault, user, "late", "k1", ["twitter"])
        assert credentials.mark_invalid(conn, user, "late", "HTTP 401") is True
        cred = credentials.get_credentials(conn, vault, user, "late")
        assert cred is not None and cred.invalid_at is not None
        assert cred.invalid_reason == "HTTP 401"
        assert credentials.set_connected_platforms(conn, user, "late", ["bluesky", "threads"])
        # a new key is presumed good; platforms are kept when not given
        credentials.save_credentials(conn, vault, user, "late", "k2")
        cred = credentials.get_credentials(conn, vault, user, "late")
        assert cred is not None and cred.api_key == "k2" and cred.invalid_at is None
        assert cred.connected_platforms == ["bluesky", "threads"]
        assert credentials.mark_invalid(conn, uuid.uuid4(), "late", "x") is False


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"user_id": "abc"}, "user_id"),
        ({"provider": "buffer"}, "provider"),
        ({"api_key": "  "}, "api_key"),
        ({"connected_platforms": ["twitter", "twitter"]}, "connected_platforms"),
    ],
)
def test_bad_inputs_are_refused(database_url: str, kwargs: dict, field: str) -> None:
    args = {"user_id": uuid.uuid4(), "provider": "late", "api_key": "k",
            "connected_platforms": None, **kwargs}
    with pool.transaction(database_url) as conn, pytest.raises(InvalidInput) as info:
        credentials.save_credentials(conn, Vault([_key()]), **args)
    assert info.value.field == field
    assert str(info.value).startswith(f"{field}:")


def test_wrong_key_gives_one_clear_error(database_url: str) -> None:
    right, wrong = _key(), _key()
    user = uuid.uuid4()
    with pool.transaction(database_url) as conn:
        credentials.save_credentials(conn, Vault([right]), user, "postforme", "sk-secret-xyz")
        stored = conn.execute(
            "SELECT encrypted_api_key FROM user_social_credentials WHERE user_id = %s", (user,)
        ).fetchone()
        assert stored is not None
        token = stored["encrypted_api_key"]
        with pytest.raises(VaultError) as info:
            credentials.get_credentials(conn, Vault([wrong]), user, "postforme")
    message = str(info.value)
    assert "ENCRYPTION_KEY" in message and "\n" not in message
    for secret in (right, wrong, token, "sk-secret-xyz"):
        assert secret not in message
    assert info.value.__cause__ is None and info.value.__suppress_context__


@pytest.mark.parametrize("value", ["", "   ", "not-a-key", f"{_key()},garbage"],
                         ids=["empty", "blank", "not-a-key", "second-is-garbage"])
def test_missing_or_malformed_key(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("ENCRYPTION_KEY", value)
    with pytest.raises(VaultError, match="ENCRYPTION_KEY") as info:
        Vault.from_env()
    assert "garbage" not in str(info.value) and "not-a-key" not in str(info.value)
    assert info.value.__cause__ is None


def test_several_keys_first_encrypts_all_decrypt(monkeypatch: pytest.MonkeyPatch) -> None:
    new, old = _key(), _key()
    old_token = Vault([old]).encrypt("sk-1")
    monkeypatch.setenv("ENCRYPTION_KEY", f"{new}, {old}")
    vault = Vault.from_env()
    assert vault.decrypt(old_token) == "sk-1"
    assert not vault.is_current(old_token)
    assert Vault([new]).decrypt(vault.encrypt("sk-2")) == "sk-2"
    assert new not in repr(vault)


def test_rotation_with_old_and_new_key(own_db: str) -> None:
    old, new = _key(), _key()
    users = [uuid.uuid4() for _ in range(7)]
    with pool.transaction(own_db) as conn:
        for i, user in enumerate(users):
            credentials.save_credentials(conn, Vault([old]), user, "postforme", f"pf-{i}")
            credentials.save_credentials(conn, Vault([old]), user, "late", f"late-{i}")
        # one row already on the new key: skipped, not broken
        credentials.save_credentials(conn, Vault([new]), users[0], "late", "late-0")
    seen: list[tuple[int, int]] = []
    rotated = credentials.rotate_all(
        own_db, Vault([new, old]), batch_size=4, progress=lambda s, r: seen.append((s, r))
    )
    assert rotated == 13
    assert seen[-1] == (14, 13) and len(seen) == 4
    only_new = Vault([new])
    with pool.transaction(own_db) as conn:
        for i, user in enumerate(users):
            assert _api_key(conn, only_new, user, "postforme") == f"pf-{i}"
            assert _api_key(conn, only_new, user, "late") == f"late-{i}"
    assert credentials.rotate_all(own_db, Vault([new, old]), batch_size=4) == 0


def test_interrupted_rotation_resumes(own_db: str) -> None:
    old, new = _key(), _key()
    users = [uuid.uuid4() for _ in range(10)]
    with pool.transaction(own_db) as conn:
        for user in users:
            credentials.save_credentials(conn, Vault([old]), user, "late", f"k-{user}")

    def stop_after_first_batch(scanned: int, rotated: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        credentials.rotate_all(own_db, Vault([new, old]), batch_size=3,
                               progress=stop_after_first_batch)
    with pool.transaction(own_db) as conn:
        tokens = [r["encrypted_api_key"] for r in conn.execute(
            "SELECT encrypted_api_key FROM user_social_credentials")]
    assert sum(Vault([new]).is_current(t) for t in tokens) == 3  # the first batch committed
    assert credentials.rotate_all(own_db, Vault([new, old]), batch_size=3) == 7
    with pool.transaction(own_db) as conn:
        for user in users:
            assert _api_key(conn, Vault([new]), user, "late") == f"k-{user}"


def test_rotation_without_the_old_key_stops_clearly(own_db: str) -> None:
    old = _key()
    user = uuid.uuid4()
    with pool.transaction(own_db) as conn:
        credentials.save_credentials(conn, Vault([old]), user, "late", "k")
    with pytest.raises(VaultError, match="ENCRYPTION_KEY") as info:
        credentials.rotate_all(own_db, Vault([_key()]))
    assert str(user) in str(info.value) and old not in str(info.value)
    with pool.transaction(own_db) as conn:  # nothing was changed
        assert _api_key(conn, Vault([old]), user, "late") == "k"
