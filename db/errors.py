"""Errors raised by the db package.

Each message is one line meant for an operator or an API caller: it names the
field or setting at fault and never contains a secret.
"""

from __future__ import annotations

from settings import SettingsError


class DbError(Exception):
    """Base for everything this package raises on purpose."""


class ConfigError(DbError, SettingsError):
    """A missing or malformed setting; the message names the variable."""


class InvalidInput(DbError, ValueError):
    """A value refused before it reaches SQL; `.field` names what was wrong."""

    def __init__(self, field: str, rule: str) -> None:
        self.field = field
        self.rule = rule
        super().__init__(f"{field}: {rule}")


class NotFound(DbError, LookupError):
    """A row that should exist does not."""


class CampaignNotFound(NotFound):
    """No campaign with that id."""


class BatchNotFound(NotFound):
    """The campaign exists but has no batch with that number."""


class BatchInvalid(InvalidInput):
    """A calendar batch lacks a caption or carries a malformed field."""


class InvalidTransition(DbError):
    """A status change the state machine (db.states) does not allow."""


class VaultError(DbError):
    """Encryption or decryption failed; names ENCRYPTION_KEY, never the key or ciphertext."""
