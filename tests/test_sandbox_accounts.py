"""The sandbox's accounts for many tenants under one key: several accounts per platform,
PostForMe accounts tagged with `external_id`, LATE profiles (GET|POST /profiles,
`?profileId=` on accounts and connect), and the request log naming the account of
every create. Over real HTTP against the session sandbox."""

from __future__ import annotations

from typing import Any

import requests

from providers.sandbox import SandboxServer

PFM = "pfm_shared_key_0001"
LATE = "sk_late_shared_key_0001"
T = 5


def _session(key: str) -> requests.Session:
    s = requests.Session()
    s.headers["Authorization"] = f"Bearer {key}"
    return s


def test_postforme_accounts_tagged_and_filtered(sandbox: SandboxServer) -> None:
    sandbox.register_key("postforme", PFM, ["linkedin"])
    a = sandbox.add_account("postforme", PFM, "linkedin", external_id="user-a")
    b = sandbox.add_account("postforme", PFM, "linkedin", external_id="user-b")
    s = _session(PFM)
    listed = s.get(sandbox.postforme_url + "/social-accounts", timeout=T).json()["data"]
    assert len(listed) == 3 and len({x["id"] for x in listed}) == 3
    assert {x["external_id"] for x in listed} == {None, "user-a", "user-b"}
    only_a = s.get(sandbox.postforme_url + "/social-accounts",
                   params={"external_id": "user-a"}, timeout=T).json()["data"]
    assert [x["id"] for x in only_a] == [a["id"]]
    both = s.get(sandbox.postforme_url + "/social-accounts",
                 params={"external_id": "user-a,user-b"}, timeout=T).json()["data"]
    assert {x["id"] for x in both} == {a["id"], b["id"]}
    repeated = s.get(sandbox.postforme_url + "/social-accounts?external_id=user-a"
                     "&external_id=user-b", timeout=T).json()["data"]
    assert {x["id"] for x in repeated} == {a["id"], b["id"]}


def test_postforme_create_logs_its_account(sandbox: SandboxServer) -> None:
    sandbox.register_key("postforme", PFM, [])
    b = sandbox.add_account("postforme", PFM, "linkedin", external_id="user-b")
    resp = _session(PFM).post(sandbox.postforme_url + "/social-posts", timeout=T, json={
        "caption": "hi", "social_accounts": [b["id"]], "external_id": "post-1"})
    assert resp.status_code == 201
    create = [r for r in sandbox.requests("postforme") if r["method"] == "POST"][-1]
    assert create["account_ids"] == [b["id"]] and create["external_id"] == "post-1"
    assert sandbox.created_accounts()["postforme"] == [("post-1", "linkedin", b["id"])]
    assert sandbox.created_targets()["postforme"] == [("post-1", "linkedin")]


def test_postforme_auth_url_records_external_id(sandbox: SandboxServer) -> None:
    sandbox.register_key("postforme", PFM, [])
    resp = _session(PFM).post(sandbox.postforme_url + "/social-accounts/auth-url", timeout=T,
                              json={"platform": "x", "external_id": "user-a",
                                    "redirect_url_override": "https://app.example/cb"})
    assert resp.status_code == 201
    assert "external_id=user-a" in resp.json()["url"]
    assert "app.example" in resp.json()["url"]
    entry = sandbox.requests("postforme")[-1]
    assert entry["external_id"] == "user-a" and entry["redirect_url"] == "https://app.example/cb"


def test_late_profiles_accounts_and_connect(sandbox: SandboxServer) -> None:
    sandbox.register_key("late", LATE, ["twitter"])
    s = _session(LATE)
    base = sandbox.late_url
    created = s.post(base + "/profiles", json={"name": "user-a"}, timeout=T)
    assert created.status_code == 201
    pid = created.json()["profile"]["_id"]
    profiles = s.get(base + "/profiles", timeout=T).json()["profiles"]
    assert [p["name"] for p in profiles] == ["Default", "user-a"]
    assert [p["isDefault"] for p in profiles] == [True, False]
    acc = sandbox.add_account("late", LATE, "twitter", profile="user-a")
    assert acc["profile_id"] == pid
    other = sandbox.add_account("late", LATE, "twitter", profile="user-b")  # new profile
    assert other["profile_id"] not in (pid, profiles[0]["_id"])
    everyone = s.get(base + "/accounts", timeout=T).json()["accounts"]
    assert len([x for x in everyone if x["platform"] == "twitter"]) == 3
    mine = s.get(base + "/accounts", params={"profileId": pid}, timeout=T).json()["accounts"]
    assert [x["_id"] for x in mine] == [acc["id"]]
    connect = s.get(base + "/connect/linkedin", params={"profileId": pid,
                    "redirect_url": "https://app.example/cb"}, timeout=T)
    assert connect.status_code == 200 and f"profileId={pid}" in connect.json()["authUrl"]
    assert sandbox.requests("late")[-1]["profile_id"] == pid


def test_late_create_logs_its_account(sandbox: SandboxServer) -> None:
    sandbox.register_key("late", LATE, [])
    acc = sandbox.add_account("late", LATE, "linkedin", profile="user-a")
    resp = _session(LATE).post(sandbox.late_url + "/posts", timeout=T, headers={
        "x-request-id": "post-2"}, json={"content": "hi", "publishNow": True,
        "platforms": [{"platform": "linkedin", "accountId": acc["id"]}]})
    assert resp.status_code == 201, resp.text
    create = [r for r in sandbox.requests("late") if r["method"] == "POST"][-1]
    assert create["account_ids"] == [acc["id"]]
    assert sandbox.created_accounts()["late"] == [("post-2", "linkedin", acc["id"])]


def test_accounts_over_the_control_api(sandbox: SandboxServer) -> None:
    body: dict[str, Any] = {"provider": "postforme", "key": PFM, "platform": "bluesky",
                            "external_id": "user-c"}
    resp = requests.post(sandbox.url + "/_sandbox/accounts", json=body, timeout=T)
    assert resp.status_code == 201 and resp.json()["external_id"] == "user-c"
    listed = _session(PFM).get(sandbox.postforme_url + "/social-accounts", timeout=T).json()
    assert [x["id"] for x in listed["data"]] == [resp.json()["id"]]
    assert requests.get(sandbox.url + "/_sandbox/created", timeout=T).json() == {
        "postforme": [], "late": []}
