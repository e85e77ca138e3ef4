"""Everything that talks to PostForMe and LATE. No Celery, no database."""

from providers.models import AccountInfo, Platform, PostResult
from providers.outcomes import OutcomeKind, PublishOutcome, PublishRequest, TargetResult

__all__ = [
    "AccountInfo",
    "OutcomeKind",
    "Platform",
    "PostResult",
    "PublishOutcome",
    "PublishRequest",
    "TargetResult",
]
