"""Per-platform content over real HTTP: the exact JSON each provider receives from our
clients (read back from the sandbox), what PostForMe would publish per platform (its
truncation), LATE's refusal of TikTok without consents, and the official SDK reading
back what we created."""

from __future__ import annotations

import uuid
from typing import Any

import requests

from providers import LateProvider, OutcomeKind, PostForMeProvider, PublishRequest
from providers.content import parse_overrides
from providers.platforms import normalize_platforms

T = 5
VIDEO = "https://cdn.example.com/launch.mp4"
IMAGE = "https://cdn.example.com/pin.jpg"
CONSENTS = {"content_preview_confirmed": True, "express_consent_given": True}


def _key(sandbox: Any, which: str) -> str:
    key = f"{which}-content-{uuid.uuid4().hex[:12]}"
    sandbox.register_key(which, key)
    return key


def _get(base: str, key: str, path: str, **params: Any) -> Any:
    resp = requests.get(base + path, params=params, timeout=T,
                        headers={"Authorization": f"Bearer {key}"})
    assert resp.status_code == 200, resp.text
    return resp.json()


def _request(content: str, platforms: list[str], overrides: dict[str, Any],
             media: tuple[str, ...] = ()) -> PublishRequest:
    """Overrides normalised as intake stores them, but not judged by the platform rules:
    what the provider does with words too long for a platform is the point here."""
    names = normalize_platforms(platforms)
    problems: list[str] = []
    normalised = parse_overrides(overrides, names, problems)
    assert problems == []
    return PublishRequest(content=content, platforms=tuple(names), media_urls=media,
                          overrides=normalised, idempotency_key=f"content-{uuid.uuid4()}")


def test_postforme_receives_platform_configurations_and_publishes_per_platform(
        sandbox: Any) -> None:
    key = _key(sandbox, "postforme")
    common = "Common words. " * 30  # 420 characters: X and Bluesky truncate them
    request = _request(common, ["x", "linkedin", "bluesky", "youtube"], {
        "linkedin": {"content": "LinkedIn's own, longer words."},
        "youtube": {"title": "T" * 100, "privacy": "private", "made_for_kids": False},
        "twitter": {"reply_settings": "following"},
    }, media=(VIDEO,))
    outcome = PostForMeProvider(key, sandbox.postforme_url).publish(request)
    assert outcome.kind is OutcomeKind.PUBLISHED, outcome

    post = _get(sandbox.postforme_url, key, f"/social-posts/{outcome.provider_post_id}")
    assert post["caption"] == common
    assert post["media"] == [{"url": VIDEO, "thumbnail_url": None}]
    assert post["platform_configurations"] == {
        "linkedin": {"caption": "LinkedIn's own, longer words."},
        "youtube": {"title": "T" * 100, "privacy_status": "private", "made_for_kids": False},
        "x": {"reply_settings": "following"},
    }
    results = _get(sandbox.postforme_url, key, "/social-post-results",
                   post_id=outcome.provider_post_id)["data"]
    published = _by_platform(sandbox, key, results)
    assert published["x"]["caption"] == common[:280]
    assert published["bluesky"]["caption"] == common[:300]
    assert published["linkedin"]["caption"] == "LinkedIn's own, longer words."
    assert published["youtube"] == {"caption": common, "title": "T" * 100, "media": [VIDEO]}


def test_postforme_truncates_titles_and_pinterest_descriptions(sandbox: Any) -> None:
    key = _key(sandbox, "postforme")
    long_text = "p" * 900
    request = _request("short", ["pinterest", "tiktok", "threads"], {
        "pinterest": {"content": long_text, "board_id": "b-1", "title": "t" * 100,
                      "media_urls": [IMAGE]},
        "tiktok": {**CONSENTS, "content": "k" * 200},
        "threads": {"content": "h" * 501},
    })
    outcome = PostForMeProvider(key, sandbox.postforme_url).publish(request)
    assert outcome.kind is OutcomeKind.PUBLISHED, outcome
    results = _get(sandbox.postforme_url, key, "/social-post-results",
                   post_id=outcome.provider_post_id)["data"]
    published = _by_platform(sandbox, key, results)
    assert published["pinterest"] == {"caption": "p" * 800, "title": "t" * 100,
                                      "media": [IMAGE]}
    assert published["tiktok"]["title"] == "k" * 85
    assert published["threads"]["caption"] == "h" * 500


def test_late_receives_custom_content_media_and_platform_specific_data(sandbox: Any) -> None:
    key = _key(sandbox, "late")
    request = _request("Common words", ["twitter", "linkedin", "youtube", "pinterest", "tiktok"],
                       {
        "twitter": {"content": "X words", "thread": ["2/ more", "3/ end"]},
        "linkedin": {"first_comment": "Link in the comments"},
        "youtube": {"title": "Launch", "privacy": "unlisted", "media_urls": [VIDEO]},
        "pinterest": {"board_id": "b-1", "media_urls": [IMAGE]},
        "tiktok": {**CONSENTS, "privacy": "public", "media_urls": [VIDEO]},
    })
    outcome = LateProvider(key, sandbox.late_url).publish(request)
    assert outcome.kind is OutcomeKind.PUBLISHED, outcome
    assert {p: t.success for p, t in outcome.targets.items()} == dict.fromkeys(
        ["twitter", "linkedin", "youtube", "pinterest", "tiktok"], True)

    raw = _get(sandbox.late_url, key, f"/posts/{outcome.provider_post_id}")
    post = raw["post"]
    assert post["content"] == "Common words"
    sent = {t["platform"]: {k: t[k] for k in ("customContent", "customMedia",
                                              "platformSpecificData") if k in t}
            for t in post["platforms"]}
    assert sent == {
        "twitter": {"customContent": "X words", "platformSpecificData": {
            "threadItems": [{"content": "2/ more"}, {"content": "3/ end"}]}},
        "linkedin": {"platformSpecificData": {"firstComment": "Link in the comments"}},
        "youtube": {"customMedia": [{"url": VIDEO, "type": "video"}],
                    "platformSpecificData": {"title": "Launch", "visibility": "unlisted"}},
        "pinterest": {"customMedia": [{"url": IMAGE, "type": "image"}],
                      "platformSpecificData": {"boardId": "b-1"}},
        "tiktok": {"customMedia": [{"url": VIDEO, "type": "video"}], "platformSpecificData": {
            "privacyLevel": "PUBLIC_TO_EVERYONE", "contentPreviewConfirmed": True,
            "expressConsentGiven": True}},
    }

    # The official SDK (late-sdk, a dev dependency: a missing one fails here, never
    # skips) reads back what we created, custom fields included.
    from late.models import PostGetResponse

    got = PostGetResponse.model_validate(raw)
    assert got.post is not None and got.post.platforms is not None
    twitter = next(t for t in got.post.platforms if t.platform == "twitter")
    assert twitter.customContent == "X words"
    assert twitter.platformSpecificData == {
        "threadItems": [{"content": "2/ more"}, {"content": "3/ end"}]}


def test_late_refuses_tiktok_without_consents(sandbox: Any) -> None:
    key = _key(sandbox, "late")
    request = PublishRequest(content="no consent", platforms=("tiktok",),
                             media_urls=(VIDEO,), overrides={"tiktok": {"privacy": "public"}})
    outcome = LateProvider(key, sandbox.late_url).publish(request)
    assert outcome.kind is OutcomeKind.REJECTED, outcome
    assert outcome.http_status == 422
    assert "contentPreviewConfirmed must be true" in (outcome.error or "")
    assert "expressConsentGiven must be true" in (outcome.error or "")
    assert sandbox.stats()["late"]["creates"] == 0


def _by_platform(sandbox: Any, key: str, results: list[dict[str, Any]]) -> dict[str, Any]:
    """What each platform was sent: the results name the account (as the real ones do),
    mapped to its platform through the key's account list."""
    accounts = _get(sandbox.postforme_url, key, "/social-accounts")["data"]
    platform_of = {a["id"]: a["platform"] for a in accounts}
    return {platform_of[r["social_account_id"]]: r["details"]["published"] for r in results}
