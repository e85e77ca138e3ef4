"""Every environment variable social-posting reads, in one place: name, default, unit, why.

Nothing else in the code reads the environment for a setting. `current()` parses the
environment once and returns the same frozen `Settings` for as long as the variables it
declares keep their values (tests and the demo set some after import; a changed value
is parsed again, once). A malformed value raises `SettingsError` naming the variable
and the rule; `socialpost worker|beat|flower|demo|api` call `check()` first, so a bad
value stops start-up with one line instead of failing every task later.

`.env.example` and the README's configuration table are checked against `VARIABLES`
by tests/test_settings.py: this package is the one source of truth. declared.py declares
the variables (`Settings`); environment.py reads them (`load`, `current`).
"""

from settings.declared import (
    DEFAULT_ACCOUNT_CAPS,
    MIB,
    WORKER_POOLS,
    Settings,
    SettingsError,
)
from settings.environment import VARIABLES, Variable, check, current, given, load

__all__ = ["DEFAULT_ACCOUNT_CAPS", "MIB", "VARIABLES", "WORKER_POOLS", "Settings",
           "SettingsError", "Variable", "check", "current", "given", "load"]
