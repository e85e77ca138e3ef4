"""Database settings from the environment, checked once so start-up fails with one line."""

from __future__ import annotations

import os
from dataclasses import dataclass

from db.errors import ConfigError

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/socialpost"


def _int_env(name: str, default: int, minimum: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {value}")
    return value


def _float_env(name: str, default: float, minimum: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {value}")
    return value


_checked: dict[str, str] = {}


def database_url(dsn: str | None = None) -> str:
    """The DSN to use: the argument, else DATABASE_URL, else the local default.
    Checked once per distinct value (it is asked for on every pooled statement)."""
    value = dsn if dsn is not None else os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL)
    known = _checked.get(value)
    if known is not None:
        return known
    checked = _check_database_url(value)
    if len(_checked) < 64:
        _checked[value] = checked
    return checked


def _check_database_url(value: str) -> str:
    value = value.strip()
    if not value:
        raise ConfigError("DATABASE_URL is empty")
    if "://" in value:
        scheme = value.split("://", 1)[0]
        if scheme not in ("postgresql", "postgres"):
            raise ConfigError(
                f"DATABASE_URL must start with postgresql://, got scheme {scheme!r}"
            )
    else:
        # key=value form ("dbname=x host=y") is valid libpq; anything else is not.
        if "=" not in value:
            raise ConfigError("DATABASE_URL must be a postgresql:// URL or libpq key=value string")
    try:
        from psycopg.conninfo import conninfo_to_dict

        conninfo_to_dict(value)
    except Exception:
        # The DSN may hold a password: do not echo it.
        raise ConfigError("DATABASE_URL is malformed (could not parse it as a libpq DSN)") from None
    return value


@dataclass(frozen=True)
class PoolSettings:
    """Pool sizing; a prefork worker child holds one pool of this size."""

    min_size: int
    max_size: int
    timeout: float


def pool_settings() -> PoolSettings:
    """Read SOCIALPOST_DB_POOL_MIN / _MAX / _TIMEOUT and check they agree."""
    min_size = _int_env("SOCIALPOST_DB_POOL_MIN", 1, 0)
    max_size = _int_env("SOCIALPOST_DB_POOL_MAX", 4, 1)
    timeout = _float_env("SOCIALPOST_DB_POOL_TIMEOUT", 30.0, 0.1)
    if max_size < min_size:
        raise ConfigError(
            f"SOCIALPOST_DB_POOL_MAX ({max_size}) must be >= SOCIALPOST_DB_POOL_MIN ({min_size})"
        )
    return PoolSettings(min_size=min_size, max_size=max_size, timeout=timeout)
