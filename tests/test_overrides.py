"""Per-platform content at intake: the overrides schema, the checks on what each platform
would publish, and the exact wire format each provider gets (pure functions)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from providers.content_wire import late_target, postforme_configurations
from tasks.validation import InvalidRequest, PublishInput, check_publish_input

USER = str(uuid.uuid4())
NOW = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
IMG = "https://93.184.215.14/a.jpg"  # an address, not a name: nothing resolves
IMG2 = "https://93.184.215.14/b.png"
VID = "https://93.184.215.14/v.mp4"
CONSENTS = {"content_preview_confirmed": True, "express_consent_given": True}
ALL_NINE = ["twitter", "linkedin", "instagram", "facebook", "tiktok", "threads", "bluesky",
            "youtube", "pinterest"]


def check(**request: Any) -> PublishInput:
    base: dict[str, Any] = {"user_id": USER, "content": "Hello", "platforms": ["twitter"]}
    return check_publish_input(now=NOW, **{**base, **request})


def problems(**request: Any) -> list[str]:
    with pytest.raises(InvalidRequest) as info:
        check(**request)
    return info.value.problems


def nine_platform_overrides() -> dict[str, Any]:
    return {
        "linkedin": {"content": "L" * 1000},
        "youtube": {"title": "Launch", "media_urls": [VID], "privacy": "unlisted"},
        "pinterest": {"board_id": "board-1", "title": "Pin", "link": "https://example.com/p"},
        "tiktok": {**CONSENTS, "privacy": "friends"},
        "instagram": {"placement": "reel"},
    }


def test_a_long_linkedin_override_is_judged_as_linkedin_only() -> None:
    # The common text is short; LinkedIn's own 1,000 characters would refuse X, but X
    # publishes the common text.
    checked = check(platforms=ALL_NINE, media_urls=[IMG], overrides=nine_platform_overrides())
    assert checked.overrides["linkedin"]["content"] == "L" * 1000
    assert checked.overrides["tiktok"]["privacy"] == "friends"
    # The same words as the common content are refused for X and Bluesky, by name.
    assert problems(content="L" * 1000, platforms=["twitter", "bluesky", "linkedin"]) == [
        "content: twitter allows 280 characters (URLs count 23), got 1000",
        "content: bluesky allows 300 graphemes, got 1000",
    ]


def test_an_override_is_checked_by_its_own_platforms_rules() -> None:
    found = problems(platforms=["twitter", "youtube"],
                     overrides={"twitter": {"content": "x" * 281},
                                "youtube": {"title": "t", "media_urls": [IMG]}})
    assert found == [
        "overrides.twitter.content: twitter allows 280 characters (URLs count 23), got 281",
        "overrides.youtube.media_urls: youtube requires exactly one video, got 1 image(s), "
        "0 video(s)",
    ]


def test_every_problem_at_once_each_naming_its_field() -> None:
    found = problems(
        platforms=["twitter", "tiktok", "pinterest", "youtube", "instagram"],
        media_urls=[IMG],
        overrides={
            "twitter": {"reply_setting": "everyone", "poll": {"options": ["a"],
                                                               "duration_minutes": 2}},
            "tiktok": {"privacy": "everyone", "allow_duet": "yes"},
            "youtube": {"media_urls": [VID], "made_for_kids": False},
            "instagram": {"placement": "reels", "thread": ["no"]},
        },
    )
    assert found == [
        "overrides.twitter.reply_setting: unknown field (known for twitter: content, "
        "media_urls, first_comment, thread, reply_settings, poll)",
        "overrides.twitter.poll.options: at least 2 options, got 1",
        "overrides.twitter.poll.duration_minutes: must be an integer from 5 to 10080 "
        "(7 days), got 2",
        "overrides.tiktok.privacy: must be one of public, friends, followers, private, "
        "got 'everyone'",
        "overrides.tiktok.allow_duet: must be true or false, got 'yes'",
        "overrides.instagram.placement: must be one of feed, reel, story, got 'reels'",
        "overrides.instagram.thread: threads are published on twitter, threads, bluesky only",
        "overrides.tiktok.content_preview_confirmed: TikTok requires this consent from the "
        "user, true",
        "overrides.tiktok.express_consent_given: TikTok requires this consent from the user, "
        "true",
        "overrides.pinterest.board_id: pinterest needs a board to pin to",
        "overrides.youtube.title: youtube needs a video title",
    ]


def test_tiktok_without_consents_names_both_fields() -> None:
    found = problems(platforms=["tiktok"], media_urls=[VID],
                     overrides={"tiktok": {"content_preview_confirmed": False}})
    assert [p.split(":")[0] for p in found] == [
        "overrides.tiktok.content_preview_confirmed", "overrides.tiktok.express_consent_given"]


def test_tiktok_consents_given_as_raw_platform_options_count() -> None:
    # what a caller of the first release sent through to LATE as it is
    raw = {"tiktok": {"contentPreviewConfirmed": True, "expressConsentGiven": True}}
    assert check(platforms=["tiktok"], media_urls=[VID], platform_options=raw).platforms
    half = {"tiktok": {"contentPreviewConfirmed": True}}
    assert [p.split(":")[0] for p in problems(platforms=["tiktok"], media_urls=[VID],
                                               platform_options=half)] == [
        "overrides.tiktok.express_consent_given"]


@pytest.mark.parametrize(("overrides", "expected"), [
    ({"mastodon": {"content": "x"}}, "overrides.mastodon: unknown platform"),
    ({"linkedin": {"content": "x"}}, "overrides.linkedin: the post is not for linkedin"),
    ({"twitter": "short"}, "overrides.twitter: must be an object of fields, got str"),
    ({"twitter": {"cotnent": "typo"}}, "overrides.twitter.cotnent: unknown field"),
    ({"x": {"thread": []}}, "overrides.twitter.thread: must be a non-empty list"),
    ({"x": {"thread": [{"content": "a", "media": []}]}},
     "overrides.twitter.thread[0].media: unknown field (known: content, media_urls)"),
    ({"twitter": {"first_comment": "hi"}},
     "overrides.twitter.first_comment: first comments are published on instagram, facebook, "
     "linkedin, threads, youtube only"),
    ({"twitter": {"media_urls": ["ftp://a/b.jpg"]}}, "overrides.twitter.media_urls[0]: "),
    ([1], "overrides: must map platform names to objects, got list"),
])
def test_bad_overrides_are_refused_by_name(overrides: object, expected: str) -> None:
    found = problems(overrides=overrides)
    assert len(found) == 1 and found[0].startswith(expected), found


def test_thread_items_follow_the_platform_rules() -> None:
    found = problems(overrides={"twitter": {"thread": ["ok", "y" * 281,
                                                       {"content": "z", "media_urls": [IMG] * 5}]}})
    assert found == [
        "overrides.twitter.thread[1].content: twitter allows 280 characters per post, got 281",
        "overrides.twitter.thread[2].media_urls: twitter allows 4 images or 1 video, got 5 "
        "images",
    ]


def test_common_content_is_judged_only_where_no_override_replaces_it() -> None:
    checked = check(content="c" * 400, platforms=["twitter", "linkedin"],
                    overrides={"x": {"content": "short for X"}})
    assert checked.overrides == {"twitter": {"content": "short for X"}}


# -- the wire ---------------------------------------------------------------------------------

FULL: dict[str, dict[str, Any]] = {
    "twitter": {"content": "X words", "thread": ["two", {"content": "three",
                                                        "media_urls": [IMG]}],
                "reply_settings": "mentioned",
                "poll": {"options": ["yes", "no"], "duration_minutes": 60}},
    "linkedin": {"content": "LinkedIn words", "first_comment": "Link in the comments"},
    "youtube": {"title": "Launch", "privacy": "unlisted", "made_for_kids": False,
                "tags": ["launch"], "media_urls": [VID]},
    "pinterest": {"board_id": "b-1", "title": "Pin", "link": "https://example.com/p"},
    "tiktok": {**CONSENTS, "privacy": "followers", "allow_comments": True,
               "allow_duet": False, "allow_stitch": False, "brand_content": True,
               "ai_generated": False},
    "instagram": {"placement": "story", "collaborators": ["friend"],
                  "first_comment": "first!"},
    "facebook": {"placement": "reel"},
}


def test_postforme_gets_platform_configurations_with_x_for_twitter() -> None:
    configs = postforme_configurations(
        ["twitter", "youtube", "pinterest", "tiktok", "instagram", "facebook"],
        FULL, {"pinterest": {"board_ids": ["old"], "raw": 1}})
    assert configs == {
        "x": {"caption": "X words", "reply_settings": "mentionedUsers",
              "poll": {"options": ["yes", "no"], "duration_minutes": 60}},
        "youtube": {"media": [{"url": VID}], "title": "Launch", "privacy_status": "unlisted",
                    "made_for_kids": False, "tags": ["launch"]},
        "pinterest": {"board_ids": ["b-1"], "raw": 1, "title": "Pin",
                      "link": "https://example.com/p"},
        "tiktok": {"privacy_status": "followers", "allow_comment": True, "allow_duet": False,
                   "allow_stitch": False, "disclose_branded_content": True,
                   "is_ai_generated": False},
        "instagram": {"placement": "stories", "collaborators": ["friend"]},
        "facebook": {"placement": "reels"},
    }


def test_late_gets_custom_content_media_and_platform_specific_data() -> None:
    assert late_target("twitter", FULL["twitter"], None) == {
        "customContent": "X words",
        "platformSpecificData": {
            "threadItems": [{"content": "two"},
                            {"content": "three", "mediaItems": [{"url": IMG, "type": "image"}]}],
            "replySettings": "mentionedUsers",
            "poll": {"options": ["yes", "no"], "duration_minutes": 60},
        },
    }
    assert late_target("linkedin", FULL["linkedin"], None) == {
        "customContent": "LinkedIn words",
        "platformSpecificData": {"firstComment": "Link in the comments"}}
    assert late_target("youtube", FULL["youtube"], None) == {
        "customMedia": [{"url": VID, "type": "video"}],
        "platformSpecificData": {"title": "Launch", "visibility": "unlisted",
                                 "madeForKids": False, "tags": ["launch"]}}
    assert late_target("pinterest", FULL["pinterest"], {"board_ids": ["old"]}) == {
        "platformSpecificData": {"board_ids": ["old"], "boardId": "b-1", "title": "Pin",
                                 "link": "https://example.com/p"}}
    assert late_target("tiktok", FULL["tiktok"], None) == {"platformSpecificData": {
        "privacyLevel": "FOLLOWER_OF_CREATOR", "allowComment": True, "allowDuet": False,
        "allowStitch": False, "commercialContentType": "brand_content",
        "videoMadeWithAi": False, "contentPreviewConfirmed": True,
        "expressConsentGiven": True}}
    assert late_target("instagram", FULL["instagram"], None) == {"platformSpecificData": {
        "firstComment": "first!", "contentType": "story", "collaborators": ["friend"]}}
    assert late_target("facebook", FULL["facebook"], None) == {
        "platformSpecificData": {"contentType": "reel"}}
    assert late_target("bluesky", None, None) == {}


def test_a_calendar_batch_published_to_fewer_platforms_keeps_only_their_overrides() -> None:
    """A calendar may carry words for YouTube and X; published to X alone, the batch is
    X's post with X's override, not refused for naming a platform it is not for."""
    import uuid

    from db.campaigns import Batch
    from tasks.campaign_publish import plan

    batch = Batch(1, "Launch day", overrides={
        "twitter": {"content": "Launch day on X"},
        "youtube": {"title": "Launch", "content": "Launch day on YouTube"}})
    [planned] = plan(uuid.uuid4(), uuid.uuid4(), [batch], ["x"], skip_past=False)
    assert planned.new is not None and planned.new.status != "failed", planned.new
    assert set(planned.new.overrides or {}) == {"twitter"}
