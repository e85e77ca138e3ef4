"""Our per-platform `overrides` (providers.content) in each provider's wire format.

PostForMe: `platform_configurations` keyed by its platform names (`x` for twitter), each
with `caption` / `media` overrides and its option names. LATE: per target
`customContent`, `customMedia` and `platformSpecificData` (threadItems, firstComment,
title, visibility, boardId, TikTok consents ...). Raw `platform_options` (the older
pass-through) go first; what `overrides` says wins. Pure functions: the clients call them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from providers.media import media_kind
from providers.platforms import normalize_platform

_POSTFORME_PLATFORM = {"twitter": "x"}
_POSTFORME_PLACEMENT = {"feed": "timeline", "reel": "reels", "story": "stories"}
_X_REPLY = {"following": "following", "mentioned": "mentionedUsers",
            "subscribers": "subscribers", "verified": "verified"}  # everyone: X's default
_TIKTOK_PRIVACY = {"public": "PUBLIC_TO_EVERYONE", "friends": "MUTUAL_FOLLOW_FRIENDS",
                   "followers": "FOLLOWER_OF_CREATOR", "private": "SELF_ONLY"}

# our option -> (the provider's name, how the value converts; None: as it is). A
# conversion answering None sends nothing (the provider's default says it).
Convert = Callable[[Any], Any] | None
Table = dict[str, dict[str, tuple[str, Convert]]]


def _via(table: dict[str, str]) -> Convert:
    return lambda value: table.get(value)


_SAME = None
_PLACEMENT_PFM: dict[str, tuple[str, Convert]] = {
    "placement": ("placement", _via(_POSTFORME_PLACEMENT)),
    "collaborators": ("collaborators", _SAME)}
POSTFORME_OPTIONS: Table = {
    "youtube": {"title": ("title", _SAME), "privacy": ("privacy_status", _SAME),
                "made_for_kids": ("made_for_kids", _SAME), "tags": ("tags", _SAME)},
    "pinterest": {"board_id": ("board_ids", lambda board: [board]), "title": ("title", _SAME),
                  "link": ("link", _SAME)},
    "tiktok": {"privacy": ("privacy_status", _SAME), "allow_comments": ("allow_comment", _SAME),
               "allow_duet": ("allow_duet", _SAME), "allow_stitch": ("allow_stitch", _SAME),
               "brand_content": ("disclose_branded_content", _SAME),
               "ai_generated": ("is_ai_generated", _SAME)},
    "instagram": _PLACEMENT_PFM,
    "facebook": _PLACEMENT_PFM,
    "twitter": {"reply_settings": ("reply_settings", _via(_X_REPLY)), "poll": ("poll", _SAME)},
}
# LATE: "story" (both) and "reel" (facebook) are content types; an Instagram video becomes
# a Reel by itself, and a feed post is the default. LATE has no Facebook collaborators.
LATE_OPTIONS: Table = {
    "youtube": {"title": ("title", _SAME), "privacy": ("visibility", _SAME),
                "made_for_kids": ("madeForKids", _SAME), "tags": ("tags", _SAME)},
    "pinterest": {"board_id": ("boardId", _SAME), "title": ("title", _SAME),
                  "link": ("link", _SAME)},
    "tiktok": {"privacy": ("privacyLevel", _via(_TIKTOK_PRIVACY)),
               "allow_comments": ("allowComment", _SAME), "allow_duet": ("allowDuet", _SAME),
               "allow_stitch": ("allowStitch", _SAME),
               "brand_content": ("commercialContentType",
                                 lambda on: "brand_content" if on else "none"),
               "ai_generated": ("videoMadeWithAi", _SAME),
               "content_preview_confirmed": ("contentPreviewConfirmed", _SAME),
               "express_consent_given": ("expressConsentGiven", _SAME)},
    "instagram": {"placement": ("contentType", lambda p: "story" if p == "story" else None),
                  "collaborators": ("collaborators", _SAME)},
    "facebook": {"placement": ("contentType", lambda p: p if p in ("story", "reel") else None)},
    "twitter": {"reply_settings": ("replySettings", _via(_X_REPLY)), "poll": ("poll", _SAME)},
}


def _mapped(table: Table, platform: str, fields: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for ours, (theirs, convert) in table.get(platform, {}).items():
        value = fields.get(ours)
        if value is not None and convert is not None:
            value = convert(value)
        if value is not None:
            out[theirs] = value
    return out


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
    return {**out, **_mapped(POSTFORME_OPTIONS, platform, fields)}


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
    thread = fields.get("thread")
    if thread:
        out["threadItems"] = [_thread_item(item) for item in thread]
    if fields.get("first_comment") is not None:
        out["firstComment"] = fields["first_comment"]
    return {**out, **_mapped(LATE_OPTIONS, platform, fields)}


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
