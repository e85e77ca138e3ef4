"""Database settings: the DSN (checked once per distinct value) and the pool sizes, both
taken from the settings module."""

from __future__ import annotations

from dataclasses import dataclass

import settings
from db.errors import ConfigError

_checked: dict[str, str] = {}


def database_url(dsn: str | None = None) -> str:
    """The DSN to use: the argument, else DATABASE_URL, else the local default.
    Checked once per distinct value (it is asked for on every pooled statement)."""
    value = dsn if dsn is not None else settings.current().database_url
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
    """SOCIALPOST_DB_POOL_MIN / _MAX / _TIMEOUT (checked together by the settings module)."""
    s = settings.current()
    return PoolSettings(min_size=s.db_pool_min, max_size=s.db_pool_max, timeout=s.db_pool_timeout)
