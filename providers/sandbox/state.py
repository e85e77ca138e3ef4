"""Keys, connected accounts, stats and the request log shared by both fake providers.

Keys never leave this module whole: the log and stats carry only a short hint, so
tests can assert which credential was used without a secret ever being printed.
"""

from __future__ import annotations

import hashlib
import threading
from collections import Counter, deque
from collections.abc import Iterable
from dataclasses import dataclass, field
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
    """One connected social account; ids are derived from the key (and the tag or
    profile) so they stay stable across resets and restarts (a test can hard-code
    nothing, but a demo can). `external_id` is PostForMe's tag (our user id);
    `profile_id` the LATE profile the account belongs to."""

    id: str
    provider: str
    platform: str  # canonical (seed) name: twitter, not x
    username: str
    profile_id: str
    key: str
    external_id: str | None = None


@dataclass
class KeyEntry:
    """One API key: its accounts (several per platform allowed, in connect order) and
    its LATE profiles (id -> name; the first is the default one)."""

    key: str
    profile_id: str  # the default profile
    accounts: list[Account] = field(default_factory=list)
    profiles: dict[str, str] = field(default_factory=dict)


def _new_account(
    provider: str, entry: KeyEntry, platform: str, profile_id: str,
    external_id: str | None, username: str | None,
) -> Account:
    serial = sum(1 for a in entry.accounts if a.platform == platform)
    tag = f"{profile_id}|{external_id or ''}|{serial}" if serial or external_id or (
        profile_id != entry.profile_id) else ""
    raw = _digest("account", provider, entry.key, platform, *([tag] if tag else []))
    account_id = f"spc_{raw[:20]}" if provider == "postforme" else raw[:24]
    hint = _digest("user", entry.key, *([tag] if tag else []))[:6]
    return Account(
        id=account_id,
        provider=provider,
        platform=platform,
        username=username or f"sandbox_{platform}_{hint}",
        profile_id=profile_id,
        key=entry.key,
        external_id=external_id,
    )


def _make_entry(provider: str, key: str, platforms: Iterable[str]) -> KeyEntry:
    profile_id = _digest("profile", provider, key)[:24]
    entry = KeyEntry(key=key, profile_id=profile_id, profiles={profile_id: "Default"})
    for platform in platforms:
        entry.accounts.append(_new_account(provider, entry, platform, profile_id, None, None))
    return entry


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
        return list(entry.accounts)

    def _install(self, provider: str, entry: KeyEntry) -> None:
        old = self._keys[provider].get(entry.key)
        if old is not None:
            for account in old.accounts:
                self._accounts[provider].pop(account.id, None)
        self._keys[provider][entry.key] = entry
        for account in entry.accounts:
            self._accounts[provider][account.id] = account

    def _entry(self, provider: str, key: str) -> KeyEntry:
        """The key's entry, registered with no accounts when new (under the lock)."""
        entry = self._keys[provider].get(key)
        if entry is None:
            entry = _make_entry(provider, key, ())
            self._install(provider, entry)
        return entry

    def add_profile(self, provider: str, key: str, name: str) -> str:
        """A new LATE profile named `name` under `key` (names need not be unique, as at
        LATE); returns its id."""
        if not isinstance(name, str) or not name.strip():
            raise ValueError("profile name must be a non-empty string")
        with self._lock:
            entry = self._entry(check_provider(provider), key)
            profile_id = _digest("profile", provider, key, name, str(len(entry.profiles)))[:24]
            entry.profiles[profile_id] = name
            return profile_id

    def profile_named(self, provider: str, key: str, name: str) -> str | None:
        with self._lock:
            entry = self._keys[check_provider(provider)].get(key)
            found = [pid for pid, n in (entry.profiles if entry else {}).items() if n == name]
            return found[0] if found else None

    def add_account(
        self,
        provider: str,
        key: str,
        platform: str,
        *,
        external_id: str | None = None,
        profile: str | None = None,
        username: str | None = None,
    ) -> Account:
        """Connect one more account of `platform` to `key` (registered if new): tagged
        with `external_id` (PostForMe), or in the LATE profile named `profile` (created
        when missing; the default profile otherwise)."""
        name = check_provider(provider)
        if not key or not isinstance(key, str):
            raise ValueError("key must be a non-empty string")
        wanted = canonical_platform(platform)
        profile_id: str | None = None
        if profile:
            profile_id = self.profile_named(name, key, profile) or self.add_profile(
                name, key, profile)
        with self._lock:
            entry = self._entry(name, key)
            if profile_id is not None and profile_id not in entry.profiles:
                raise ValueError(f"no profile {profile_id} under this key")
            account = _new_account(name, entry, wanted, profile_id or entry.profile_id,
                                   external_id or None, username)
            entry.accounts.append(account)
            self._accounts[name][account.id] = account
            return account

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

    def creates(self, provider: str) -> int:
        with self._lock:
            return self._creates[provider]

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
