"""Exceptions raised beneath the seed API (which itself never raises).

The worker catches `ProviderCallError` and acts on `.outcome.kind`; messages are always
redacted before they are put in here, so logging an exception can never leak a key.
"""

from __future__ import annotations

from providers.outcomes import PublishOutcome
from settings import SettingsError


class ProviderCallError(Exception):
    """A provider call that did not succeed, classified so the caller can decide."""

    def __init__(self, outcome: PublishOutcome) -> None:
        super().__init__(outcome.error or outcome.kind.value)
        self.outcome = outcome

    def __repr__(self) -> str:
        return f"ProviderCallError({self.outcome.provider}: {self.outcome.kind.value}: {self})"


class MediaError(ValueError):
    """A media URL that cannot be used: bad scheme, private address, type, size or time.

    Messages name the URL's host only (query strings often carry signed tokens)."""


class ConfigError(SettingsError):
    """A malformed setting; the message is one line naming the environment variable."""
