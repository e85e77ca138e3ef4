"""The seed's public data structures, kept name-for-name so seed callers keep working."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import Enum


class Platform(str, Enum):
    """The nine platforms both aggregators publish to (values are the seed's)."""

    TWITTER = "twitter"
    LINKEDIN = "linkedin"
    INSTAGRAM = "instagram"
    FACEBOOK = "facebook"
    TIKTOK = "tiktok"
    THREADS = "threads"
    BLUESKY = "bluesky"
    YOUTUBE = "youtube"
    PINTEREST = "pinterest"

    @classmethod
    def values(cls) -> list[str]:
        return [p.value for p in cls]


@dataclass
class PostResult:
    """What a seed-API call returns: never an exception, always one of these."""

    success: bool
    post_id: str | None = None
    platform_post_ids: dict[str, str] | None = None
    platform_post_urls: dict[str, str] | None = None
    error: str | None = None
    provider: str | None = None
    scheduled_for: datetime | None = None


@dataclass
class AccountInfo:
    """One social account connected at a provider. `owner` is the user id the provider
    ties it to (PostForMe `external_id`, or the name of its LATE profile when that is a
    user id); None for an untagged account (on a shared key: the organisation's)."""

    id: str
    platform: str
    username: str
    profile_id: str | None = None
    owner: str | None = None
