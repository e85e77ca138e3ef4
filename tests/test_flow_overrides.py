"""Per-platform content end to end: real PostgreSQL, Redis, `celery worker` processes and
the sandbox. One post to nine platforms with their own words publishes the right words on
each; an X thread goes through LATE though PostForMe is first in the chain (the attempt
log shows the skip); a post that could never be sent, or lacks what a platform requires,
is refused at intake, naming the fields, with nothing sent."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tasks.validation import InvalidRequest
from tests.stack import Stack
from tests.workers import client, creates, save_key, start_stack, wait_final

CONSENTS = {"content_preview_confirmed": True, "express_consent_given": True}
NINE = ["twitter", "linkedin", "instagram", "facebook", "tiktok", "threads", "bluesky",
        "youtube", "pinterest"]


@pytest.fixture(scope="module")
def stack(database_url: str, redis_url: str, sandbox_server: Any,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    # No global keys: each test's chain is its user's own keys.
    env = {"POSTFORME_API_KEY": "", "LATE_API_KEY": ""}
    with start_stack(tmp_path_factory, database_url, redis_url, env, concurrency=2) as s:
        yield s


@pytest.fixture(autouse=True)
def _no_global_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("POSTFORME_API_KEY", raising=False)
    monkeypatch.delenv("LATE_API_KEY", raising=False)


def _user(sandbox: Any, *providers: str) -> tuple[str, dict[str, str]]:
    user, keys = str(uuid.uuid4()), {}
    for provider in providers:
        keys[provider] = f"ovr-{provider}-{uuid.uuid4().hex}"
        sandbox.register_key(provider, keys[provider])
        save_key(user, provider, keys[provider])
    return user, keys


def _get(base: str, key: str, path: str, **params: Any) -> Any:
    resp = requests.get(base + path, params=params, timeout=5,
                        headers={"Authorization": f"Bearer {key}"})
    assert resp.status_code == 200, resp.text
    return resp.json()


def _targets(row: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {t["platform"]: t for t in row["targets"]}


def test_nine_platforms_each_publish_their_own_words(stack: Stack, sandbox: Any) -> None:
    user, keys = _user(sandbox, "postforme")
    image = f"{sandbox.url}/_sandbox/sample/image.jpg"
    video = f"{sandbox.url}/_sandbox/sample/video.mp4"
    long_linkedin = "The longer story for LinkedIn. " * 32  # ~1,000: too long for X
    post_id = client().enqueue_post(user, "Launch day!", NINE, overrides={
        "linkedin": {"content": long_linkedin},
        "instagram": {"media_urls": [image], "placement": "feed"},
        "tiktok": {**CONSENTS, "media_urls": [video], "privacy": "public"},
        "youtube": {"media_urls": [video], "title": "Launch", "privacy": "unlisted"},
        "pinterest": {"media_urls": [image], "board_id": "board-1",
                      "content": "Pin it: launch day"},
    })
    row = wait_final(post_id)
    assert row["status"] == "posted", row["error_message"]
    assert {(p, t["provider"]) for p, t in _targets(row).items()} == {
        (p, "postforme") for p in NINE}

    (provider_post,) = {t["provider_post_id"] for t in row["targets"]}
    sent = _get(sandbox.postforme_url, keys["postforme"], f"/social-posts/{provider_post}")
    assert sent["caption"] == "Launch day!"
    assert sent["platform_configurations"]["linkedin"] == {"caption": long_linkedin}
    assert sent["platform_configurations"]["youtube"] == {
        "media": [{"url": video}], "title": "Launch", "privacy_status": "unlisted"}
    results = _get(sandbox.postforme_url, keys["postforme"], "/social-post-results",
                   post_id=provider_post)["data"]
    accounts = _get(sandbox.postforme_url, keys["postforme"], "/social-accounts")["data"]
    platform_of = {a["id"]: a["platform"] for a in accounts}  # results name the account
    words = {platform_of[r["social_account_id"]]: r["details"]["published"]["caption"]
             for r in results}
    assert words == {
        **{("x" if p == "twitter" else p): "Launch day!" for p in NINE},
        "linkedin": long_linkedin, "pinterest": "Pin it: launch day",
    }
    assert len(creates(sandbox, "postforme", post_id)) == 1


def test_an_x_thread_goes_through_late_though_postforme_comes_first(
        stack: Stack, sandbox: Any) -> None:
    user, keys = _user(sandbox, "postforme", "late")
    post_id = client().enqueue_post(user, "Big news", ["twitter", "linkedin"], overrides={
        "twitter": {"thread": ["2/ the details", "3/ the end"]},
    })
    row = wait_final(post_id)
    assert row["status"] == "posted", row["error_message"]
    targets = _targets(row)
    assert (targets["linkedin"]["provider"], targets["twitter"]["provider"]) == (
        "postforme", "late")

    skipped = [a for a in row["attempts"] if a["outcome"] == "skipped"]
    assert [(a["provider"], a["platforms"]) for a in skipped] == [("postforme", ["twitter"])]
    assert "twitter asks for threads, which only LATE publishes" in skipped[0]["error"]
    # PostForMe got linkedin alone; LATE got the thread.
    (pfm_create,) = creates(sandbox, "postforme", post_id)
    pfm_post = _get(sandbox.postforme_url, keys["postforme"],
                    f"/social-posts/{targets['linkedin']['provider_post_id']}")
    assert [a["platform"] for a in pfm_post["social_accounts"]] == ["linkedin"]
    late_post = _get(sandbox.late_url, keys["late"],
                     f"/posts/{targets['twitter']['provider_post_id']}")["post"]
    (late_target,) = late_post["platforms"]
    assert late_target["platform"] == "twitter"
    assert late_target["platformSpecificData"] == {
        "threadItems": [{"content": "2/ the details"}, {"content": "3/ the end"}]}


def test_what_can_never_be_sent_is_refused_at_intake_and_nothing_is_sent(
        stack: Stack, sandbox: Any, redis_url: str) -> None:
    from worker.celery_app import app

    user, _ = _user(sandbox, "postforme")  # no LATE key anywhere in the chain
    video = f"{sandbox.url}/_sandbox/sample/video.mp4"
    cases = [
        ({"twitter": {"thread": ["2/ more"]}}, ["twitter"], [
            "overrides.twitter: twitter asks for threads, which only LATE publishes, and this "
            "user's chain has no LATE key"]),
        ({"tiktok": {"media_urls": [video]}}, ["tiktok"], [
            "overrides.tiktok.content_preview_confirmed: TikTok requires this consent",
            "overrides.tiktok.express_consent_given: TikTok requires this consent"]),
        ({"youtube": {"title": "t", "media_urls": [video], "titel": "typo"}}, ["youtube"], [
            "overrides.youtube.titel: unknown field (known for youtube: content, media_urls, "
            "first_comment, thread, title, privacy, made_for_kids, tags)"]),
    ]
    for overrides, platforms, expected in cases:
        # The producer client refuses before anything is stored or sent ...
        with pytest.raises(InvalidRequest) as info:
            client().enqueue_post(user, "hello", platforms, overrides=overrides)
        assert len(info.value.problems) == len(expected), info.value.problems
        for problem, start in zip(info.value.problems, expected, strict=True):
            assert problem.startswith(start), problem
        # ... and so does the worker's intake, for a producer sending by task name.
        post_id = str(uuid.uuid4())
        answer = app.send_task("social.publish_post", kwargs={
            "user_id": user, "content": "hello", "platforms": platforms,
            "overrides": overrides, "post_id": post_id}).get(timeout=30)
        assert answer["status"] == "failed"
        assert all(start in answer["error"] for start in expected), answer
        assert wait_final(post_id)["status"] == "failed"
        assert creates(sandbox, "postforme", post_id) == []
        assert creates(sandbox, "late", post_id) == []
