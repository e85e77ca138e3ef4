"""Every outcome class, for both providers, over real HTTP against the sandbox."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from providers import (
    HttpProvider,
    LateProvider,
    OutcomeKind,
    PostForMeProvider,
    ProviderCallError,
    PublishRequest,
    clear_accounts_cache,
)

PROVIDERS = ["postforme", "late"]


@pytest.fixture(autouse=True)
def _fresh_accounts_cache() -> Iterator[None]:
    clear_accounts_cache()
    yield
    clear_accounts_cache()


def make(
    sandbox: Any, which: str, platforms: list[str] | None = None, **kwargs: Any
) -> tuple[HttpProvider, str]:
    """A provider of kind `which` with a freshly registered key."""
    key = f"{which}-key-{uuid.uuid4().hex[:12]}"
    sandbox.register_key(which, key, platforms)
    if which == "postforme":
        return PostForMeProvider(key, sandbox.postforme_url, **kwargs), key
    return LateProvider(key, sandbox.late_url, **kwargs), key


def creates(sandbox: Any, which: str) -> int:
    return int(sandbox.stats()[which]["creates"])


def request(
    key: str | None = None, platforms: tuple[str, ...] = ("twitter", "linkedin"), **kwargs: Any
) -> PublishRequest:
    return PublishRequest(
        content=kwargs.pop("content", f"hello {uuid.uuid4().hex[:8]}"),
        platforms=platforms,
        idempotency_key=key,
        **kwargs,
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- published ---------------------------------------------------------------------------


@pytest.mark.parametrize("which", PROVIDERS)
def test_published_carries_idempotency_key_and_targets(sandbox: Any, which: str) -> None:
    provider, _ = make(sandbox, which)
    key = f"post-{uuid.uuid4()}"
    outcome = provider.publish(request(key, ("x", "linkedin")))
    assert outcome.kind is OutcomeKind.PUBLISHED, outcome
    assert outcome.provider == provider.name
    assert outcome.provider_post_id
    assert outcome.http_status in (200, 201)
    assert set(outcome.targets) == {"twitter", "linkedin"}
    stats = sandbox.stats()[which]
    assert stats["creates"] == 1
    by_key = stats["by_external_id" if which == "postforme" else "by_request_id"]
    assert by_key.get(key) == 1
    if which == "late":
        assert outcome.provider_status == "published"  # publishNow: true was sent
        for target in outcome.targets.values():
            assert target.success is True
            assert target.platform_post_id and target.platform_post_url
    else:
        assert outcome.provider_status == "processing"
        assert all(t.success is None for t in outcome.targets.values())


def test_seed_post_fills_late_platform_ids_and_urls(sandbox: Any) -> None:
    provider, _ = make(sandbox, "late")
    result = provider.post("hello seed", ["twitter", "bluesky"], post_id="p-1")
    assert result.success, result
    assert result.provider == "LATE"
    assert result.platform_post_ids and set(result.platform_post_ids) == {"twitter", "bluesky"}
    assert result.platform_post_urls and result.platform_post_urls["twitter"].startswith("https://")


def test_seed_post_postforme_and_results_later(sandbox: Any) -> None:
    provider, _ = make(sandbox, "postforme")
    result = provider.post("hello seed", ["twitter", "threads"])
    assert result.success and result.post_id and result.provider == "PostForMe"
    assert isinstance(provider, PostForMeProvider)
    results = provider.fetch_results(result.post_id)
    assert set(results) == {"twitter", "threads"}
    assert all(r.success is True and r.platform_post_id for r in results.values())
    assert results["twitter"].platform_post_url.startswith("https://x.com/")  # type: ignore[union-attr]


def test_results_of_many_posts_are_read_to_their_last_page(sandbox: Any) -> None:
    # 60 two-platform posts: 120 results, more than a page of 100. A reader that stopped
    # at the first page would see some posts half answered (or, with PostForMe's retried
    # results, a failure without the success that followed it).
    provider, _ = make(sandbox, "postforme", ["twitter", "linkedin"])
    assert isinstance(provider, PostForMeProvider)
    ids = []
    for _ in range(60):
        outcome = provider.publish(request())
        assert outcome.kind is OutcomeKind.PUBLISHED, outcome
        ids.append(str(outcome.provider_post_id))
    answered = provider.fetch_results_many(ids)
    assert {pid: sorted(answered.get(pid, {})) for pid in ids} == {
        pid: ["linkedin", "twitter"] for pid in ids}


def test_base_url_defaults_to_environment(sandbox: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POSTFORME_BASE_URL", sandbox.postforme_url)
    monkeypatch.setenv("LATE_BASE_URL", sandbox.late_url)
    assert PostForMeProvider("k").base_url == sandbox.postforme_url
    assert LateProvider("k").base_url == sandbox.late_url
    monkeypatch.delenv("POSTFORME_BASE_URL")
    monkeypatch.delenv("LATE_BASE_URL")
    assert PostForMeProvider("k").base_url == "https://api.postforme.dev/v1"
    assert LateProvider("k").base_url == "https://getlate.dev/api/v1"
    assert PostForMeProvider("k").name == "PostForMe" and LateProvider("k").name == "LATE"


@pytest.mark.parametrize("which", PROVIDERS)
def test_scheduled_post(sandbox: Any, which: str) -> None:
    provider, _ = make(sandbox, which)
    when = datetime.now(UTC) + timedelta(days=2)
    outcome = provider.publish(request("sched-1", ("linkedin",), scheduled_for=when))
    assert outcome.kind is OutcomeKind.PUBLISHED
    assert outcome.provider_status == "scheduled"
    result = provider.post("later", ["linkedin"], scheduled_for=when)
    assert result.success and result.scheduled_for == when


def test_late_media_items_typed_by_extension(sandbox: Any) -> None:
    provider, _ = make(sandbox, "late")
    video = f"{sandbox.url}/_sandbox/sample/video.mp4"
    outcome = provider.publish(request(None, ("youtube",), media_urls=(video,)))
    assert outcome.kind is OutcomeKind.PUBLISHED
    assert outcome.targets["youtube"].success is True  # the sandbox saw type "video"


def test_postforme_platform_options_become_configurations(sandbox: Any) -> None:
    provider, _ = make(sandbox, "postforme")
    image = f"{sandbox.url}/_sandbox/sample/image.jpg"
    outcome = provider.publish(
        request(
            None,
            ("pinterest", "x"),
            media_urls=(image,),
            platform_options={"pinterest": {"board_ids": ["b1"]}, "twitter": {"a": 1}},
        )
    )
    assert outcome.kind is OutcomeKind.PUBLISHED
    post = provider._query("GET", f"/social-posts/{outcome.provider_post_id}")
    assert post["platform_configurations"] == {"pinterest": {"board_ids": ["b1"]}, "x": {"a": 1}}
    assert post["media"][0]["url"] == image


# -- not sent / transient ----------------------------------------------------------------


@pytest.mark.parametrize("which", PROVIDERS)
@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_server_errors_to_a_create_are_ambiguous(sandbox: Any, which: str, status: int) -> None:
    # A 5xx to a create is no proof that nothing was created (a load balancer's 502/504,
    # a 500 after the row was written): the engine must look the post up, never resend blind.
    provider, _ = make(sandbox, which)
    sandbox.push_responses(which, [{"status": status, "message": "upstream down"}])
    outcome = provider.publish(request("k-1"))
    assert outcome.kind is OutcomeKind.AMBIGUOUS
    assert outcome.http_status == status
    assert outcome.error == f"HTTP {status}: upstream down"
    result = provider.post("x", ["twitter"])  # the queue is empty again: this one passes
    assert result.success


@pytest.mark.parametrize("which", PROVIDERS)
@pytest.mark.parametrize("status", [408, 425])
def test_timeouts_answered_to_a_create_are_ambiguous(sandbox: Any, which: str, status: int) -> None:
    provider, _ = make(sandbox, which)
    sandbox.push_responses(which, [{"status": status}])
    assert provider.publish(request("k-1")).kind is OutcomeKind.AMBIGUOUS


@pytest.mark.parametrize("status", [500, 502, 503, 504, 408, 425])
def test_server_errors_elsewhere_are_transient(status: int) -> None:
    # Asking again is harmless for a call that creates nothing (a lookup, a list).
    from providers.http import HttpAnswer, classify_answer

    answer = HttpAnswer(status=status, headers={}, body={"message": "down"}, text="",
                        latency_ms=1.0)
    assert classify_answer(answer, "PostForMe").kind is OutcomeKind.TRANSIENT
    assert classify_answer(answer, "PostForMe", create=True).kind is OutcomeKind.AMBIGUOUS


@pytest.mark.parametrize("which", PROVIDERS)
def test_connection_refused_is_transient(which: str) -> None:
    url = f"http://127.0.0.1:{free_port()}/api"
    provider = (PostForMeProvider if which == "postforme" else LateProvider)("k-123456", url)
    outcome = provider.publish(request("k"))
    assert outcome.kind is OutcomeKind.TRANSIENT
    assert "nothing was sent" in (outcome.error or "")
    result = provider.post("hi", ["twitter"])
    assert not result.success and result.error
    with pytest.raises(ProviderCallError) as info:
        provider.accounts()
    assert info.value.outcome.kind is OutcomeKind.TRANSIENT


# -- rate limited ------------------------------------------------------------------------


@pytest.mark.parametrize("which", PROVIDERS)
def test_rate_limited_with_retry_after(sandbox: Any, which: str) -> None:
    provider, _ = make(sandbox, which)
    sandbox.push_responses(which, [{"status": 429, "retry_after": 7}])
    outcome = provider.publish(request("k-1"))
    assert outcome.kind is OutcomeKind.RATE_LIMITED
    assert outcome.http_status == 429
    assert outcome.retry_after == pytest.approx(7, abs=1)
    assert (outcome.error or "").startswith("HTTP 429: ")


# -- credential rejected -----------------------------------------------------------------


@pytest.mark.parametrize("which", PROVIDERS)
@pytest.mark.parametrize("status", [401, 403])
def test_a_401_or_a_403_about_the_key_rejects_the_credential(
    sandbox: Any, which: str, status: int
) -> None:
    provider, _ = make(sandbox, which)
    sandbox.push_responses(which, [{"status": status, "message": "Invalid or expired token"}])
    outcome = provider.publish(request("k-1"))
    assert outcome.kind is OutcomeKind.CREDENTIAL_REJECTED
    assert outcome.http_status == status


@pytest.mark.parametrize("which", PROVIDERS)
@pytest.mark.parametrize("message", ["Plan limit reached: 10 posts per month",
                                     "This feature requires the Business plan", None])
def test_a_403_for_a_plan_limit_leaves_the_key_valid(
    sandbox: Any, which: str, message: str | None
) -> None:
    # LATE answers 403 for plan limits and restricted features: the key itself is fine,
    # so the step is refused (fall over) without marking the key invalid.
    provider, _ = make(sandbox, which)
    entry: dict[str, Any] = {"status": 403}
    if message:
        entry["message"] = message
    sandbox.push_responses(which, [entry])
    outcome = provider.publish(request("k-1"))
    assert outcome.kind is OutcomeKind.REJECTED and outcome.http_status == 403


@pytest.mark.parametrize("which", PROVIDERS)
def test_unknown_and_revoked_keys(sandbox: Any, which: str) -> None:
    cls = PostForMeProvider if which == "postforme" else LateProvider
    url = sandbox.postforme_url if which == "postforme" else sandbox.late_url
    stranger = cls("never-registered-key", url)
    outcome = stranger.publish(request("k"))
    assert outcome.kind is OutcomeKind.CREDENTIAL_REJECTED and outcome.http_status == 401
    assert stranger.get_accounts() == []
    result = stranger.post("hi", ["twitter"])
    assert not result.success and (result.error or "").startswith("HTTP 401: ")

    provider, key = make(sandbox, which)
    assert provider.accounts()
    sandbox.revoke_key(which, key)
    provider.invalidate_accounts()
    with pytest.raises(ProviderCallError) as info:
        provider.accounts()
    assert info.value.outcome.kind is OutcomeKind.CREDENTIAL_REJECTED
    assert creates(sandbox, which) == 0


def test_missing_key_answers_without_sending(sandbox: Any) -> None:
    provider = PostForMeProvider(None, sandbox.postforme_url)
    result = provider.post("hi", ["twitter"])
    assert not result.success and "No API key" in (result.error or "")
    assert sandbox.stats()["postforme"]["requests"] == 0


# -- rejected ----------------------------------------------------------------------------


@pytest.mark.parametrize("which", PROVIDERS)
@pytest.mark.parametrize("status", [400, 404, 422])
def test_other_4xx_are_rejected(sandbox: Any, which: str, status: int) -> None:
    provider, _ = make(sandbox, which)
    sandbox.push_responses(which, [{"status": status, "message": "caption too long"}])
    outcome = provider.publish(request("k-1"))
    assert outcome.kind is OutcomeKind.REJECTED
    assert outcome.error == f"HTTP {status}: caption too long"
    result = provider.post("x", ["twitter"])
    assert result.success


@pytest.mark.parametrize("which", PROVIDERS)
def test_unknown_platform_rejected_locally(sandbox: Any, which: str) -> None:
    provider, _ = make(sandbox, which)
    outcome = provider.publish(request("k", ("twitter", "myspace")))
    assert outcome.kind is OutcomeKind.REJECTED
    assert "myspace" in (outcome.error or "")
    assert sandbox.stats()[which]["requests"] == 0


# -- duplicate (LATE) ------------------------------------------------------------------


def test_late_same_content_is_duplicate_with_existing_id(sandbox: Any) -> None:
    provider, _ = make(sandbox, "late")
    first = provider.publish(request("key-a", ("twitter",), content="same words"))
    assert first.kind is OutcomeKind.PUBLISHED
    second = provider.publish(request("key-b", ("twitter",), content="same words"))
    assert second.kind is OutcomeKind.DUPLICATE
    assert second.http_status == 409
    assert second.existing_post_id == first.provider_post_id


# -- ambiguous ---------------------------------------------------------------------------


@pytest.mark.parametrize("which", PROVIDERS)
def test_hang_after_accepting_is_ambiguous_then_reconciled(sandbox: Any, which: str) -> None:
    provider, _ = make(sandbox, which, read_timeout=0.5)
    key = f"amb-{uuid.uuid4()}"
    sandbox.push_responses(which, [{"hang": True, "hang_seconds": 3}])
    req = request(key, ("twitter",))
    outcome = provider.publish(req)
    assert outcome.kind is OutcomeKind.AMBIGUOUS, outcome
    assert "read timeout" in (outcome.error or "")
    assert outcome.latency_ms < 2500
    assert creates(sandbox, which) == 1  # it was created: a blind resend would duplicate

    if which == "postforme":
        assert isinstance(provider, PostForMeProvider)
        found = provider.find_post(key)
        assert found is not None and found.kind is OutcomeKind.PUBLISHED
        assert found.provider_post_id and set(found.targets) == {"twitter"}
        assert provider.find_post("no-such-key") is None
    else:
        assert provider.find_post(key) is None  # LATE cannot look up: resend instead
        again = provider.publish(req)  # same x-request-id within 300 s: the same post
        assert again.kind is OutcomeKind.PUBLISHED and again.http_status == 200
        assert creates(sandbox, which) == 1


def test_find_post_lookup_failure_raises(sandbox: Any) -> None:
    provider, key = make(sandbox, "postforme")
    sandbox.revoke_key("postforme", key)
    with pytest.raises(ProviderCallError) as info:
        provider.find_post("anything")
    assert info.value.outcome.kind is OutcomeKind.CREDENTIAL_REJECTED


# -- no account --------------------------------------------------------------------------


@pytest.mark.parametrize("which", PROVIDERS)
def test_missing_accounts_send_nothing(sandbox: Any, which: str) -> None:
    provider, _ = make(sandbox, which, platforms=["twitter", "linkedin"])
    outcome = provider.publish(request("k", ("twitter", "tiktok", "youtube")))
    assert outcome.kind is OutcomeKind.NO_ACCOUNT
    assert outcome.missing_platforms == ("tiktok", "youtube")
    assert outcome.error and outcome.error.startswith(
        "No connected accounts for: ['tiktok', 'youtube'] (tiktok: no tiktok account of this "
        f"user under the user's own {provider.name} key; youtube: ")
    result = provider.post("hi", ["twitter", "tiktok"])
    assert not result.success and result.error
    assert result.error.startswith("No connected accounts for: ['tiktok']")
    assert creates(sandbox, which) == 0


@pytest.mark.parametrize("which", PROVIDERS)
def test_allow_partial_publishes_the_served_platforms(sandbox: Any, which: str) -> None:
    provider, _ = make(sandbox, which)
    sandbox.set_faults(which, missing_platforms=["instagram"])
    outcome = provider.publish(request("k", ("twitter", "instagram")), allow_partial=True)
    assert outcome.kind is OutcomeKind.PUBLISHED
    assert set(outcome.targets) == {"twitter"}
    assert outcome.missing_platforms == ("instagram",)
    none_served = provider.publish(request("k2", ("instagram",)), allow_partial=True)
    assert none_served.kind is OutcomeKind.NO_ACCOUNT
    assert none_served.missing_platforms == ("instagram",)


# -- accounts cache ------------------------------------------------------------------------


@pytest.mark.parametrize("which", PROVIDERS)
def test_accounts_are_cached_per_credential(sandbox: Any, which: str) -> None:
    provider, _ = make(sandbox, which)
    path = "/social-accounts" if which == "postforme" else "/accounts"

    def account_calls() -> int:
        return sum(1 for r in sandbox.requests(which) if r["path"].endswith(path))

    for _ in range(3):
        assert provider.publish(request(None, ("twitter",))).kind is OutcomeKind.PUBLISHED
    assert account_calls() == 1
    provider.invalidate_accounts()
    provider.accounts()
    assert account_calls() == 2


@pytest.mark.parametrize("which", PROVIDERS)
def test_account_cache_can_be_disabled_and_misses_are_rechecked(
    sandbox: Any, which: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    provider, _ = make(sandbox, which)
    sandbox.set_faults(which, missing_platforms=["bluesky"])
    assert provider.publish(request(None, ("bluesky",))).kind is OutcomeKind.NO_ACCOUNT
    sandbox.set_faults(which)  # the account is connected now
    # The cached list lacks bluesky: it is re-read once before answering NO_ACCOUNT.
    assert provider.publish(request(None, ("bluesky",))).kind is OutcomeKind.PUBLISHED
    monkeypatch.setenv("SOCIALPOST_ACCOUNTS_CACHE_SECONDS", "0")
    path = "/social-accounts" if which == "postforme" else "/accounts"

    def lists() -> int:  # LATE also reads /profiles, to know whose each account is
        return sum(1 for r in sandbox.requests(which) if r["path"].endswith(path))

    before = lists()
    provider.accounts()
    provider.accounts()
    assert lists() == before + 2


# -- response shapes and OAuth -------------------------------------------------------------


def test_postforme_seed_shapes(sandbox: Any) -> None:
    provider, _ = make(sandbox, "postforme")
    sandbox.set_faults("postforme", seed_shapes=True)
    outcome = provider.publish(request("seed-shape"))
    assert outcome.kind is OutcomeKind.PUBLISHED and outcome.http_status == 200
    assert outcome.provider_post_id and outcome.provider_post_id.startswith("sp_")
    url = provider.get_oauth_url("twitter", "https://app.example/cb")
    assert url and "/_sandbox/oauth/twitter" in url
    sandbox.set_faults("postforme")
    url = provider.get_oauth_url("x", "https://app.example/cb")  # {"url": ...} answer
    assert url and "/_sandbox/oauth/twitter" in url
    assert provider.get_oauth_url("myspace", "https://app.example/cb") is None


def test_late_connect_url(sandbox: Any) -> None:
    provider, _ = make(sandbox, "late")
    assert isinstance(provider, LateProvider)
    url = provider.get_connect_url("linkedin", "https://app.example/cb", profile_id="prof-9")
    assert url and "/_sandbox/oauth/linkedin" in url and "profileId=prof-9" in url
    alias = provider.get_oauth_url("twitter", "https://app.example/cb")
    assert alias and "profileId=" in alias  # the key's default profile


def test_oauth_failure_is_none(sandbox: Any) -> None:
    pfm = PostForMeProvider("unknown-key-1", sandbox.postforme_url)
    late = LateProvider("unknown-key-2", sandbox.late_url)
    assert pfm.get_oauth_url("twitter", "https://a/cb") is None
    assert late.get_oauth_url("twitter", "https://a/cb") is None


def test_seed_post_never_raises(sandbox: Any) -> None:
    provider, _ = make(sandbox, "late")
    result = provider.post("hi", None)  # type: ignore[arg-type]
    assert not result.success and result.error
    result = provider.post("hi", ["twitter"], media_urls=[123])  # type: ignore[list-item]
    assert not result.success and result.error


def test_late_fetch_results(sandbox: Any) -> None:
    provider, _ = make(sandbox, "late")
    outcome = provider.publish(request("late-res", ("twitter", "threads")))
    assert outcome.provider_post_id
    results = provider.fetch_results(outcome.provider_post_id)
    assert set(results) == {"twitter", "threads"}
    assert all(r.success is True and r.platform_post_url for r in results.values())


@pytest.mark.parametrize("which", PROVIDERS)
def test_account_gone_since_cached_is_no_account(sandbox: Any, which: str) -> None:
    provider, _ = make(sandbox, which)
    provider.accounts()  # cached with tiktok
    sandbox.set_faults(which, missing_platforms=["tiktok"])
    outcome = provider.publish(request("gone", ("tiktok",)))
    assert outcome.kind is OutcomeKind.NO_ACCOUNT
    assert outcome.missing_platforms == ("tiktok",)
    assert creates(sandbox, which) == 0
