"""Our per-platform `overrides` (providers.content) in each provider's wire format.

PostForMe: `platform_configurations` keyed by its platform names (`x` for twitter), each
with `caption` / `media` overrides and its option names. LATE: per target
`customContent`, `customMedia` and `platformSpecificData` (threadItems, firstComment,
title, visibility, boardId, TikTok consents ...). Raw `platform_options` (the older
pass-through) go first; what `overrides` says wins. Pure functions: the clients call them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from providers.media import media_kind
from providers.platforms import normalize_platform

_POSTFORME_PLATFORM = {"twitter": "x"}
_POSTFORME_PLACEMENT = {"feed": "timeline", "reel": "reels", "story": "stories"}
_X_REPLY = {"following": "following", "mentioned": "mentionedUsers",
            "subscribers": "subscribers", "verified": "verified"}  # everyone: X's default
_TIKTOK_PRIVACY = {"public": "PUBLIC_TO_EVERYONE", "friends": "MUTUAL_FOLLOW_FRIENDS",
                   "followers": "FOLLOWER_OF_CREATOR", "private": "SELF_ONLY"}


def postforme_platform(platform: str) -> str:
    return _POSTFORME_PLATFORM.get(platform, platform)


def late_media(urls: list[str]) -> list[dict[str, str]]:
    """LATE media items: each URL with its type (image when the extension says nothing)."""
    return [{"url": url, "type": media_kind(url) or "image"} for url in urls]


def postforme_configuration(platform: str, fields: Mapping[str, Any]) -> dict[str, Any]:
    """One platform's `platform_configurations` entry (threads and first comments have
    none: such targets are routed to LATE before a PostForMe request is built)."""
    out: dict[str, Any] = {}
    if "content" in fields:
        out["caption"] = fields["content"]
    if "media_urls" in fields:
        out["media"] = [{"url": url} for url in fields["media_urls"]]
    get = fields.get
    if platform == "youtube":
        _put(out, "title", get("title"))
        _put(out, "privacy_status", get("privacy"))
        _put(out, "made_for_kids", get("made_for_kids"))
        _put(out, "tags", get("tags"))
    elif platform == "pinterest":
        if get("board_id"):
            out["board_ids"] = [get("board_id")]
        _put(out, "title", get("title"))
        _put(out, "link", get("link"))
    elif platform == "tiktok":
        _put(out, "privacy_status", get("privacy"))
        _put(out, "allow_comment", get("allow_comments"))
        _put(out, "allow_duet", get("allow_duet"))
        _put(out, "allow_stitch", get("allow_stitch"))
        _put(out, "disclose_branded_content", get("brand_content"))
        _put(out, "is_ai_generated", get("ai_generated"))
    elif platform in ("instagram", "facebook"):
        _put(out, "placement", _POSTFORME_PLACEMENT.get(str(get("placement"))))
        _put(out, "collaborators", get("collaborators"))
    elif platform == "twitter":
        _put(out, "reply_settings", _X_REPLY.get(str(get("reply_settings"))))
        _put(out, "poll", get("poll"))
    return out


def postforme_configurations(
    platforms: list[str],
    overrides: Mapping[str, Mapping[str, Any]] | None,
    platform_options: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """`platform_configurations` for the platforms being sent ({} when none applies)."""
    configs: dict[str, dict[str, Any]] = {}
    for name, options in (platform_options or {}).items():
        platform = normalize_platform(name)
        if platform in platforms and isinstance(options, dict) and options:
            configs[postforme_platform(platform)] = dict(options)
    for platform, fields in (overrides or {}).items():
        if platform in platforms:
            mapped = postforme_configuration(platform, fields)
            if mapped:
                key = postforme_platform(platform)
                configs[key] = {**configs.get(key, {}), **mapped}
    return configs


def late_specific(platform: str, fields: Mapping[str, Any]) -> dict[str, Any]:
    """One target's `platformSpecificData` from our fields."""
    out: dict[str, Any] = {}
    get = fields.get
    thread = get("thread")
    if thread:
        out["threadItems"] = [_thread_item(item) for item in thread]
    _put(out, "firstComment", get("first_comment"))
    if platform == "youtube":
        _put(out, "title", get("title"))
        _put(out, "visibility", get("privacy"))
        _put(out, "madeForKids", get("made_for_kids"))
        _put(out, "tags", get("tags"))
    elif platform == "pinterest":
        _put(out, "boardId", get("board_id"))
        _put(out, "title", get("title"))
        _put(out, "link", get("link"))
    elif platform == "tiktok":
        _put(out, "privacyLevel", _TIKTOK_PRIVACY.get(str(get("privacy"))))
        _put(out, "allowComment", get("allow_comments"))
        _put(out, "allowDuet", get("allow_duet"))
        _put(out, "allowStitch", get("allow_stitch"))
        if get("brand_content") is not None:
            out["commercialContentType"] = "brand_content" if get("brand_content") else "none"
        _put(out, "videoMadeWithAi", get("ai_generated"))
        _put(out, "contentPreviewConfirmed", get("content_preview_confirmed"))
        _put(out, "expressConsentGiven", get("express_consent_given"))
    elif platform in ("instagram", "facebook"):
        # LATE: "story" (both) and "reel" (facebook) are content types; an Instagram
        # video becomes a Reel by itself, and a feed post is the default.
        placement = get("placement")
        if placement == "story" or (placement == "reel" and platform == "facebook"):
            out["contentType"] = placement
        if platform == "instagram":
            _put(out, "collaborators", get("collaborators"))
    elif platform == "twitter":
        _put(out, "replySettings", _X_REPLY.get(str(get("reply_settings"))))
        _put(out, "poll", get("poll"))
    return out


def late_target(
    platform: str,
    fields: Mapping[str, Any] | None,
    raw_options: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """The override fields of one LATE `platforms[]` entry: customContent, customMedia,
    platformSpecificData (raw options first; a Pinterest `board_ids` list gives boardId)."""
    out: dict[str, Any] = {}
    specific: dict[str, Any] = dict(raw_options or {})
    boards = specific.get("board_ids")
    if platform == "pinterest" and "boardId" not in specific and isinstance(boards, list) \
            and boards:
        specific["boardId"] = boards[0]
    if fields:
        if "content" in fields:
            out["customContent"] = fields["content"]
        if "media_urls" in fields:
            out["customMedia"] = late_media(list(fields["media_urls"]))
        specific.update(late_specific(platform, fields))
    if specific:
        out["platformSpecificData"] = specific
    return out


def _thread_item(item: Mapping[str, Any] | str) -> dict[str, Any]:
    if isinstance(item, str):  # the short form, as given before normalising
        return {"content": item}
    out: dict[str, Any] = {"content": item["content"]}
    if item.get("media_urls"):
        out["mediaItems"] = late_media(list(item["media_urls"]))
    return out


def _put(out: dict[str, Any], key: str, value: object) -> None:
    if value is not None:
        out[key] = value
