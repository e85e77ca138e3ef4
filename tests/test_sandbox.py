"""The provider sandbox over real HTTP: both APIs, every fault kind, stats and the log.

Later tests, the demo and the benchmark rely on these behaviours, so each one is
pinned here against a started SandboxServer (the session `sandbox` fixture).
"""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from providers.sandbox import SandboxServer

PFM_KEY = "pfm_test_key_ABCD1234"
LATE_KEY = "sk_late_test_key_WXYZ9876"
TIMEOUT = 5


def _future(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()


class Pfm:
    """A tiny PostForMe caller (the real client is tested elsewhere)."""

    def __init__(self, box: SandboxServer, key: str = PFM_KEY) -> None:
        self.base = box.postforme_url
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {key}"

    def get(self, path: str, **kw: Any) -> requests.Response:
        return self.session.get(self.base + path, timeout=kw.pop("timeout", TIMEOUT), **kw)

    def post(self, path: str, **kw: Any) -> requests.Response:
        return self.session.post(self.base + path, timeout=kw.pop("timeout", TIMEOUT), **kw)

    def delete(self, path: str) -> requests.Response:
        return self.session.delete(self.base + path, timeout=TIMEOUT)

    def account(self, platform: str) -> str:
        data = self.get("/social-accounts").json()["data"]
        return next(a["id"] for a in data if a["platform"] == platform)

    def create(
        self,
        caption: str = "hello",
        platforms: tuple[str, ...] = ("x",),
        timeout: float = TIMEOUT,
        **extra: Any,
    ) -> requests.Response:
        accounts = [self.account(p) for p in platforms]
        payload = {"caption": caption, "social_accounts": accounts, **extra}
        return self.post("/social-posts", json=payload, timeout=timeout)


class Late:
    def __init__(self, box: SandboxServer, key: str = LATE_KEY) -> None:
        self.base = box.late_url
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {key}"

    def get(self, path: str, **kw: Any) -> requests.Response:
        return self.session.get(self.base + path, timeout=TIMEOUT, **kw)

    def post(self, path: str, **kw: Any) -> requests.Response:
        return self.session.post(self.base + path, timeout=kw.pop("timeout", TIMEOUT), **kw)

    def delete(self, path: str) -> requests.Response:
        return self.session.delete(self.base + path, timeout=TIMEOUT)

    def account(self, platform: str) -> str:
        accounts = self.get("/accounts").json()["accounts"]
        return next(a["_id"] for a in accounts if a["platform"] == platform)

    def create(
        self,
        content: str = "hello",
        platforms: tuple[str, ...] = ("twitter",),
        request_id: str | None = None,
        timeout: float = TIMEOUT,
        **extra: Any,
    ) -> requests.Response:
        targets = [{"platform": p, "accountId": self.account(p)} for p in platforms]
        headers = {"x-request-id": request_id} if request_id else {}
        payload = {"content": content, "platforms": targets, **extra}
        return self.post("/posts", json=payload, headers=headers, timeout=timeout)


@pytest.fixture
def box(sandbox: object) -> SandboxServer:
    assert isinstance(sandbox, SandboxServer)
    sandbox.register_key("postforme", PFM_KEY)
    sandbox.register_key("late", LATE_KEY)
    return sandbox


@pytest.fixture
def pfm(box: SandboxServer) -> Pfm:
    return Pfm(box)


@pytest.fixture
def late(box: SandboxServer) -> Late:
    return Late(box)


# -- accounts and keys ---------------------------------------------------------------


def test_urls(box: SandboxServer) -> None:
    assert box.url == f"http://127.0.0.1:{box.port}"
    assert box.postforme_url == box.url + "/postforme/v1"
    assert box.late_url == box.url + "/late/api/v1"


def test_postforme_accounts(pfm: Pfm) -> None:
    resp = pfm.get("/social-accounts")
    assert resp.status_code == 200
    data = resp.json()["data"]
    assert sorted(a["platform"] for a in data) == sorted(
        [
            "x",
            "linkedin",
            "instagram",
            "facebook",
            "tiktok",
            "threads",
            "bluesky",
            "youtube",
            "pinterest",
        ]
    )
    assert all(
        a["id"].startswith("spc_") and a["status"] == "connected" and a["username"] for a in data
    )


def test_late_accounts_and_headers(late: Late) -> None:
    resp = late.get("/accounts", headers={"x-request-id": "trace-1"})
    assert resp.status_code == 200
    accounts = resp.json()["accounts"]
    assert len(accounts) == 9 and {a["platform"] for a in accounts} >= {"twitter", "youtube"}
    first = accounts[0]
    assert first["isActive"] is True and first["needsReconnection"] is False
    assert first["profileId"] and first["_id"] and first["username"]
    assert resp.headers["X-Request-Id"] == "trace-1"
    assert int(resp.headers["X-RateLimit-Reset"]) > time.time()
    assert int(resp.headers["X-RateLimit-Limit"]) >= int(resp.headers["X-RateLimit-Remaining"])
    profiles = late.get("/profiles").json()["profiles"]
    assert profiles[0]["_id"] == first["profileId"]


def test_register_key_with_platforms(box: SandboxServer) -> None:
    accounts = box.register_key("late", "sk_only_two_platforms", ["twitter", "linkedin"])
    assert {a["platform"] for a in accounts} == {"twitter", "linkedin"}
    listed = Late(box, "sk_only_two_platforms").get("/accounts").json()["accounts"]
    assert {a["_id"] for a in listed} == {a["id"] for a in accounts}


def test_unknown_missing_and_revoked_keys_answer_401(box: SandboxServer) -> None:
    assert Pfm(box, "pfm_nobody_knows_me").get("/social-accounts").status_code == 401
    assert requests.get(box.postforme_url + "/social-accounts", timeout=TIMEOUT).status_code == 401
    resp = Late(box, "sk_nobody_knows_me").get("/accounts")
    assert resp.status_code == 401
    assert resp.json()["code"] == 401 and resp.json()["type"] == "authentication_error"
    assert "X-Request-Id" in resp.headers

    box.revoke_key("postforme", PFM_KEY)
    body = Pfm(box).get("/social-accounts")
    assert body.status_code == 401 and body.json()["statusCode"] == 401
    box.register_key("postforme", PFM_KEY)  # registering again restores it
    assert Pfm(box).get("/social-accounts").status_code == 200


def test_keys_over_http(box: SandboxServer) -> None:
    resp = requests.post(
        box.url + "/_sandbox/keys",
        json={"provider": "late", "key": "sk_over_http_0001", "platforms": ["bluesky"]},
        timeout=TIMEOUT,
    )
    assert resp.status_code == 201
    assert [a["platform"] for a in resp.json()["accounts"]] == ["bluesky"]
    assert "sk_over_http_0001" not in resp.text
    late = Late(box, "sk_over_http_0001")
    assert [a["platform"] for a in late.get("/accounts").json()["accounts"]] == ["bluesky"]
    resp = requests.post(
        box.url + "/_sandbox/keys/revoke",
        json={"provider": "late", "key": "sk_over_http_0001"},
        timeout=TIMEOUT,
    )
    assert resp.status_code == 200
    assert late.get("/accounts").status_code == 401
    bad = requests.post(
        box.url + "/_sandbox/keys", json={"provider": "nope", "key": "k"}, timeout=TIMEOUT
    )
    assert bad.status_code == 400


def test_accept_any_key() -> None:
    with SandboxServer(accept_any_key=True) as server:
        resp = Pfm(server, "anything_goes_1234").get("/social-accounts")
        assert resp.status_code == 200 and len(resp.json()["data"]) == 9
        assert len(Late(server, "whatever_5678").get("/accounts").json()["accounts"]) == 9
        server.revoke_key("late", "whatever_5678")
        assert Late(server, "whatever_5678").get("/accounts").status_code == 401
        empty = requests.get(
            server.late_url + "/accounts", headers={"Authorization": "Bearer "}, timeout=TIMEOUT
        )
        assert empty.status_code == 401
    with pytest.raises(requests.ConnectionError):
        requests.get(server.url + "/_sandbox/health", timeout=2)


# -- PostForMe posts -------------------------------------------------------------------


def test_postforme_create_get_list_delete(pfm: Pfm) -> None:
    resp = pfm.create(
        "first post",
        ("x", "linkedin"),
        external_id="ours-1",
        media=[{"url": "https://cdn.example/a.jpg"}],
    )
    assert resp.status_code == 201
    post = resp.json()
    assert post["id"].startswith("sp_") and post["status"] == "processing"
    assert post["external_id"] == "ours-1" and post["caption"] == "first post"
    assert [a["platform"] for a in post["social_accounts"]] == ["x", "linkedin"]
    assert post["media"][0]["url"] == "https://cdn.example/a.jpg"
    assert post["scheduled_at"] is None and post["created_at"].endswith("Z")

    got = pfm.get(f"/social-posts/{post['id']}")
    assert got.status_code == 200 and got.json()["id"] == post["id"]
    assert got.json()["status"] in ("processing", "processed")

    listed = pfm.get("/social-posts").json()
    assert [p["id"] for p in listed["data"]] == [post["id"]]
    assert listed["meta"]["total"] == 1

    not_deletable = pfm.delete(f"/social-posts/{post['id']}")
    assert not_deletable.status_code == 400 and not_deletable.json()["statusCode"] == 400

    scheduled = pfm.create("later", ("linkedin",), scheduled_at=_future(3600)).json()
    assert scheduled["status"] == "scheduled" and scheduled["scheduled_at"]
    assert pfm.delete(f"/social-posts/{scheduled['id']}").status_code == 200
    missing = pfm.get(f"/social-posts/{scheduled['id']}")
    assert missing.status_code == 404
    assert set(missing.json()) >= {"statusCode", "message"}


def test_postforme_posts_are_private_to_their_key(box: SandboxServer, pfm: Pfm) -> None:
    post = pfm.create(external_id="mine").json()
    box.register_key("postforme", "pfm_other_key_0002")
    other = Pfm(box, "pfm_other_key_0002")
    assert other.get(f"/social-posts/{post['id']}").status_code == 404
    assert other.get("/social-posts", params={"external_id": "mine"}).json()["data"] == []


def test_postforme_external_id_filter_and_pagination(pfm: Pfm) -> None:
    ids = [pfm.create(f"try {i}", external_id="same-id").json()["id"] for i in range(3)]
    pfm.create("other", external_id="another-id")
    pfm.create("no id")
    found = pfm.get("/social-posts", params={"external_id": "same-id"}).json()
    assert sorted(p["id"] for p in found["data"]) == sorted(ids)
    assert all(p["external_id"] == "same-id" for p in found["data"])
    assert found["meta"]["total"] == 3

    both = pfm.get(
        "/social-posts", params=[("external_id", "same-id"), ("external_id", "another-id")]
    )
    assert both.json()["meta"]["total"] == 4

    page = pfm.get("/social-posts", params={"external_id": "same-id", "limit": 2}).json()
    assert len(page["data"]) == 2 and page["meta"] == {
        "total": 3,
        "offset": 0,
        "limit": 2,
        "next": page["meta"]["next"],
    }
    rest = pfm.session.get(page["meta"]["next"], timeout=TIMEOUT).json()
    assert len(rest["data"]) == 1 and rest["meta"]["next"] is None
    assert {p["id"] for p in page["data"] + rest["data"]} == set(ids)
    assert pfm.get("/social-posts", params={"limit": 101}).status_code == 400
    assert pfm.get("/social-posts", params={"external_id": "nobody"}).json()["data"] == []


def test_postforme_results(pfm: Pfm) -> None:
    post = pfm.create("results please", ("x", "bluesky")).json()
    resp = pfm.get("/social-post-results", params={"post_id": post["id"]})
    assert resp.status_code == 200
    body = resp.json()
    assert body["meta"]["total"] == 2
    by_account = {r["social_account_id"]: r for r in body["data"]}
    assert set(by_account) == {pfm.account("x"), pfm.account("bluesky")}
    for result in body["data"]:
        assert result["success"] is True and result["error"] is None
        assert result["platform_data"]["id"] and result["platform_data"]["url"].startswith(
            "https://"
        )
    assert pfm.get(f"/social-posts/{post['id']}").json()["status"] == "processed"


def test_postforme_media_rules_fail_targets(pfm: Pfm) -> None:
    post = pfm.create("no picture", ("x", "instagram")).json()
    results = pfm.get("/social-post-results", params={"post_id": post["id"]}).json()["data"]
    # as the real results: the account, never the platform, names where each went
    assert all("platform" not in r for r in results)
    outcome = {r["social_account_id"]: r for r in results}
    assert outcome[pfm.account("x")]["success"] is True
    assert outcome[pfm.account("instagram")]["success"] is False
    assert outcome[pfm.account("instagram")]["error"] == (
        "Instagram requires at least one image or video")


def test_postforme_validation_errors(pfm: Pfm) -> None:
    account = pfm.account("x")
    cases = [
        {"social_accounts": [account]},
        {"caption": "no accounts"},
        {"caption": "empty accounts", "social_accounts": []},
        {"caption": "ghost", "social_accounts": ["spc_does_not_exist"]},
        {"caption": "bad date", "social_accounts": [account], "scheduled_at": "tomorrow"},
    ]
    for payload in cases:
        resp = pfm.post("/social-posts", json=payload)
        assert resp.status_code == 400, payload
        body = resp.json()
        assert body["statusCode"] == 400 and body["message"] and body["errors"], body
    assert (
        pfm.post(
            "/social-posts", data=b"{not json", headers={"Content-Type": "application/json"}
        ).status_code
        == 400
    )
    assert pfm.get("/no-such-route").status_code == 404


def test_postforme_auth_url(pfm: Pfm) -> None:
    resp = pfm.post(
        "/social-accounts/auth-url",
        json={"platform": "twitter", "redirect_url": "https://app.example/cb"},
    )
    assert resp.status_code == 201
    assert resp.json()["url"].startswith("http") and resp.json()["platform"] == "x"
    assert pfm.post("/social-accounts/auth-url", json={"platform": "myspace"}).status_code == 400


# -- LATE posts ------------------------------------------------------------------------


def test_late_publish_now_schedule_and_draft(late: Late) -> None:
    resp = late.create("now please", ("twitter", "linkedin"), publishNow=True)
    assert resp.status_code == 201
    body = resp.json()
    assert body["message"]
    post = body["post"]
    assert post["status"] == "published"
    for target in post["platforms"]:
        assert target["status"] == "published" and target["errorMessage"] is None
        assert target["platformPostId"] and target["platformPostUrl"].startswith("https://")
        assert target["accountId"] == late.account(target["platform"])

    scheduled = late.create("later", scheduledFor=_future(3600), timezone="UTC").json()["post"]
    assert scheduled["status"] == "scheduled"
    assert all(t["status"] == "pending" for t in scheduled["platforms"])
    draft = late.create("just a draft").json()["post"]
    assert draft["status"] == "draft"

    assert late.get(f"/posts/{post['_id']}").json()["post"]["_id"] == post["_id"]
    listed = late.get("/posts", params={"status": "scheduled"}).json()
    assert [p["_id"] for p in listed["posts"]] == [scheduled["_id"]]
    assert listed["pagination"]["total"] == 1
    everything = late.get("/posts", params={"page": 1, "limit": 2}).json()
    assert everything["pagination"] == {"page": 1, "limit": 2, "total": 3, "pages": 2}

    assert late.delete(f"/posts/{post['_id']}").status_code == 400
    assert late.delete(f"/posts/{draft['_id']}").status_code == 200
    assert late.delete(f"/posts/{scheduled['_id']}").status_code == 200
    gone = late.get(f"/posts/{draft['_id']}")
    assert gone.status_code == 404 and gone.json()["code"] == 404 and gone.json()["error"]
    assert late.post(f"/posts/{post['_id']}/retry").status_code == 400


def test_late_validation_errors(late: Late) -> None:
    account = late.account("twitter")
    cases: list[dict[str, Any]] = [
        {"platforms": [{"platform": "twitter", "accountId": account}]},
        {"content": "no targets"},
        {
            "content": "wrong platform",
            "platforms": [{"platform": "linkedin", "accountId": account}],
        },
        {"content": "ghost", "platforms": [{"platform": "twitter", "accountId": "0" * 24}]},
        {
            "content": "bad tz",
            "platforms": [{"platform": "twitter", "accountId": account}],
            "scheduledFor": "2030-01-01T09:00:00",
            "timezone": "Mars/Olympus",
        },
    ]
    for payload in cases:
        resp = late.post("/posts", json=payload)
        assert resp.status_code == 400, payload
        assert resp.json()["code"] == 400 and resp.json()["type"] and resp.json()["error"]


def test_late_request_id_replay_is_not_a_new_post(box: SandboxServer, late: Late) -> None:
    first = late.create("idempotent", request_id="req-1", publishNow=True)
    again = late.create("idempotent", request_id="req-1", publishNow=True)
    assert first.status_code == 201 and again.status_code == 200
    assert again.json()["post"]["_id"] == first.json()["post"]["_id"]
    stats = box.stats()["late"]
    assert stats["creates"] == 1 and stats["by_request_id"] == {"req-1": 1}


def test_late_duplicate_content_409(late: Late) -> None:
    first = late.create(
        "same words", ("twitter", "threads"), request_id="a", publishNow=True
    ).json()
    resp = late.create("same words", ("threads",), request_id="b", publishNow=True)
    assert resp.status_code == 409
    body = resp.json()
    assert body["error"] and body["code"] == 409
    assert body["details"] == {
        "accountId": late.account("threads"),
        "platform": "threads",
        "existingPostId": first["post"]["_id"],
    }
    assert (
        late.create("same words", ("linkedin",), request_id="c", publishNow=True).status_code == 201
    )


def test_late_duplicate_window_is_configurable() -> None:
    with SandboxServer(duplicate_window_seconds=0.2) as server:
        server.register_key("late", LATE_KEY)
        late = Late(server)
        assert late.create("twice", publishNow=True).status_code == 201
        assert late.create("twice", publishNow=True).status_code == 409
        time.sleep(0.3)
        assert late.create("twice", publishNow=True).status_code == 201


def test_late_connect(late: Late) -> None:
    resp = late.get(
        "/connect/linkedin", params={"profileId": "p1", "redirect_url": "https://app.example/cb"}
    )
    assert resp.status_code == 200 and resp.json()["authUrl"] and resp.json()["state"]
    assert late.get("/connect/myspace").status_code == 400


def test_scheduled_posts_publish_when_due(pfm: Pfm, late: Late) -> None:
    p = pfm.create("soon", scheduled_at=_future(0.5)).json()
    lp = late.create("soon", scheduledFor=_future(0.5)).json()["post"]
    assert p["status"] == "scheduled" and lp["status"] == "scheduled"
    time.sleep(0.7)
    assert pfm.get(f"/social-posts/{p['id']}").json()["status"] == "processed"
    assert len(pfm.get("/social-post-results", params={"post_id": p["id"]}).json()["data"]) == 1
    assert late.get(f"/posts/{lp['_id']}").json()["post"]["status"] == "published"


# -- media -----------------------------------------------------------------------------


def test_postforme_upload_flow(pfm: Pfm) -> None:
    slot = pfm.post("/media/create-upload-url", json={"content_type": "image/png"})
    assert slot.status_code == 201
    upload, media = slot.json()["upload_url"], slot.json()["media_url"]
    assert requests.get(media, timeout=TIMEOUT).status_code == 404  # nothing uploaded yet
    put = requests.put(
        upload, data=b"\x89PNG fake", headers={"Content-Type": "image/png"}, timeout=TIMEOUT
    )
    assert put.status_code == 200
    got = requests.get(media, timeout=TIMEOUT)
    assert got.content == b"\x89PNG fake" and got.headers["Content-Type"] == "image/png"


def test_late_presign_flow_and_video_detection(late: Late, box: SandboxServer) -> None:
    slot = late.post("/media/presign", json={"filename": "clip.mp4", "contentType": "video/mp4"})
    assert slot.status_code == 200
    upload, public = slot.json()["uploadUrl"], slot.json()["publicUrl"]
    video = requests.get(box.url + "/_sandbox/sample/video.mp4", timeout=TIMEOUT).content
    assert requests.put(
        upload, data=video, headers={"Content-Type": "video/mp4"}, timeout=TIMEOUT
    ).ok
    got = requests.get(public, timeout=TIMEOUT)
    assert got.content == video and got.headers["Content-Type"] == "video/mp4"
    post = late.create(
        "a video", ("youtube",), mediaItems=[{"url": public, "type": "video"}], publishNow=True
    )
    assert post.json()["post"]["status"] == "published"
    no_video = late.create("no video", ("youtube",), publishNow=True).json()["post"]
    assert no_video["status"] == "failed" and no_video["platforms"][0]["errorMessage"]
    assert late.post("/media/presign", json={"filename": "x.jpg"}).status_code == 400


def test_sample_media(box: SandboxServer) -> None:
    def fetch(name: str) -> requests.Response:
        resp = requests.get(f"{box.url}/_sandbox/sample/{name}", timeout=TIMEOUT)
        assert resp.status_code == 200
        return resp

    jpeg = fetch("image.jpg")
    assert jpeg.headers["Content-Type"] == "image/jpeg"
    assert jpeg.content[:3] == b"\xff\xd8\xff" and jpeg.content[-2:] == b"\xff\xd9"
    png = fetch("image.png")
    assert png.headers["Content-Type"] == "image/png" and png.content[:8] == b"\x89PNG\r\n\x1a\n"
    mp4 = fetch("video.mp4")
    assert mp4.headers["Content-Type"] == "video/mp4" and mp4.content[4:8] == b"ftyp"
    assert fetch("text.txt").headers["Content-Type"].startswith("text/plain")
    big = fetch("big.jpg?size=3000000")
    assert len(big.content) == 3_000_000 and big.headers["Content-Length"] == "3000000"
    assert big.headers["Content-Type"] == "image/jpeg" and big.content[:2] == b"\xff\xd8"
    head = requests.head(f"{box.url}/_sandbox/sample/big.jpg?size=123456789", timeout=TIMEOUT)
    assert head.status_code == 200 and head.headers["Content-Length"] == "123456789"
    assert requests.get(f"{box.url}/_sandbox/sample/nope.gif", timeout=TIMEOUT).status_code == 404


# -- faults ----------------------------------------------------------------------------


def test_latency_applies_to_every_route(box: SandboxServer, pfm: Pfm, late: Late) -> None:
    box.set_faults("postforme", latency_ms=200)
    started = time.perf_counter()
    assert pfm.get("/social-accounts").status_code == 200
    assert time.perf_counter() - started >= 0.2
    started = time.perf_counter()
    late.get("/accounts")
    assert time.perf_counter() - started < 0.2  # the other provider is untouched


def test_error_rate(box: SandboxServer, pfm: Pfm, late: Late) -> None:
    box.set_faults("postforme", error_rate=1.0)
    box.set_faults("late", error_rate=1.0, error_status=500)
    resp = pfm.create(external_id="e1")
    assert resp.status_code == 503 and resp.json()["statusCode"] == 503
    lresp = late.create(request_id="r1", publishNow=True)
    assert lresp.status_code == 500 and lresp.json()["code"] == 500
    assert pfm.get("/social-accounts").status_code == 200  # only creates fail
    stats = box.stats()
    assert stats["postforme"]["creates"] == 0 and stats["late"]["creates"] == 0
    assert stats["postforme"]["create_requests"] == 1
    box.set_faults("postforme")  # healthy again
    assert pfm.create(external_id="e1").status_code == 201


def test_rate_limit_headers(box: SandboxServer, pfm: Pfm, late: Late) -> None:
    box.set_faults("postforme", rate_limit_rate=1.0, retry_after=3)
    box.set_faults("late", rate_limit_rate=1.0, retry_after=2)
    resp = pfm.create()
    assert resp.status_code == 429
    assert resp.headers["Retry-After"] == "3"
    assert resp.headers["X-Rate-Limit-Remaining"] == "0"
    assert {"X-Rate-Limit-Limit", "X-Rate-Limit-Reset"} <= set(resp.headers)
    lresp = late.create(publishNow=True)
    assert lresp.status_code == 429 and lresp.headers["Retry-After"] == "2"
    assert lresp.headers["X-RateLimit-Remaining"] == "0"
    assert time.time() < int(lresp.headers["X-RateLimit-Reset"]) <= time.time() + 4
    assert box.stats()["postforme"]["creates"] == 0


def test_hang_after_accepting(box: SandboxServer, pfm: Pfm, late: Late) -> None:
    box.set_faults("postforme", hang_rate=1.0, hang_seconds=3)
    box.set_faults("late", hang_rate=1.0, hang_seconds=3)
    with pytest.raises(requests.exceptions.ReadTimeout):
        pfm.create(external_id="lost-answer", timeout=0.5)
    with pytest.raises(requests.exceptions.ReadTimeout):
        late.create(request_id="lost-too", publishNow=True, timeout=0.5)
    stats = box.stats()
    assert stats["postforme"]["creates"] == 1 and stats["postforme"]["by_external_id"] == {
        "lost-answer": 1
    }
    assert stats["late"]["creates"] == 1 and stats["late"]["by_request_id"] == {"lost-too": 1}
    box.set_faults("postforme")
    box.set_faults("late")
    # The ambiguous outcome is resolvable: the post can be found by our id.
    found = Pfm(box).get("/social-posts", params={"external_id": "lost-answer"}).json()["data"]
    assert len(found) == 1
    replay = Late(box).create(request_id="lost-too", publishNow=True)
    assert replay.status_code == 200 and box.stats()["late"]["creates"] == 1
    hung = [r for r in box.requests("postforme") if r.get("hung")]
    assert hung and hung[0]["status"] is None and hung[0]["external_id"] == "lost-answer"


def test_hang_closes_the_connection_without_an_answer(box: SandboxServer, pfm: Pfm) -> None:
    box.push_responses("postforme", [{"hang": True, "hang_seconds": 0.3}])
    with pytest.raises(requests.exceptions.ConnectionError):
        pfm.create(external_id="silent", timeout=5)
    assert box.stats()["postforme"]["by_external_id"] == {"silent": 1}
    assert pfm.create(external_id="next").status_code == 201


def test_pushed_responses_in_order(box: SandboxServer, pfm: Pfm) -> None:
    pending = box.push_responses(
        "postforme",
        [
            {"status": 503},
            {"status": 429, "retry_after": 2},
            {"hang": True, "hang_seconds": 0.2},
            {"status": 401},
        ],
    )
    assert pending == 4
    assert pfm.create().status_code == 503
    limited = pfm.create()
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "2"
    with pytest.raises(requests.exceptions.ConnectionError):
        pfm.create(external_id="hung")
    unauthorized = pfm.create()
    assert unauthorized.status_code == 401
    assert pfm.create().status_code == 201  # the queue is empty: healthy again
    assert box.stats()["postforme"]["creates"] == 2  # the hung one and the last one
    assert box.pending_responses("postforme") == 0


def test_pushed_responses_over_http(box: SandboxServer, late: Late) -> None:
    resp = requests.post(
        box.url + "/_sandbox/responses",
        json={"provider": "late", "responses": [{"status": 502}, {"status": 201}]},
        timeout=TIMEOUT,
    )
    assert resp.status_code == 200 and resp.json() == {"pending": 2}
    assert requests.get(box.url + "/_sandbox/responses", timeout=TIMEOUT).json()["late"] == 2
    assert late.create("one", publishNow=True).status_code == 502
    assert late.create("two", publishNow=True).status_code == 201
    bad = requests.post(
        box.url + "/_sandbox/responses",
        json={"provider": "late", "responses": [{"nonsense": 1}]},
        timeout=TIMEOUT,
    )
    assert bad.status_code == 400


def test_random_faults_are_reproducible_with_a_seed(box: SandboxServer) -> None:
    def run() -> list[int]:
        box.register_key("postforme", PFM_KEY)
        box.set_faults("postforme", error_rate=0.5)
        client = Pfm(box)
        account = client.account("x")
        return [
            client.post(
                "/social-posts", json={"caption": f"c{i}", "social_accounts": [account]}
            ).status_code
            for i in range(30)
        ]

    box.seed(1234)
    first = run()
    box.reset()
    second = run()
    assert first == second
    assert set(first) == {201, 503}
    box.seed(None)


def test_faults_over_http(box: SandboxServer) -> None:
    resp = requests.post(
        box.url + "/_sandbox/faults",
        json={
            "provider": "late",
            "latency_ms": 5,
            "missing_platforms": ["tiktok"],
            "seed_shapes": False,
        },
        timeout=TIMEOUT,
    )
    assert resp.status_code == 200 and resp.json()["latency_ms"] == 5
    current = requests.get(box.url + "/_sandbox/faults", timeout=TIMEOUT).json()
    assert current["late"]["missing_platforms"] == ["tiktok"]
    assert current["postforme"]["error_rate"] == 0
    bad = requests.post(
        box.url + "/_sandbox/faults", json={"provider": "late", "bogus": 1}, timeout=TIMEOUT
    )
    assert bad.status_code == 400
    out_of_range = requests.post(
        box.url + "/_sandbox/faults", json={"provider": "late", "error_rate": 7}, timeout=TIMEOUT
    )
    assert out_of_range.status_code == 400
    with pytest.raises(ValueError):
        box.set_faults("late", hang_rate=-1)


def test_missing_platforms(box: SandboxServer, pfm: Pfm, late: Late) -> None:
    instagram = pfm.account("instagram")
    box.set_faults("postforme", missing_platforms=["instagram", "x"])
    box.set_faults("late", missing_platforms=["tiktok"])
    platforms = {a["platform"] for a in pfm.get("/social-accounts").json()["data"]}
    assert "instagram" not in platforms and "x" not in platforms and len(platforms) == 7
    box.register_key("postforme", "pfm_second_key_0003")
    assert "instagram" not in {
        a["platform"]
        for a in Pfm(box, "pfm_second_key_0003").get("/social-accounts").json()["data"]
    }
    assert "tiktok" not in {a["platform"] for a in late.get("/accounts").json()["accounts"]}
    resp = pfm.post("/social-posts", json={"caption": "c", "social_accounts": [instagram]})
    assert resp.status_code == 400


def test_fail_platforms(box: SandboxServer, pfm: Pfm, late: Late) -> None:
    box.set_faults("postforme", fail_platforms=["linkedin"])
    box.set_faults("late", fail_platforms=["linkedin"])
    post = pfm.create("partly", ("x", "linkedin")).json()
    results = pfm.get("/social-post-results", params={"post_id": post["id"]}).json()["data"]
    assert {r["social_account_id"]: r["success"] for r in results} == {
        pfm.account("x"): True, pfm.account("linkedin"): False}
    lpost = late.create("partly", ("twitter", "linkedin"), publishNow=True).json()["post"]
    assert lpost["status"] == "partial"
    box.set_faults("late")
    retried = late.post(f"/posts/{lpost['_id']}/retry")
    assert retried.status_code == 200 and retried.json()["post"]["status"] == "published"


def test_seed_shapes(box: SandboxServer, pfm: Pfm) -> None:
    box.set_faults("postforme", seed_shapes=True)
    resp = pfm.create("seed style", external_id="s1")
    assert resp.status_code == 200
    assert resp.json()["data"]["id"].startswith("sp_")
    auth = pfm.post(
        "/social-accounts/auth-url", json={"platform": "linkedin", "redirect_url": "https://a/cb"}
    )
    assert auth.status_code == 200 and auth.json()["data"]["auth_url"].startswith("http")


# -- observation -----------------------------------------------------------------------


def test_stats_and_request_log(box: SandboxServer, pfm: Pfm, late: Late) -> None:
    pfm.create(external_id="ext-9")
    late.create("logged", request_id="rid-9", publishNow=True)
    Pfm(box, "pfm_unknown_key_7777").get("/social-accounts")
    stats = box.stats()
    assert stats["postforme"]["creates"] == 1 and stats["postforme"]["by_external_id"] == {
        "ext-9": 1
    }
    assert stats["late"]["creates"] == 1 and stats["late"]["by_request_id"] == {"rid-9": 1}
    assert stats["postforme"]["requests"] >= 3 and stats["late"]["requests"] >= 2
    assert requests.get(box.url + "/_sandbox/stats", timeout=TIMEOUT).json() == box.stats()

    log = box.requests()
    assert all(
        set(e) >= {"provider", "method", "path", "status", "at", "auth_key_hint"} for e in log
    )
    assert [e["at"] for e in log] == sorted(e["at"] for e in log)
    creates = [
        e for e in log if e["method"] == "POST" and e["path"] == "/postforme/v1/social-posts"
    ]
    assert creates[0]["external_id"] == "ext-9" and creates[0]["status"] == 201
    assert creates[0]["auth_key_hint"] == PFM_KEY[-4:]
    late_log = box.requests("late")
    assert late_log and all(e["provider"] == "late" for e in late_log)
    assert any(e["request_id"] == "rid-9" and e["status"] == 201 for e in late_log)
    assert any(e["status"] == 401 and e["auth_key_hint"] == "7777" for e in log)
    over_http = requests.get(
        box.url + "/_sandbox/requests", params={"provider": "late"}, timeout=TIMEOUT
    )
    assert over_http.json() == late_log

    everything = json.dumps([box.stats(), box.requests(), box.get_faults()])
    for secret in (PFM_KEY, LATE_KEY, "pfm_unknown_key_7777"):
        assert secret not in everything


def test_created_targets_name_each_platform_a_post_went_to(
    box: SandboxServer, pfm: Pfm, late: Late
) -> None:
    assert pfm.create(platforms=("x", "linkedin"), external_id="p1-s0").status_code == 201
    assert late.create(platforms=("bluesky",), request_id="p1-s1").status_code == 201
    late.create(platforms=("bluesky",), request_id="p1-s1")  # a replay creates nothing
    box.set_faults("postforme", error_rate=1.0)
    assert pfm.create(platforms=("threads",), external_id="p2-s0").status_code == 503
    created = box.created_targets()
    assert sorted(created["postforme"]) == [("p1-s0", "linkedin"), ("p1-s0", "twitter")]
    assert created["late"] == [("p1-s1", "bluesky")]


def test_reset_forgets_everything(box: SandboxServer, pfm: Pfm) -> None:
    pfm.create(external_id="before")
    box.set_faults("postforme", error_rate=1.0)
    box.push_responses("late", [{"status": 503}])
    box.reset()
    assert box.stats()["postforme"] == {
        "requests": 0,
        "create_requests": 0,
        "creates": 0,
        "by_external_id": {},
    }
    assert box.requests() == []
    assert box.get_faults()["postforme"]["error_rate"] == 0
    assert box.pending_responses("late") == 0
    assert pfm.get("/social-accounts").status_code == 401  # keys are gone too
    assert requests.post(box.url + "/_sandbox/reset", timeout=TIMEOUT).status_code == 200


# -- issue 10: answers lost after the post is stored ------------------------------------


def _creates(box: SandboxServer, provider: str) -> list[dict[str, Any]]:
    """The logged create requests that stored a post."""
    return [e for e in box.requests(provider) if e["method"] == "POST" and e.get("stored")]


def _poll(probe: Any, within: float = 3.0) -> Any:
    """The first truthy value `probe()` gives within `within` seconds (else the last)."""
    deadline = time.time() + within
    value = probe()
    while not value and time.time() < deadline:
        time.sleep(0.02)
        value = probe()
    return value


@pytest.mark.parametrize("status", [500, 502, 504])
def test_create_then_error_rate_stores_the_post(
    box: SandboxServer, pfm: Pfm, late: Late, status: int
) -> None:
    box.set_faults("postforme", create_then_error_rate=1.0, create_then_error_status=status)
    box.set_faults("late", create_then_error_rate=1.0, create_then_error_status=status)
    resp = pfm.create("stored anyway", ("x", "linkedin"), external_id="cte-1")
    assert resp.status_code == status and resp.json()["statusCode"] == status
    lresp = late.create("stored anyway", request_id="cte-r1", publishNow=True)
    assert lresp.status_code == status and lresp.json()["code"] == status
    assert lresp.json()["type"] == "api_error"

    stats = box.stats()
    assert stats["postforme"]["creates"] == 1 and stats["postforme"]["by_external_id"] == {
        "cte-1": 1
    }
    assert stats["late"]["creates"] == 1 and stats["late"]["by_request_id"] == {"cte-r1": 1}
    created = box.created_targets()
    assert sorted(created["postforme"]) == [("cte-1", "linkedin"), ("cte-1", "twitter")]
    assert created["late"] == [("cte-r1", "twitter")]

    # Findable exactly as a normal create, and it published.
    found = pfm.get("/social-posts", params={"external_id": "cte-1"}).json()["data"]
    assert len(found) == 1 and found[0]["status"] == "processed"
    results = pfm.get("/social-post-results", params={"post_id": found[0]["id"]}).json()
    assert results["meta"]["total"] == 2 and all(r["success"] for r in results["data"])
    posts = late.get("/posts").json()["posts"]
    assert len(posts) == 1 and posts[0]["status"] == "published"
    assert late.get(f"/posts/{posts[0]['_id']}").json()["post"]["content"] == "stored anyway"

    (logged,) = _creates(box, "postforme")
    assert logged["status"] == status and logged["answered_instead_of"] == 201
    assert logged["post_id"] == found[0]["id"]
    (late_logged,) = _creates(box, "late")
    assert late_logged["status"] == status and late_logged["post_id"] == posts[0]["_id"]


def test_create_then_error_status_must_be_5xx(box: SandboxServer) -> None:
    with pytest.raises(ValueError):
        box.set_faults("postforme", create_then_error_status=404)
    with pytest.raises(ValueError):
        box.push_responses("late", [{"create_then_status": 429}])
    with pytest.raises(ValueError):
        box.push_responses("late", [{"create_then_status": 502, "status": 502}])


def test_create_then_status_pushed_once(box: SandboxServer, pfm: Pfm, late: Late) -> None:
    box.push_responses("postforme", [{"create_then_status": 504}])
    box.push_responses("late", [{"create_then_status": 500, "message": "worker crashed"}])
    assert pfm.create(external_id="once").status_code == 504
    lresp = late.create("one shot", request_id="once-r", publishNow=True)
    assert lresp.status_code == 500 and lresp.json()["error"] == "worker crashed"
    assert pfm.create(external_id="once").status_code == 201  # a blind resend: a second post
    found = pfm.get("/social-posts", params={"external_id": "once"}).json()["data"]
    assert len(found) == 2  # external_id is not unique: look before any resend
    assert box.stats()["postforme"]["by_external_id"] == {"once": 2}
    # LATE's x-request-id replay finds the post the 500 hid.
    replay = late.create("one shot", request_id="once-r", publishNow=True)
    assert replay.status_code == 200 and box.stats()["late"]["creates"] == 1
    assert [s for s in (e["status"] for e in box.requests("late") if e["method"] == "POST")] == [
        500,
        200,
    ]


def test_create_then_error_over_http(box: SandboxServer, late: Late) -> None:
    resp = requests.post(
        box.url + "/_sandbox/responses",
        json={"provider": "late", "responses": [{"create_then_status": 502}]},
        timeout=TIMEOUT,
    )
    assert resp.status_code == 200 and resp.json() == {"pending": 1}
    assert late.create("over http", publishNow=True).status_code == 502
    assert box.stats()["late"]["creates"] == 1


def test_refused_create_is_answered_as_is_under_create_then_error(
    box: SandboxServer, pfm: Pfm
) -> None:
    """Nothing stored, nothing to lose: a 400 stays a 400 (the entry is used up)."""
    box.push_responses("postforme", [{"create_then_status": 502}])
    resp = pfm.post("/social-posts", json={"caption": "no accounts"})
    assert resp.status_code == 400 and box.pending_responses("postforme") == 0
    assert box.stats()["postforme"]["creates"] == 0


def test_hang_stores_the_post_and_cuts_at_once_with_zero_seconds(
    box: SandboxServer, pfm: Pfm, late: Late
) -> None:
    """`hang` already stores the post; hang_seconds=0 is a cut connection, no answer."""
    box.push_responses("postforme", [{"hang": True, "hang_seconds": 0}])
    box.push_responses("late", [{"hang": True, "hang_seconds": 0}])
    started = time.perf_counter()
    with pytest.raises(requests.exceptions.ConnectionError):
        pfm.create(external_id="cut", timeout=5)
    with pytest.raises(requests.exceptions.ConnectionError):
        late.create("cut", request_id="cut-r", publishNow=True, timeout=5)
    assert time.perf_counter() - started < 2
    assert len(pfm.get("/social-posts", params={"external_id": "cut"}).json()["data"]) == 1
    assert late.get("/posts").json()["pagination"]["total"] == 1
    assert box.created_targets() == {
        "postforme": [("cut", "twitter")],
        "late": [("cut-r", "twitter")],
    }
    for provider in ("postforme", "late"):
        (logged,) = _creates(box, provider)
        assert logged["hung"] is True and logged["status"] is None


# -- issue 10: a slow create -----------------------------------------------------------


def test_slow_create_is_visible_before_its_answer(box: SandboxServer, pfm: Pfm) -> None:
    box.push_responses("postforme", [{"delay_seconds": 1.5}])
    account = pfm.account("x")
    done: dict[str, Any] = {}

    def send() -> None:
        started = time.perf_counter()
        payload = {"caption": "slow", "social_accounts": [account], "external_id": "slow-1"}
        done["resp"] = Pfm(box).post("/social-posts", json=payload)
        done["took"] = time.perf_counter() - started

    sender = threading.Thread(target=send)
    sender.start()
    found = _poll(lambda: pfm.get("/social-posts", params={"external_id": "slow-1"}).json()["data"])
    assert len(found) == 1 and "resp" not in done  # stored, still unanswered
    sender.join(timeout=5)
    assert done["resp"].status_code == 201 and done["took"] >= 1.4
    assert done["resp"].json()["id"] == found[0]["id"]
    (logged,) = _creates(box, "postforme")
    assert logged["delayed_seconds"] == 1.5 and logged["status"] == 201


def test_create_delay_setting_and_late_replay_meanwhile(box: SandboxServer, late: Late) -> None:
    box.set_faults("late", create_delay_seconds=1.0)
    account = late.account("twitter")
    done: dict[str, Any] = {}

    def send() -> None:
        payload = {"content": "slow", "platforms": [{"platform": "twitter", "accountId": account}]}
        done["resp"] = Late(box).post(
            "/posts", json={**payload, "publishNow": True}, headers={"x-request-id": "slow-r"}
        )

    sender = threading.Thread(target=send)
    sender.start()
    posts = _poll(lambda: late.get("/posts").json()["posts"])
    assert len(posts) == 1 and "resp" not in done
    box.set_faults("late")  # the second try answers at once
    replay = late.create("slow", request_id="slow-r", publishNow=True)
    assert replay.status_code == 200 and replay.json()["post"]["_id"] == posts[0]["_id"]
    sender.join(timeout=5)
    assert done["resp"].status_code == 201
    assert box.stats()["late"]["creates"] == 1


def test_slow_then_error(box: SandboxServer, pfm: Pfm) -> None:
    """A gateway timing out on a slow create: stored, answered 504 late."""
    box.push_responses("postforme", [{"create_then_status": 504, "delay_seconds": 0.4}])
    started = time.perf_counter()
    assert pfm.create(external_id="gw").status_code == 504
    assert time.perf_counter() - started >= 0.4
    assert box.stats()["postforme"]["by_external_id"] == {"gw": 1}
    with pytest.raises(ValueError):
        box.push_responses("postforme", [{"status": 503, "delay_seconds": 1}])


def test_reset_releases_a_delayed_answer(box: SandboxServer, pfm: Pfm) -> None:
    box.push_responses("postforme", [{"delay_seconds": 30}])
    account = pfm.account("x")
    done: dict[str, Any] = {}
    payload = {"caption": "held", "social_accounts": [account]}
    sender = threading.Thread(
        target=lambda: done.update(resp=pfm.post("/social-posts", json=payload, timeout=10))
    )
    started = time.perf_counter()
    sender.start()
    _poll(lambda: _creates(box, "postforme"))
    box.reset()
    sender.join(timeout=10)
    assert done["resp"].status_code == 201 and time.perf_counter() - started < 5


# -- issue 10: PostForMe refuses local media URLs --------------------------------------

LOCAL_MEDIA = [
    "http://localhost/a.jpg",
    "http://LOCALHOST:8900/a.jpg",
    "https://cdn.localhost/a.jpg",
    "http://127.0.0.1:8900/_sandbox/sample/image.jpg",
    "http://[::1]/a.jpg",
    "http://10.0.0.7/a.jpg",
    "https://93.184.216.34/a.jpg",
    "ftp://cdn.example/a.jpg",
]


@pytest.mark.parametrize("url", LOCAL_MEDIA)
def test_postforme_refuse_local_media_fault(box: SandboxServer, pfm: Pfm, url: str) -> None:
    assert pfm.create(media=[{"url": url}]).status_code == 201  # off by default
    box.set_faults("postforme", refuse_local_media=True)
    resp = pfm.create(media=[{"url": url}], external_id="local")
    assert resp.status_code == 400
    body = resp.json()
    assert body["statusCode"] == 400 and body["error"] == "Bad Request" and body["message"]
    assert len(body["errors"]) == 1 and body["errors"][0].startswith("media[0].url")
    assert box.stats()["postforme"]["by_external_id"] == {}
    public = pfm.create(media=[{"url": "https://cdn.example.com/a.jpg"}])
    assert public.status_code == 201


def test_postforme_refuse_local_media_checks_overrides_and_thumbnails(
    box: SandboxServer, pfm: Pfm
) -> None:
    box.set_faults("postforme", refuse_local_media=True)
    resp = pfm.create(
        media=[{"url": "https://cdn.example/v.mp4", "thumbnail_url": "http://127.0.0.1/t.jpg"}],
        platform_configurations={"x": {"media": [{"url": "http://localhost/x.jpg"}]}},
        account_configurations=[
            {"social_account_id": pfm.account("x"), "configuration": {"media": [{"url": "x"}]}}
        ],
    )
    assert resp.status_code == 400
    errors = resp.json()["errors"]
    assert [e.split(" ", 1)[0] for e in errors] == [
        "media[0].thumbnail_url",
        "platform_configurations.x.media[0].url",
        "account_configurations[0].configuration.media[0].url",
    ]


def test_postforme_refuse_local_media_constructor_survives_reset() -> None:
    with SandboxServer(postforme_refuse_local_media=True) as server:
        server.register_key("postforme", PFM_KEY)
        local = f"{server.url}/_sandbox/sample/image.jpg"
        assert Pfm(server).create(media=[{"url": local}]).status_code == 400
        server.set_faults("postforme", error_rate=0)
        server.reset()
        server.register_key("postforme", PFM_KEY)
        assert Pfm(server).create(media=[{"url": local}]).status_code == 400
        assert Pfm(server).create(media=[{"url": "https://cdn.example/a.png"}]).status_code == 201


def test_provider_only_faults_are_refused_on_the_other(box: SandboxServer) -> None:
    with pytest.raises(ValueError):
        box.set_faults("late", refuse_local_media=True)
    with pytest.raises(ValueError):
        box.set_faults("postforme", plan_limit_rate=0.5)
    bad = requests.post(
        box.url + "/_sandbox/faults",
        json={"provider": "late", "refuse_local_media": True},
        timeout=TIMEOUT,
    )
    assert bad.status_code == 400


# -- issue 10: LATE 403 for plan limits -------------------------------------------------


def test_late_plan_limit_403(box: SandboxServer, late: Late) -> None:
    box.push_responses("late", [{"status": 403}])
    resp = late.create("over the plan", request_id="plan-1", publishNow=True)
    assert resp.status_code == 403
    body = resp.json()
    assert body["type"] == "permission_error" and body["code"] == 403
    assert body["error"].startswith("Plan limit reached: ")
    assert "X-Request-Id" in resp.headers
    assert late.get("/accounts").status_code == 200  # the key is fine
    assert box.stats()["late"]["creates"] == 0

    box.set_faults("late", plan_limit_rate=1.0)
    again = late.create("over the plan", request_id="plan-2", publishNow=True)
    assert again.status_code == 403 and again.json()["type"] == "permission_error"
    box.set_faults("late")
    box.push_responses("late", [{"status": 403, "message": "Feature not available on your plan"}])
    feature = late.create("restricted", publishNow=True).json()
    assert feature["error"] == "Feature not available on your plan"
    assert feature["type"] == "permission_error"
    box.push_responses("late", [{"status": 401}])
    unauthorized = late.create("bad key", publishNow=True).json()
    assert unauthorized["type"] == "authentication_error" and unauthorized["code"] == 401
    assert box.stats()["late"]["creates"] == 0


def test_plan_limit_rate_over_http_and_in_snapshot(box: SandboxServer) -> None:
    resp = requests.post(
        box.url + "/_sandbox/faults",
        json={"provider": "late", "plan_limit_rate": "0.25", "create_delay_seconds": "0.5"},
        timeout=TIMEOUT,
    )
    assert resp.status_code == 200
    assert resp.json()["plan_limit_rate"] == 0.25 and resp.json()["create_delay_seconds"] == 0.5
    snapshot = box.get_faults()
    assert snapshot["postforme"]["create_then_error_rate"] == 0
    assert snapshot["postforme"]["create_then_error_status"] == 502
    assert snapshot["postforme"]["refuse_local_media"] is False


# -- issue 10: which account each create went to ----------------------------------------


def test_request_log_names_accounts_and_platforms_of_each_create(
    box: SandboxServer, pfm: Pfm, late: Late
) -> None:
    pfm.create("two", ("x", "linkedin"), external_id="log-1")
    box.push_responses("postforme", [{"status": 503}])
    pfm.create("refused", ("bluesky",), external_id="log-2")
    late.create("three", ("twitter", "threads", "bluesky"), publishNow=True)
    box.push_responses("late", [{"create_then_status": 502}])
    late.create("lost answer", ("bluesky",), publishNow=True)

    pfm_creates = [e for e in box.requests("postforme") if e["method"] == "POST"]
    assert [e["platforms"] for e in pfm_creates] == [["twitter", "linkedin"], ["bluesky"]]
    assert pfm_creates[0]["account_ids"] == [pfm.account("x"), pfm.account("linkedin")]
    assert pfm_creates[1]["account_ids"] == [pfm.account("bluesky")]
    assert [e["stored"] for e in pfm_creates] == [True, False]
    assert [e["status"] for e in pfm_creates] == [201, 503]

    late_creates = [e for e in box.requests("late") if e["method"] == "POST"]
    assert late_creates[0]["platforms"] == ["twitter", "threads", "bluesky"]
    assert late_creates[0]["account_ids"] == [
        late.account(p) for p in ("twitter", "threads", "bluesky")
    ]
    assert late_creates[1]["account_ids"] == [late.account("bluesky")]
    assert [e["stored"] for e in late_creates] == [True, True]

    # "How many creates per platform, on which account": count the stored ones.
    stored_targets = [
        (e["provider"], platform, account)
        for e in box.requests()
        if e.get("stored")
        for account, platform in zip(e["account_ids"], e["platforms"], strict=True)
    ]
    assert sorted(stored_targets) == sorted(
        [
            ("postforme", "twitter", pfm.account("x")),
            ("postforme", "linkedin", pfm.account("linkedin")),
            ("late", "twitter", late.account("twitter")),
            ("late", "threads", late.account("threads")),
            ("late", "bluesky", late.account("bluesky")),
            ("late", "bluesky", late.account("bluesky")),
        ]
    )


def test_request_log_targets_of_unknown_accounts(box: SandboxServer, pfm: Pfm) -> None:
    pfm.post("/social-posts", json={"caption": "c", "social_accounts": ["spc_ghost"]})
    (entry,) = [e for e in box.requests("postforme") if e["method"] == "POST"]
    assert entry["account_ids"] == ["spc_ghost"] and entry["platforms"] == [None]
    assert entry["status"] == 400 and entry["stored"] is False


# -- the CLI stays in step with the faults ----------------------------------------------


def test_cli_help_lists_every_fault_field() -> None:
    from dataclasses import fields

    from click.testing import CliRunner

    from providers.sandbox.faults import FaultSpec
    from worker.commands.sandbox import sandbox

    result = CliRunner().invoke(sandbox, ["--help"])
    assert result.exit_code == 0
    for field in fields(FaultSpec):
        assert f"{field.name}=" in result.output, field.name
    for key in ("create_then_status", "delay_seconds", "hang_seconds"):
        assert f'"{key}"' in result.output
    assert "--postforme-refuse-local-media" in result.output
    wrong = CliRunner().invoke(sandbox, ["--fault", "late:refuse_local_media=true"])
    assert wrong.exit_code != 0 and "postforme fault" in wrong.output
