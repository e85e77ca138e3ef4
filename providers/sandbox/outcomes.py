"""Why a target fails after the provider accepted it, in the words the real services use.

Both fakes accept a create and report failures afterwards (PostForMe as a failed result,
LATE as a failed target): the platform rules of providers.md (Instagram, Pinterest and
TikTok need media, YouTube a video) and the `fail_platforms` fault, whose error class is
LATE's errorCategory. PostForMe has no category, only an error text: the text reads like
the class so a client that classifies PostForMe errors by text can be tested too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from providers.sandbox.common import is_video
from providers.sandbox.fault_spec import FaultSpec
from providers.sandbox.media import MediaStore

# Text limits the platforms enforce (providers.md): the user_content failure quotes them.
TEXT_LIMITS = {
    "twitter": 280,
    "linkedin": 3000,
    "instagram": 2200,
    "facebook": 63206,
    "tiktok": 2200,
    "threads": 500,
    "bluesky": 300,
    "youtube": 5000,
    "pinterest": 500,
}

# error class -> (LATE errorSource, error text); {limit} is the platform's text limit.
_CLASSES: dict[str, tuple[str, str]] = {
    "auth_expired": ("user", "Token expired, please reconnect the account"),
    "user_content": ("user", "Text exceeds the {limit} character limit"),
    "user_abuse": ("user", "The platform flagged this post as spam or abusive"),
    "account_issue": ("user", "The account is restricted or lacks the permission to post"),
    "platform_rejected": ("platform", "The platform rejected the post for a policy violation"),
    "platform_error": ("platform", "Internal error while publishing, please retry"),
    "platform_rate_limit": ("platform", "The platform is rate limiting this account, retry later"),
    "quota_exhausted": ("system", "Publishing quota exhausted, retry later"),
    "system_error": ("system", "Unexpected error while publishing, please retry"),
    "unknown": ("platform", "Unknown error while publishing"),
}

_NAMES = {
    "twitter": "X",
    "linkedin": "LinkedIn",
    "instagram": "Instagram",
    "facebook": "Facebook",
    "tiktok": "TikTok",
    "threads": "Threads",
    "bluesky": "Bluesky",
    "youtube": "YouTube",
    "pinterest": "Pinterest",
}
_NEEDS_MEDIA = {
    "instagram": "Instagram requires at least one image or video",
    "tiktok": "TikTok requires a video or at least one photo",
    "pinterest": "Pinterest requires an image",
}
REGRESS_MESSAGE = (
    "{name} did not confirm the publish: the post was not found on the platform"
)


@dataclass(frozen=True)
class Failure:
    """One failed target: the text both providers show, LATE's category and source."""

    message: str
    category: str
    source: str

    def late_fields(self) -> dict[str, Any]:
        return {
            "errorMessage": self.message,
            "errorCategory": self.category,
            "errorSource": self.source,
        }


def failure_of(error_class: str, platform: str) -> Failure:
    """The failure an injected error class gives on `platform`."""
    source, text = _CLASSES[error_class]
    return Failure(text.format(limit=TEXT_LIMITS[platform]), error_class, source)


def rule_failure(
    platform: str, media: list[tuple[str, str | None]], store: MediaStore
) -> Failure | None:
    """Why the real platform would refuse this target, or None (see providers.md)."""
    if platform in _NEEDS_MEDIA and not media:
        return Failure(_NEEDS_MEDIA[platform], "user_content", "user")
    if platform == "youtube" and not any(is_video(url, kind, store) for url, kind in media):
        return Failure("YouTube requires a video", "user_content", "user")
    return None


def target_failure(
    platform: str, media: list[tuple[str, str | None]], store: MediaStore, spec: FaultSpec
) -> Failure | None:
    """An injected failure first (it names its class), then the platform rules."""
    error_class = spec.fail_platforms.get(platform)
    if error_class is not None:
        return failure_of(error_class, platform)
    return rule_failure(platform, media, store)


def regress_failure(platform: str) -> Failure:
    """What LATE shows when its background check finds a publish never completed."""
    return Failure(REGRESS_MESSAGE.format(name=_NAMES[platform]), "platform_error", "platform")
