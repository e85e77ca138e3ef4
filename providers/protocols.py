"""What callers need of a provider client, by capability rather than by class, so code
that only lists accounts or only reads results is typed without naming a provider."""

from __future__ import annotations

from typing import Protocol

from providers.models import AccountInfo
from providers.outcomes import TargetResult


class AccountLister(Protocol):
    """A client that lists a credential's connected accounts (both providers)."""

    def accounts(self) -> list[AccountInfo]:
        """The connected accounts, possibly cached; raises ProviderCallError."""
        ...

    def invalidate_accounts(self) -> None:
        """Forget the cached list, so the next `accounts()` asks the provider."""
        ...


class ResultsFetcher(Protocol):
    """A client that fetches per-platform results for many posts in one call
    (PostForMe, whose results arrive after the create)."""

    def fetch_results_many(
        self, provider_post_ids: list[str]
    ) -> dict[str, dict[str, TargetResult]]:
        """Provider post id -> platform -> result; raises ProviderCallError."""
        ...
