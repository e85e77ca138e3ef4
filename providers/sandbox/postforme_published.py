"""What the fake PostForMe would publish on each account: the caption (the account's or
platform's override, else the post's) and title, truncated per platform as the real
service does (X 280, Bluesky 300, Threads 500, Pinterest description 800 and title 100,
TikTok title 85, YouTube title 100), with the media it keeps. Kept in each result's
`details.published`, so tests can assert the words that went out."""

from __future__ import annotations

from typing import Any

from providers.sandbox.postforme_results import wire_platform
from providers.sandbox.state import Account

CAPTION_LIMITS = {"twitter": 280, "bluesky": 300, "threads": 500, "pinterest": 800}
TITLE_LIMITS = {"pinterest": 100, "youtube": 100, "tiktok": 85}
MEDIA_LIMITS = {"twitter": 4, "bluesky": 4, "threads": 4, "instagram": 10, "linkedin": 20,
                "tiktok": 32}


def configuration(
    platform_configurations: dict[str, Any] | None,
    account_configurations: list[Any] | None,
    account: Account,
) -> dict[str, Any]:
    """The configuration that applies to `account`: its platform's, then its own on top."""
    out: dict[str, Any] = {}
    configs = platform_configurations or {}
    for name in (account.platform, wire_platform(account.platform)):
        found = configs.get(name)
        if isinstance(found, dict):
            out.update(found)
    for entry in account_configurations or []:
        if isinstance(entry, dict) and entry.get("social_account_id") == account.id:
            own = entry.get("configuration")
            if isinstance(own, dict):
                out.update(own)
    return out


def published(caption: str, config: dict[str, Any], media: list[tuple[str, str | None]],
              account: Account) -> dict[str, Any]:
    """The words, title and media this account's platform would get."""
    platform = account.platform
    own = config.get("caption")
    text = own if isinstance(own, str) else caption
    limit = CAPTION_LIMITS.get(platform)
    out: dict[str, Any] = {"caption": text[:limit] if limit else text}
    title = config.get("title")
    if platform == "tiktok" and not isinstance(title, str):
        title = text
    if isinstance(title, str) and platform in TITLE_LIMITS:
        out["title"] = title[:TITLE_LIMITS[platform]]
    cap = MEDIA_LIMITS.get(platform)
    urls = [url for url, _ in media]
    out["media"] = urls[:cap] if cap else urls
    return out
