"""What each credential in a user's failover chain can reach, and where the user connects
another platform: shared by `socialpost accounts|oauth-url` and the HTTP API.

The chain is the worker's: user PostForMe, user LATE, global PostForMe, global LATE
(POSTFORME_API_KEY / LATE_API_KEY). Keys are decrypted in memory only and never shown.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from db.pool import Conn

PROVIDERS = ("postforme", "late")
SOURCES = ("user", "global")


class NoCredentials(LookupError):
    """The user has no stored key and no global key is set."""


class NoConnectUrl(RuntimeError):
    """No provider of the chain gave a connect URL; `failures` says what each answered."""

    def __init__(self, platform: str, failures: list[str]) -> None:
        self.failures = failures
        super().__init__(f"no connect URL for {platform}: " + "; ".join(failures))


@dataclass(frozen=True)
class Link:
    """One present step of the chain: whose key, at which provider (key never shown)."""

    source: str
    provider: str
    api_key: str = field(repr=False)
    invalid_at: Any = None  # when the worker marked a user key invalid (it skips it)
    invalid_reason: str | None = None

    @property
    def label(self) -> str:
        from tasks.chain import DISPLAY

        return f"{DISPLAY[self.provider]} ({self.source})"

    def client(self) -> Any:
        from providers.late import LateProvider
        from providers.postforme import PostForMeProvider

        cls = PostForMeProvider if self.provider == "postforme" else LateProvider
        return cls(self.api_key)


def chain_for(conn: Conn, user_id: uuid.UUID) -> list[Link]:
    """The user's stored keys (decrypted) and the global ones, in failover order;
    NoCredentials when there is none at all."""
    from db import credentials
    from db.vault import Vault
    from tasks.chain import CHAIN, global_keys

    stored: dict[str, Any] = {}
    infos = credentials.list_credentials(conn, user_id)
    if infos:
        vault = Vault.from_env()
        for info in infos:
            stored[info.provider] = credentials.get_credentials(conn, vault, user_id,
                                                                info.provider)
    globals_ = global_keys()
    links = []
    for source, provider in CHAIN:
        if source == "user" and stored.get(provider) is not None:
            cred = stored[provider]
            links.append(Link(source, provider, cred.api_key, cred.invalid_at,
                              cred.invalid_reason))
        elif source == "global" and globals_.get(provider):
            links.append(Link(source, provider, globals_[provider]))
    if not links:
        raise NoCredentials(f"user {user_id} has no stored credentials and neither "
                            "POSTFORME_API_KEY nor LATE_API_KEY is set")
    return links


def list_accounts(user_id: uuid.UUID, links: list[Link]
                  ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(accounts, errors): every account the user may post to per credential, asked
    afresh (no cache), and one error entry per credential that could not be listed."""
    from providers.errors import ProviderCallError

    found: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    for link in links:
        client = link.client()
        client.invalidate_accounts()
        try:
            listed = client.usable_accounts(str(user_id), link.source)
        except ProviderCallError as exc:
            errors.append({"provider": link.provider, "source": link.source,
                           "kind": exc.outcome.kind.value, "error": str(exc)})
            continue
        for a, rank in sorted(listed, key=lambda x: (x[0].platform, x[0].username)):
            found.append({"platform": a.platform, "username": a.username, "id": a.id,
                          "profile_id": a.profile_id, "provider": link.provider,
                          "source": link.source, "owner": "user" if rank == "own" else rank})
    return found, errors


class _Warnings(logging.Handler):
    """Collects the providers' warnings, which say why a seed call returned None: only
    this thread's (the API serves requests side by side, each for its own user)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []
        self._thread = threading.get_ident()

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread == self._thread:
            self.messages.append(record.getMessage())


@contextmanager
def _provider_warnings() -> Iterator[_Warnings]:
    logger = logging.getLogger("providers")
    handler = _Warnings()
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


def connect_url(user_id: uuid.UUID, platform: str, redirect_url: str, links: list[Link]
                ) -> tuple[str, Link]:
    """The first connect URL a provider of `links` gives, with the link that gave it;
    NoConnectUrl with what each answered otherwise. `platform` is a canonical name."""
    failures = []
    for link in links:
        client = link.client()
        with _provider_warnings() as caught:
            url = client.get_oauth_url(platform, redirect_url, user_id=str(user_id),
                                       shared_key=link.source == "global")
        if url:
            return url, link
        why = caught.messages[-1] if caught.messages else "no URL in the answer"
        failures.append(f"{link.label}: {why.removeprefix(client.name + ': ')}")
    raise NoConnectUrl(platform, failures)
