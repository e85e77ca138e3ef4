"""Whose account is whose under one key, and which account a post may go to.

One aggregator key can serve many users: PostForMe tags each user's accounts with our
user id as `external_id`; LATE keeps one profile per user, named by the user id. So:

- on the user's own key (step source "user") every account is the user's;
- on a shared (global) key an account tagged with a user id belongs to that user alone,
  and an untagged one is the organisation's (its own brand accounts), usable by every
  user unless shared accounts are off (SOCIALPOST_SHARED_ACCOUNTS=0);
- the user's own account wins over a shared one; several candidates of the same rank
  for one platform need the request to name one (`account_ids`), else that target is
  refused with the choices listed. Never "the first account listed".

Pure functions: the clients pass their (cached) account list in.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from providers.models import AccountInfo
from providers.platforms import normalize_platform

SHARED_OFF = "shared accounts are off (SOCIALPOST_SHARED_ACCOUNTS=0)"


def user_tag(value: object) -> str | None:
    """A user id as compared here: UUIDs in canonical form, other text stripped."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    try:
        return str(uuid.UUID(text))
    except ValueError:
        return text


def uuid_tag(value: object) -> str | None:
    """A LATE profile name that is a user id (a UUID), canonical; None for names such as
    "Default" or a brand's, whose profiles are the organisation's."""
    if not isinstance(value, str):
        return None
    try:
        return str(uuid.UUID(value.strip()))
    except ValueError:
        return None


@dataclass(frozen=True)
class Scope:
    """Who posts, on whose key: what decides which accounts may be used."""

    user_id: str | None
    source: str  # "user": the user's own key; "global": a shared key
    shared: bool  # untagged accounts of a shared key are usable
    provider: str  # display name, for reasons

    @property
    def key_label(self) -> str:
        whose = "the user's own" if self.source == "user" else "the global"
        return f"{whose} {self.provider} key"

    def rank(self, account: AccountInfo) -> str | None:
        """"own", "shared", or None when this user may not use the account."""
        if self.source == "user":
            return "own"
        if account.owner is not None:
            return "own" if account.owner == user_tag(self.user_id) else None
        return "shared" if self.shared else None


@dataclass(frozen=True)
class Resolution:
    """Per requested platform: the account chosen, or why none was (`missing`: this key
    has no account for the user, the next step may; `refused`: the target must fail)."""

    chosen: dict[str, AccountInfo] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)
    refused: dict[str, str] = field(default_factory=dict)

    @property
    def unserved(self) -> list[str]:
        return [*self.missing, *self.refused]


def usable(accounts: Iterable[AccountInfo], scope: Scope) -> list[tuple[AccountInfo, str]]:
    """The accounts this user may post to under this key, with their rank."""
    out = []
    for account in accounts:
        rank = scope.rank(account)
        if rank is not None:
            out.append((account, rank))
    return out


def _describe(account: AccountInfo, rank: str) -> str:
    who = f"@{account.username}" if account.username else "no username"
    return f"{account.id} ({who}{', shared' if rank == 'shared' else ''})"


def resolve(
    accounts: Iterable[AccountInfo],
    platforms: Iterable[str],
    scope: Scope,
    named: Mapping[str, str] | None = None,
) -> Resolution:
    """Pick one account per platform by the rules in the module docstring; `named` maps
    platform -> the account id the request asked for."""
    listed = list(accounts)
    by_platform: dict[str, list[AccountInfo]] = {}
    for account in listed:
        by_platform.setdefault(normalize_platform(account.platform) or account.platform,
                               []).append(account)
    by_id = {a.id: a for a in listed}
    result = Resolution()
    for platform in platforms:
        wanted = (named or {}).get(platform)
        here = by_platform.get(platform, [])
        if wanted:
            _named(result, platform, wanted, by_id.get(wanted), scope)
            continue
        ranked = usable(here, scope)
        own = [a for a, r in ranked if r == "own"]
        pool, rank = (own, "own") if own else ([a for a, r in ranked if r == "shared"], "shared")
        if len(pool) == 1:
            result.chosen[platform] = pool[0]
        elif pool:
            whose = "of this user" if rank == "own" else "shared"
            choices = ", ".join(_describe(a, rank) for a in pool)
            result.refused[platform] = (
                f"{len(pool)} {platform} accounts {whose} under {scope.key_label}: "
                f"name one in account_ids ({choices})"
            )
        else:
            reason = f"no {platform} account of this user under {scope.key_label}"
            if scope.source == "global" and not scope.shared and any(
                a.owner is None for a in here
            ):
                reason += f"; {SHARED_OFF}"
            result.missing[platform] = reason
    return result


def _named(
    result: Resolution, platform: str, wanted: str, account: AccountInfo | None, scope: Scope
) -> None:
    """The account the request named: used when this user may, refused when not."""
    if account is None:
        # Not under this key at all: perhaps under another step's key.
        result.missing[platform] = (
            f"account {wanted} named in account_ids is not a connected account under "
            f"{scope.key_label}"
        )
        return
    actual = normalize_platform(account.platform) or account.platform
    if actual != platform:
        result.refused[platform] = (
            f"account {wanted} named in account_ids is a {actual} account, not {platform}"
        )
        return
    if scope.rank(account) is not None:
        result.chosen[platform] = account
    elif account.owner is None:
        result.refused[platform] = (
            f"account {wanted} named in account_ids is a shared account under "
            f"{scope.key_label} and {SHARED_OFF}"
        )
    else:
        result.refused[platform] = (
            f"account {wanted} named in account_ids belongs to another user under "
            f"{scope.key_label}"
        )
