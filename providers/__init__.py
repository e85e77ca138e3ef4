"""Everything that talks to PostForMe and LATE. No Celery, no database."""

from providers.accounts import clear_accounts_cache
from providers.base import HttpProvider, SocialPostingProvider
from providers.config import max_request_seconds, max_upload_seconds
from providers.errors import ConfigError, MediaError, ProviderCallError
from providers.late import LateProvider
from providers.media import FetchedMedia, check_media_url, fetch_media
from providers.models import AccountInfo, Platform, PostResult
from providers.outcomes import OutcomeKind, PublishOutcome, PublishRequest, TargetResult
from providers.platforms import ValidationProblem, normalize_platforms, validate
from providers.postforme import PostForMeProvider

__all__ = [
    "AccountInfo",
    "ConfigError",
    "FetchedMedia",
    "HttpProvider",
    "LateProvider",
    "MediaError",
    "OutcomeKind",
    "Platform",
    "PostForMeProvider",
    "PostResult",
    "ProviderCallError",
    "PublishOutcome",
    "PublishRequest",
    "SocialPostingProvider",
    "TargetResult",
    "ValidationProblem",
    "check_media_url",
    "clear_accounts_cache",
    "fetch_media",
    "max_request_seconds",
    "max_upload_seconds",
    "normalize_platforms",
    "validate",
]
