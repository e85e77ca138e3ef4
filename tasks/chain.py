"""The four-step credential chain: user PostForMe, user LATE, global PostForMe, global LATE.

Step numbers are positions in the full chain (0-3), stable whichever steps are absent,
so a post's recorded step and its idempotency keys mean the same thing on every worker.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import settings

ProviderName = Literal["postforme", "late"]
Source = Literal["user", "global"]

CHAIN: tuple[tuple[Source, ProviderName], ...] = (
    ("user", "postforme"),
    ("user", "late"),
    ("global", "postforme"),
    ("global", "late"),
)
DISPLAY = {"postforme": "PostForMe", "late": "LATE"}


@dataclass(frozen=True)
class Step:
    index: int
    source: Source
    provider: ProviderName
    api_key: str

    def __repr__(self) -> str:  # never the key
        return f"Step({self.index}, {self.label})"

    @property
    def label(self) -> str:
        return f"{DISPLAY[self.provider]} ({self.source})"


def global_keys() -> dict[str, str]:
    """POSTFORME_API_KEY / LATE_API_KEY, where set."""
    return settings.current().global_keys()


def build_chain(user_keys: dict[str, str], globals_: dict[str, str] | None = None) -> list[Step]:
    """Present steps in order; `user_keys` maps provider -> decrypted key (valid ones only)."""
    keys = {"user": user_keys, "global": global_keys() if globals_ is None else globals_}
    return [
        Step(i, source, provider, keys[source][provider])
        for i, (source, provider) in enumerate(CHAIN)
        if keys[source].get(provider)
    ]


def step_at_or_after(chain: list[Step], index: int) -> Step | None:
    """The first present step whose position is >= index."""
    return next((s for s in chain if s.index >= index), None)


def idempotency_key(post_id: str, step: int) -> str:
    """One provider post per (post, step): retries of a step reuse it, a new step gets its own."""
    return f"{post_id}-s{step}"
