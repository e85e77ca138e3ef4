"""Keys, connected accounts, stats and the request log shared by both fake providers.

Keys never leave this module whole: the log and stats carry only a short hint, so
tests can assert which credential was used without a secret ever being printed.
"""

from __future__ import annotations

import hashlib
import threading
from collections import Counter, deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from providers.sandbox.faults import PLATFORMS, PROVIDERS, canonical_platform, check_provider

REQUEST_LOG_SIZE = 20_000


def key_hint(key: str | None) -> str | None:
    """The last 4 characters of a key; keys shorter than 8 are fully masked."""
    if not key:
        return None
    return key[-4:] if len(key) >= 8 else "****"


def _digest(*parts: str) -> str:
    return hashlib.sha256("|".join(parts).encode()).hexdigest()


@dataclass(frozen=True)
class Account:
    """One connected social account; ids are derived from the key so they stay stable
    across resets and restarts (a test can hard-code nothing, but a demo can)."""

    id: str
    provider: str
    platform: str  # canonical (seed) name: twitter, not x
    username: str
    profile_id: str
    key: str


@dataclass
class KeyEntry:
    key: str
    profile_id: str
    accounts: dict[str, Account]  # by platform


def _make_entry(provider: str, key: str, platforms: Iterable[str]) -> KeyEntry:
    profile_id = _digest("profile", provider, key)[:24]
    accounts: dict[str, Account] = {}
    hint = _digest("user", key)[:6]
    for platform in platforms:
        raw = _digest("account", provider, key, platform)
        account_id = f"spc_{raw[:20]}" if provider == "postforme" else raw[:24]
        accounts[platform] = Account(
            id=account_id,
            provider=provider,
            platform=platform,
            username=f"sandbox_{platform}_{hint}",
            profile_id=profile_id,
            key=key,
        )
    return KeyEntry(key=key, profile_id=profile_id, accounts=accounts)


class KeyRegistry:
    """API keys per provider and the accounts each one can post to."""

    def __init__(self, accept_any_key: bool = False) -> None:
        self.accept_any_key = accept_any_key
        self._lock = threading.Lock()
        self._keys: dict[str, dict[str, KeyEntry]] = {p: {} for p in PROVIDERS}
        self._revoked: dict[str, set[str]] = {p: set() for p in PROVIDERS}
        self._accounts: dict[str, dict[str, Account]] = {p: {} for p in PROVIDERS}

    def reset(self) -> None:
        with self._lock:
            for provider in PROVIDERS:
                self._keys[provider].clear()
                self._revoked[provider].clear()
                self._accounts[provider].clear()

    def register(
        self, provider: str, key: str, platforms: Iterable[str] | None = None
    ) -> list[Account]:
        """Give `key` one connected account per platform (all nine when None)."""
        name = check_provider(provider)
        if not key or not isinstance(key, str):
            raise ValueError("key must be a non-empty string")
        wanted = PLATFORMS if platforms is None else tuple(canonical_platform(p) for p in platforms)
        entry = _make_entry(name, key, dict.fromkeys(wanted))
        with self._lock:
            self._revoked[name].discard(key)
            self._install(name, entry)
        return list(entry.accounts.values())

    def _install(self, provider: str, entry: KeyEntry) -> None:
        old = self._keys[provider].get(entry.key)
        if old is not None:
            for account in old.accounts.values():
                self._accounts[provider].pop(account.id, None)
        self._keys[provider][entry.key] = entry
        for account in entry.accounts.values():
            self._accounts[provider][account.id] = account

    def revoke(self, provider: str, key: str) -> None:
        """From now on the key answers 401 (until registered again)."""
        name = check_provider(provider)
        with self._lock:
            self._revoked[name].add(key)

    def lookup(self, provider: str, key: str | None) -> KeyEntry | None:
        """The key's entry, or None when the provider must answer 401."""
        if not key:
            return None
        with self._lock:
            if key in self._revoked[provider]:
                return None
            entry = self._keys[provider].get(key)
            if entry is None and self.accept_any_key:
                entry = _make_entry(provider, key, PLATFORMS)
                self._install(provider, entry)
            return entry


class Recorder:
    """Per-provider counters and a bounded log of API requests."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._log: deque[dict[str, Any]] = deque(maxlen=REQUEST_LOG_SIZE)
        self._requests: Counter[str] = Counter()
        self._create_requests: Counter[str] = Counter()
        self._creates: Counter[str] = Counter()
        self._by_id: dict[str, Counter[str]] = {p: Counter() for p in PROVIDERS}

    def reset(self) -> None:
        with self._lock:
            self._log.clear()
            self._requests.clear()
            self._create_requests.clear()
            self._creates.clear()
            for counter in self._by_id.values():
                counter.clear()

    def record(self, entry: dict[str, Any], create_request: bool) -> None:
        """One answered (or hung) API request; `entry` is the log line."""
        provider = entry["provider"]
        with self._lock:
            self._requests[provider] += 1
            if create_request:
                self._create_requests[provider] += 1
            self._log.append(entry)

    def created(self, provider: str, ident: str | None) -> None:
        """A post was really created (a replayed x-request-id does not count)."""
        with self._lock:
            self._creates[provider] += 1
            if ident:
                self._by_id[provider][ident] += 1

    def stats(self) -> dict[str, Any]:
        with self._lock:
            out: dict[str, Any] = {}
            for provider in PROVIDERS:
                id_field = "by_external_id" if provider == "postforme" else "by_request_id"
                out[provider] = {
                    "requests": self._requests[provider],
                    "create_requests": self._create_requests[provider],
                    "creates": self._creates[provider],
                    id_field: dict(self._by_id[provider]),
                }
            return out

    def requests(self, provider: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            if provider is None:
                return [dict(e) for e in self._log]
            return [dict(e) for e in self._log if e["provider"] == provider]
