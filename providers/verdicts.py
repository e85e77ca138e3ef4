"""What a platform's refusal means for the next provider: would it be refused again?

A target the platform refused for its content or its account (media required, text too
long, an expired token) fails: another provider would post the same thing to the same
account and be refused again. A failure on the provider's or the platform's own side
(an internal error, an outage) means nothing was published, so the next credential step
may try. LATE says which it is (errorCategory / errorSource); PostForMe only gives a text,
read here by the same rules.
"""

from __future__ import annotations

import re
from typing import Literal

ErrorClass = Literal["refused", "provider"]

REFUSED: ErrorClass = "refused"  # content or account refused by the platform: no fall-over
PROVIDER: ErrorClass = "provider"  # the provider's or platform's own failure: next step tries

# LATE's errorCategory values, sorted by what they say about another attempt elsewhere.
_REFUSED_CATEGORIES = frozenset({"user_content", "user_abuse", "platform_rejected",
                                 "auth_expired", "account_issue"})
_PROVIDER_CATEGORIES = frozenset({"platform_error", "system_error", "unknown",
                                  "platform_rate_limit", "quota_exhausted"})

_REFUSAL_TEXT = re.compile(
    r"(media|image|video|photo|picture)s?\b.{0,40}\b(required|missing|needed)"
    r"|requires?\b.{0,30}\b(media|image|video|photo|board|title)"
    r"|too long|exceeds?|over (the |its )?limit|character limit|\blimit of\b"
    r"|not supported|unsupported|invalid|not allowed"
    r"|token|permission|authori[sz]|reconnect|expired|revoked|re-?auth"
    # beyond the list, what no other provider could change either
    r"|polic(y|ies)|violat|spam|abus|restricted|suspended|banned",
    re.I,
)


def classify(error: str | None, category: str | None = None,
             source: str | None = None) -> ErrorClass:
    """`refused` or `provider` for one failed target (see the module docstring)."""
    if category:
        name = category.strip().lower()
        if name in _REFUSED_CATEGORIES:
            return REFUSED
        if name in _PROVIDER_CATEGORIES:
            return PROVIDER
    if source and source.strip().lower() == "user":
        return REFUSED
    if source and source.strip().lower() in ("platform", "system") and not error:
        return PROVIDER
    return REFUSED if error and _REFUSAL_TEXT.search(error) else PROVIDER
