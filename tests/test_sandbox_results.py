"""Confirmed outcomes in the sandbox (issue 11): what happens after a provider accepted a
post, as the real services do it (shared/docs/providers.md). PostForMe answers
`processing` and its results come later, sometimes twice for one account, sometimes
never; platform rules and injected failures arrive as failed results. LATE answers
per-target statuses with errorCategory / errorSource, some targets still `pending`,
and a published target can turn `failed` later. Over real HTTP against the session
sandbox (each test sets the faults it needs; the fixture resets them)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
import requests

from providers.sandbox import SandboxServer
from providers.sandbox.fault_spec import ERROR_CLASSES, FaultSpec

PFM = "pfm_results_key_0001"
LATE = "sk_late_results_key_0001"
T = 5
TARGET_STATUSES = {"pending", "processing", "uploading", "published", "failed", "cancelled"}
SOURCES = {"user", "platform", "system"}
IMAGE = "https://cdn.example.com/a.jpg"
VIDEO = "https://cdn.example.com/a.mp4"


class Api:
    """One provider's base URL behind a bearer key."""

    def __init__(self, base: str, key: str) -> None:
        self.base = base
        self.s = requests.Session()
        self.s.headers["Authorization"] = f"Bearer {key}"

    def get(self, path: str, **kw: Any) -> requests.Response:
        return self.s.get(self.base + path, timeout=T, **kw)

    def post(self, path: str, body: dict[str, Any]) -> requests.Response:
        return self.s.post(self.base + path, json=body, timeout=T)


@pytest.fixture
def box(sandbox: SandboxServer) -> SandboxServer:
    sandbox.register_key("postforme", PFM)
    sandbox.register_key("late", LATE)
    return sandbox


@pytest.fixture
def pfm(box: SandboxServer) -> Api:
    return Api(box.postforme_url, PFM)


@pytest.fixture
def late(box: SandboxServer) -> Api:
    return Api(box.late_url, LATE)


def _pfm_accounts(pfm: Api) -> dict[str, str]:
    return {a["platform"]: a["id"] for a in pfm.get("/social-accounts").json()["data"]}


def _pfm_create(pfm: Api, platforms: tuple[str, ...], **extra: Any) -> dict[str, Any]:
    ids = _pfm_accounts(pfm)
    body = {"caption": "results", "social_accounts": [ids[p] for p in platforms], **extra}
    resp = pfm.post("/social-posts", body)
    assert resp.status_code == 201, resp.text
    post: dict[str, Any] = resp.json()
    assert post["status"] == "processing"  # a create never answers a final state
    return post


def _results(pfm: Api, post_id: str) -> list[dict[str, Any]]:
    """The post's results, each with the platform of its account added: the real results
    name the account only (as the sandbox's do), and a client maps it, as ours does."""
    data: list[dict[str, Any]] = pfm.get(
        "/social-post-results", params={"post_id": post_id}
    ).json()["data"]
    assert all("platform" not in r for r in data)
    platform_of = {i: p for p, i in _pfm_accounts(pfm).items()}
    return [{**r, "platform": platform_of[r["social_account_id"]]} for r in data]


def _status(pfm: Api, post_id: str) -> str:
    return str(pfm.get(f"/social-posts/{post_id}").json()["status"])


# LATE refuses a TikTok target without the creator's two consents (422).
_CONSENTS = {"tiktok": {"platformSpecificData": {"contentPreviewConfirmed": True,
                                                 "expressConsentGiven": True}}}


def _late_create(late: Api, platforms: tuple[str, ...], **extra: Any) -> requests.Response:
    accounts = {a["platform"]: a["_id"] for a in late.get("/accounts").json()["accounts"]}
    targets = [{"platform": p, "accountId": accounts[p], **_CONSENTS.get(p, {})}
               for p in platforms]
    body = {"content": f"outcomes {time.time()}", "platforms": targets, "publishNow": True}
    return late.post("/posts", {**body, **extra})


def _late_post(late: Api, post_id: str) -> dict[str, Any]:
    post: dict[str, Any] = late.get(f"/posts/{post_id}").json()["post"]
    return post


def _by_platform(post: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {t["platform"]: t for t in post["platforms"]}


def _wait(check: Callable[[], bool], seconds: float) -> None:
    """Poll until `check()` holds (the machine is shared: no exact sleeps)."""
    end = time.time() + seconds
    while not check():
        assert time.time() < end, "timed out"
        time.sleep(0.05)


# -- PostForMe: results after a delay ----------------------------------------------------


def test_results_appear_after_the_delay(box: SandboxServer, pfm: Api) -> None:
    box.set_faults("postforme", result_delay_seconds=1.0)
    post = _pfm_create(pfm, ("x", "bluesky"))
    assert _results(pfm, post["id"]) == []
    assert _status(pfm, post["id"]) == "processing"
    listed = pfm.get("/social-posts", params={"status": "processing"}).json()["data"]
    assert [p["id"] for p in listed] == [post["id"]]
    _wait(lambda: _status(pfm, post["id"]) == "processed", 3)
    results = _results(pfm, post["id"])
    assert {r["platform"] for r in results} == {"x", "bluesky"}
    assert all(r["success"] and r["platform_data"]["id"] for r in results)
    one = pfm.get(f"/social-post-results/{results[0]['id']}")
    assert one.status_code == 200 and one.json()["id"] == results[0]["id"]


def test_server_wide_result_delay_survives_reset_and_a_fault_overrides_it() -> None:
    with SandboxServer(postforme_result_delay_seconds=30) as server:
        server.reset()
        server.register_key("postforme", PFM)
        pfm = Api(server.postforme_url, PFM)
        waiting = _pfm_create(pfm, ("x",))
        assert _results(pfm, waiting["id"]) == []
        assert server.get_faults()["postforme"]["result_delay_seconds"] is None
        server.set_faults("postforme", result_delay_seconds=0)
        now = _pfm_create(pfm, ("x",))
        assert len(_results(pfm, now["id"])) == 1 and _status(pfm, now["id"]) == "processed"
        assert _status(pfm, waiting["id"]) == "processing"  # planned at its create
    with pytest.raises(ValueError):
        SandboxServer(postforme_result_delay_seconds=-1)


# -- PostForMe: platform rules fail after acceptance ---------------------------------------


def test_platform_rules_are_accepted_then_fail_as_results(pfm: Api) -> None:
    post = _pfm_create(pfm, ("x", "instagram", "pinterest", "tiktok", "youtube"),
                       media=[])
    errors = {r["platform"]: r["error"] for r in _results(pfm, post["id"])}
    assert errors == {
        "x": None,
        "instagram": "Instagram requires at least one image or video",
        "pinterest": "Pinterest requires an image",
        "tiktok": "TikTok requires a video or at least one photo",
        "youtube": "YouTube requires a video",
    }
    failed = [r for r in _results(pfm, post["id"]) if r["error"]]
    assert all(r["success"] is False and r["platform_data"]["id"] is None for r in failed)
    assert _status(pfm, post["id"]) == "processed"

    image_only = _pfm_create(pfm, ("youtube", "instagram"), media=[{"url": IMAGE}])
    outcome = {r["platform"]: r["error"] for r in _results(pfm, image_only["id"])}
    assert outcome == {"youtube": "YouTube requires a video", "instagram": None}


def test_platform_media_overrides_count_for_the_rules(pfm: Api) -> None:
    ids = _pfm_accounts(pfm)
    post = _pfm_create(
        pfm, ("instagram", "youtube", "tiktok"),
        platform_configurations={"instagram": {"media": [{"url": IMAGE}]}},
        account_configurations=[
            {"social_account_id": ids["youtube"], "configuration": {"media": [{"url": VIDEO}]}}
        ],
    )
    outcome = {r["platform"]: r["success"] for r in _results(pfm, post["id"])}
    assert outcome == {"instagram": True, "youtube": True, "tiktok": False}


# -- fail_platforms with an error class ---------------------------------------------------


def test_postforme_fail_platforms_error_texts_read_like_the_class(
    box: SandboxServer, pfm: Api
) -> None:
    box.set_faults("postforme", fail_platforms={
        "bluesky": "platform_error", "x": "user_content", "linkedin": "auth_expired"})
    post = _pfm_create(pfm, ("x", "bluesky", "linkedin", "threads"))
    errors = {r["platform"]: r["error"] for r in _results(pfm, post["id"])}
    assert errors == {
        "bluesky": "Internal error while publishing, please retry",
        "x": "Text exceeds the 280 character limit",
        "linkedin": "Token expired, please reconnect the account",
        "threads": None,
    }
    box.set_faults("postforme", fail_platforms=["bluesky"])  # a bare list: platform_error
    plain = _pfm_create(pfm, ("bluesky",))
    assert _results(pfm, plain["id"])[0]["error"] == (
        "Internal error while publishing, please retry")


def test_late_fail_platforms_give_category_and_source(box: SandboxServer, late: Api) -> None:
    box.set_faults("late", fail_platforms={"bluesky": "user_content", "linkedin": "auth_expired",
                                           "threads": "system_error"})
    resp = _late_create(late, ("twitter", "bluesky", "linkedin", "threads"))
    assert resp.status_code == 201
    post = resp.json()["post"]
    assert post["status"] == "partial"
    by = _by_platform(post)
    assert by["bluesky"]["errorMessage"] == "Text exceeds the 300 character limit"
    assert (by["bluesky"]["errorCategory"], by["bluesky"]["errorSource"]) == (
        "user_content", "user")
    assert (by["linkedin"]["errorCategory"], by["linkedin"]["errorSource"]) == (
        "auth_expired", "user")
    assert (by["threads"]["errorCategory"], by["threads"]["errorSource"]) == (
        "system_error", "system")
    assert by["twitter"]["status"] == "published" and by["twitter"]["errorCategory"] is None
    assert _by_platform(_late_post(late, post["_id"])) == by


def test_every_error_class_is_accepted_and_unknown_ones_refused(box: SandboxServer) -> None:
    for cls in ERROR_CLASSES:
        box.set_faults("late", fail_platforms={"twitter": cls})
    control = box.url + "/_sandbox/faults"
    ok = requests.post(control, json={"provider": "late", "fail_platforms": {"x": "user_abuse"},
                                      "regress_platforms": {"twitter": 2}}, timeout=T)
    assert ok.status_code == 200
    assert ok.json()["fail_platforms"] == {"twitter": "user_abuse"}
    assert ok.json()["regress_platforms"] == {"twitter": 2.0}
    bad = requests.post(control, json={"provider": "late", "fail_platforms": {"x": "oops"}},
                        timeout=T)
    assert bad.status_code == 400 and "unknown error class" in bad.json()["error"]
    cli = FaultSpec.from_mapping({"fail_platforms": "bluesky:user_content,linkedin",
                                  "regress_platforms": "twitter:3"}, "late")
    assert cli.fail_platforms == {"bluesky": "user_content", "linkedin": "platform_error"}
    assert cli.regress_platforms == {"twitter": 3.0}


def test_outcome_faults_belong_to_their_provider(box: SandboxServer) -> None:
    for name, value in [("result_delay_seconds", 1), ("duplicate_result_rate", 0.5),
                        ("stuck_rate", 0.5)]:
        with pytest.raises(ValueError, match="postforme fault"):
            box.set_faults("late", **{name: value})
    late_only: list[tuple[str, Any]] = [
        ("pending_rate", 0.5), ("pending_platforms", ["tiktok"]), ("pending_seconds", 1),
        ("regress_platforms", {"twitter": 1})]
    for name, setting in late_only:
        with pytest.raises(ValueError, match="late fault"):
            box.set_faults("postforme", **{name: setting})


# -- PostForMe: two results for one account, posts stuck for good -------------------------


def test_duplicate_result_first_fails_then_the_retry_succeeds(
    box: SandboxServer, pfm: Api
) -> None:
    box.set_faults("postforme", duplicate_result_rate=1.0, result_delay_seconds=2.0)
    post = _pfm_create(pfm, ("x",))
    _wait(lambda: len(_results(pfm, post["id"])) >= 1, 3)
    early = _results(pfm, post["id"])
    if len(early) == 1:  # between the failure and the retry: not final yet
        assert early[0]["success"] is False and "retry" in early[0]["error"]
        assert _status(pfm, post["id"]) == "processing"
    _wait(lambda: _status(pfm, post["id"]) == "processed", 3)
    first, second = _results(pfm, post["id"])
    assert first["social_account_id"] == second["social_account_id"]
    assert (first["success"], second["success"]) == (False, True)
    assert first["created_at"] < second["created_at"] and first["id"] != second["id"]
    assert second["platform_data"]["id"] and first["platform_data"]["id"] is None


def test_duplicate_results_at_once_without_a_delay(box: SandboxServer, pfm: Api) -> None:
    box.set_faults("postforme", duplicate_result_rate=1.0, fail_platforms=["linkedin"])
    post = _pfm_create(pfm, ("x", "linkedin"))
    results = _results(pfm, post["id"])
    by_platform: dict[str, list[bool]] = {}
    for r in results:
        by_platform.setdefault(r["platform"], []).append(r["success"])
    assert by_platform == {"x": [False, True], "linkedin": [False]}  # a failure stays one


def test_stuck_posts_never_leave_processing(box: SandboxServer, pfm: Api) -> None:
    box.set_faults("postforme", stuck_rate=1.0, result_delay_seconds=0.2)
    post = _pfm_create(pfm, ("x", "linkedin"))
    time.sleep(0.4)
    assert _results(pfm, post["id"]) == [] and _status(pfm, post["id"]) == "processing"
    assert pfm.s.delete(f"{pfm.base}/social-posts/{post['id']}", timeout=T).status_code == 400
    box.set_faults("postforme")  # healing the service does not unstick the post
    assert _status(pfm, post["id"]) == "processing"


# -- LATE: per-target statuses, pending targets, regressions -------------------------------


def test_late_targets_carry_every_outcome_field(late: Api) -> None:
    post = _late_create(late, ("twitter", "instagram")).json()["post"]
    by = _by_platform(post)
    fields = {"status", "platformPostId", "platformPostUrl", "publishedAt", "errorMessage",
              "errorCategory", "errorSource"}
    assert all(fields <= set(t) and t["status"] in TARGET_STATUSES for t in post["platforms"])
    assert by["twitter"]["status"] == "published" and by["twitter"]["publishedAt"]
    assert by["instagram"] == {**by["instagram"], "status": "failed", "platformPostId": None,
                               "errorMessage": "Instagram requires at least one image or video",
                               "errorCategory": "user_content", "errorSource": "user"}
    assert post["status"] == "partial"


def test_late_pending_targets_finish_later(box: SandboxServer, late: Api) -> None:
    box.set_faults("late", pending_platforms=["linkedin", "tiktok"], pending_seconds=1.0)
    post = _late_create(late, ("twitter", "linkedin", "tiktok")).json()["post"]
    by = _by_platform(post)
    assert post["status"] == "publishing" and by["twitter"]["status"] == "published"
    assert by["linkedin"]["status"] == "pending" and by["linkedin"]["platformPostId"] is None
    assert by["tiktok"]["status"] == "pending"  # no media: it will fail, not yet
    assert _late_post(late, post["_id"])["status"] == "publishing"
    _wait(lambda: _late_post(late, post["_id"])["status"] != "publishing", 3)
    done = _late_post(late, post["_id"])
    after = _by_platform(done)
    assert done["status"] == "partial"
    assert after["linkedin"]["status"] == "published" and after["linkedin"]["platformPostUrl"]
    assert after["tiktok"]["status"] == "failed"
    assert after["tiktok"]["errorCategory"] == "user_content"


def test_late_pending_rate_holds_every_target(box: SandboxServer, late: Api) -> None:
    box.set_faults("late", pending_rate=1.0, pending_seconds=0.3,
                   fail_platforms={"threads": "platform_rate_limit"})
    post = _late_create(late, ("twitter", "threads")).json()["post"]
    assert {t["status"] for t in post["platforms"]} == {"pending"}
    _wait(lambda: _late_post(late, post["_id"])["status"] == "partial", 3)
    threads = _by_platform(_late_post(late, post["_id"]))["threads"]
    assert (threads["errorCategory"], threads["errorSource"]) == ("platform_rate_limit",
                                                                  "platform")


def test_late_publish_can_regress_to_failed(box: SandboxServer, late: Api) -> None:
    box.set_faults("late", regress_platforms={"twitter": 0.5})
    both = _late_create(late, ("twitter", "linkedin")).json()["post"]
    alone = _late_create(late, ("twitter",)).json()["post"]
    assert both["status"] == alone["status"] == "published"
    _wait(lambda: _late_post(late, alone["_id"])["status"] == "failed", 3)
    after = _late_post(late, both["_id"])
    assert after["status"] == "partial"
    twitter = _by_platform(after)["twitter"]
    assert twitter["status"] == "failed" and "did not confirm" in twitter["errorMessage"]
    assert (twitter["errorCategory"], twitter["errorSource"]) == ("platform_error", "platform")
    failed = late.get("/posts", params={"status": "failed"}).json()["posts"]
    assert [p["_id"] for p in failed] == [alone["_id"]]


# -- LATE: the official SDK's models accept the answers -----------------------------------


def test_late_answers_parse_with_the_official_sdk(box: SandboxServer, late: Api) -> None:
    sdk = pytest.importorskip("late")
    from late.models import AccountsListResponse, PostCreateResponse, PostGetResponse

    listed = late.get("/accounts").json()
    assert listed["hasAnalyticsAccess"] is False
    parsed = AccountsListResponse.model_validate(listed)
    assert {a.platform.value for a in parsed.accounts} >= {"twitter", "youtube"}
    assert all(a.profileId and a.isActive for a in parsed.accounts)

    client = sdk.Late(api_key=LATE, base_url=box.url + "/late/api", max_retries=1)
    via_client = client.accounts.list()
    assert len(via_client.accounts) == 9

    box.set_faults("late", fail_platforms={"linkedin": "auth_expired"},
                   pending_platforms=["threads"])
    created = _late_create(late, ("twitter", "linkedin", "threads")).json()
    post = PostCreateResponse.model_validate(created).post
    assert post is not None and post.platforms is not None
    statuses = {t.platform: t.status for t in post.platforms}
    assert statuses == {"twitter": "published", "linkedin": "failed", "threads": "pending"}
    got = PostGetResponse.model_validate(late.get(f"/posts/{created['post']['_id']}").json())
    assert got.post is not None and got.post.platforms is not None
    linkedin = next(t for t in got.post.platforms if t.platform == "linkedin")
    assert linkedin.errorCategory is not None and linkedin.errorCategory.value == "auth_expired"
