"""Reading the environment: each declared variable parsed by its field's type and bounds
(`load`), once per distinct environment (`current`)."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from settings.declared import Settings, SettingsError


@dataclass(frozen=True)
class Variable:
    """One documented environment variable (for docs, checks and .env.example)."""

    env: str
    field: str
    default: Any
    unit: str
    why: str
    secret: bool


VARIABLES: tuple[Variable, ...] = tuple(
    Variable(f.metadata["env"], f.name, f.default, f.metadata["unit"], f.metadata["why"],
             f.metadata["secret"])
    for f in fields(Settings)
)
_BY_FIELD = {f.name: f for f in fields(Settings)}
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _parse(name: str, raw: str) -> Any:
    f = _BY_FIELD[name]
    env, minimum, kind = f.metadata["env"], f.metadata["minimum"], f.type
    shown = "(hidden)" if f.metadata["secret"] else repr(raw)
    if kind == "bool":
        low = raw.lower()
        if low in _TRUE | _FALSE:
            return low in _TRUE
        raise SettingsError(f"{env}: must be 1 or 0 (true/false, yes/no, on/off), got {shown}")
    if kind in ("int", "float"):
        try:
            value: float = int(raw) if kind == "int" else float(raw)
        except ValueError:
            what = "a whole number" if kind == "int" else "a number"
            raise SettingsError(f"{env}: must be {what}, got {shown}") from None
        if not math.isfinite(value):
            raise SettingsError(f"{env}: must be a finite number, got {shown}")
        if minimum is not None and value < minimum:
            raise SettingsError(f"{env}: must be >= {minimum:g}, got {shown}")
        return value
    return raw


def load(environ: Mapping[str, str] | None = None) -> Settings:
    """Parse settings from `environ` (default os.environ); blank means unset."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for var in VARIABLES:
        raw = env.get(var.env, "").strip()
        if raw:
            values[var.field] = _parse(var.field, raw)
    return Settings(**values)


# (a copy of the process environment as last seen, the declared variables' values, the
# settings they gave). The copy makes the common case cheap: the engine asks for settings
# ~20 times per post, and reading the ~60 declared variables each time cost ~35 us a call
# (about 0.7 ms of worker CPU per post); comparing the environment with a copy is ~1 us.
_cache: tuple[dict[Any, Any] | None, tuple[str | None, ...], Settings] | None = None


def _environ_copy() -> dict[Any, Any] | None:
    """A shallow copy of the environment's underlying mapping (CPython keeps it in
    os.environ._data, updated by every os.environ change), or None where there is none."""
    data = getattr(os.environ, "_data", None)
    return dict(data) if isinstance(data, dict) else None


def current() -> Settings:
    """The settings of this process's environment, parsed once per distinct value."""
    global _cache
    cached = _cache
    if cached is not None and cached[0] is not None \
            and getattr(os.environ, "_data", None) == cached[0]:
        return cached[2]  # nothing in the environment changed since it was last read
    seen = _environ_copy()
    snapshot = tuple(os.environ.get(v.env) for v in VARIABLES)
    if cached is not None and cached[1] == snapshot:
        _cache = (seen, snapshot, cached[2])  # another variable changed: same settings
        return cached[2]
    loaded = load()
    _cache = (seen, snapshot, loaded)
    return loaded


def given(env: str) -> str | None:
    """The value of declared variable `env` when it is set (not blank), else None: for the
    few callers whose behaviour differs between "unset" and "set to the default" (the demo
    embeds PostgreSQL and Redis unless DATABASE_URL / REDIS_URL are given)."""
    if env not in {v.env for v in VARIABLES}:
        raise KeyError(f"{env} is not a declared setting")
    current()  # the whole environment is well-formed
    return os.environ.get(env, "").strip() or None


def check() -> Settings:
    """`current()`, for start-up: the caller turns SettingsError into one line and exit 2."""
    return current()
