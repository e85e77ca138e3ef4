"""The sandbox sends webhooks as the real services do (shared/docs/providers.md):
PostForMe with its raw secret in a header and up to 8 quick tries; LATE signed with an
HMAC of the raw body, the same event id on every retry, webhook field names (`id`,
`publishedUrl`, `error`). Over real HTTP: a stdlib receiver on loopback gets them."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests

from providers.sandbox import SandboxServer
from tests.stack import wait_for

PFM = "pfm_hooks_key_0001"
LATE = "sk_late_hooks_key_0001"
T = 5


class Receiver:
    """A loopback endpoint that keeps every request and answers `status` (a list: one
    status per request, the last repeated)."""

    def __init__(self) -> None:
        self.got: list[dict[str, Any]] = []
        self.statuses = [200]
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                outer.got.append({"headers": dict(self.headers), "body": body})
                status = outer.statuses[min(len(outer.got), len(outer.statuses)) - 1]
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.server.shutdown()


def _post(url: str, key: str, body: dict[str, Any]) -> requests.Response:
    return requests.post(url, json=body, headers={"Authorization": f"Bearer {key}"}, timeout=T)


def test_postforme_sends_each_result_with_its_secret_and_retries_quickly(
        sandbox: SandboxServer, receiver: Receiver) -> None:
    accounts = sandbox.register_key("postforme", PFM, ["twitter", "instagram"])
    made = _post(sandbox.postforme_url + "/webhooks", PFM,
                 {"url": receiver.url, "event_types": ["social.post.result.created"]})
    assert made.status_code == 201
    secret = made.json()["secret"]
    assert secret
    sandbox.set_webhook_behaviour("postforme", backoff_seconds=0.05)
    receiver.statuses = [500, 503, 200]  # the first two tries fail: the third lands
    post = _post(sandbox.postforme_url + "/social-posts", PFM, {
        "caption": "hi", "social_accounts": [accounts[0]["id"]]}).json()
    wait_for(lambda: len(receiver.got) >= 3, 10, "three tries")
    bodies = [json.loads(g["body"]) for g in receiver.got]
    assert all(g["headers"]["Post-For-Me-Webhook-Secret"] == secret for g in receiver.got)
    assert {b["event_type"] for b in bodies} == {"social.post.result.created"}
    assert {b["data"]["id"] for b in bodies} == {bodies[0]["data"]["id"]}  # one result, 3 tries
    assert bodies[0]["data"]["post_id"] == post["id"]
    assert bodies[0]["data"]["success"] is True
    tries = sandbox.webhook_deliveries("postforme")
    assert [t["status"] for t in tries] == [500, 503, 200]


def test_postforme_gives_up_after_its_tries(sandbox: SandboxServer,
                                             receiver: Receiver) -> None:
    accounts = sandbox.register_key("postforme", PFM, ["twitter"])
    _post(sandbox.postforme_url + "/webhooks", PFM, {"url": receiver.url})
    sandbox.set_webhook_behaviour("postforme", attempts=3, backoff_seconds=0.02)
    receiver.statuses = [500]
    _post(sandbox.postforme_url + "/social-posts", PFM,
          {"caption": "hi", "social_accounts": [accounts[0]["id"]]})
    wait_for(lambda: len(sandbox.webhook_deliveries("postforme")) >= 3, 10, "three tries")
    time.sleep(0.5)  # a fourth try would have come by now (backoff 0.02-0.08 s)
    assert len(receiver.got) == 3


def test_late_signs_the_raw_body_and_keeps_the_event_id_on_retries(
        sandbox: SandboxServer, receiver: Receiver) -> None:
    accounts = sandbox.register_key("late", LATE, ["twitter"])
    made = _post(sandbox.late_url + "/webhooks/settings", LATE, {
        "name": "ours", "url": receiver.url, "secret": "s3cret",
        "events": ["post.platform.published", "post.platform.failed"]})
    assert made.status_code == 200 and "secret" not in made.json()["webhook"]
    sandbox.set_webhook_behaviour("late", backoff_seconds=0.05)
    receiver.statuses = [502, 200]
    created = _post(sandbox.late_url + "/posts", LATE, {
        "content": "hello", "publishNow": True,
        "platforms": [{"platform": "twitter", "accountId": accounts[0]["id"]}]}).json()
    wait_for(lambda: len(receiver.got) >= 2, 10, "two tries")
    first, second = receiver.got[:2]
    assert first["body"] == second["body"]
    for got in (first, second):
        headers = got["headers"]
        want = hmac.new(b"s3cret", got["body"], hashlib.sha256).hexdigest()
        assert headers["X-Zernio-Signature"] == want == headers["X-Late-Signature"]
        assert headers["X-Zernio-Event"] == "post.platform.published"
    assert first["headers"]["X-Zernio-Event-Id"] == second["headers"]["X-Zernio-Event-Id"]
    body = json.loads(first["body"])
    assert body["id"] == first["headers"]["X-Zernio-Event-Id"]
    assert body["post"]["id"] == created["post"]["_id"] and "_id" not in body["post"]
    platform = body["platform"]
    assert platform["status"] == "published" and platform["publishedUrl"]
    assert "platformPostUrl" not in platform and "errorMessage" not in platform


def test_late_sends_a_later_failure_when_a_pending_target_fails(
        sandbox: SandboxServer, receiver: Receiver) -> None:
    accounts = sandbox.register_key("late", LATE, ["instagram"])
    _post(sandbox.late_url + "/webhooks/settings", LATE, {"name": "x", "url": receiver.url})
    sandbox.set_faults("late", pending_platforms=["instagram"], pending_seconds=0.5)
    _post(sandbox.late_url + "/posts", LATE, {  # instagram without media: refused later
        "content": "no media", "publishNow": True,
        "platforms": [{"platform": "instagram", "accountId": accounts[0]["id"]}]})
    wait_for(lambda: receiver.got, 10, "the failure event")
    body = json.loads(receiver.got[0]["body"])
    assert body["event"] == "post.platform.failed"
    assert "X-Zernio-Signature" not in receiver.got[0]["headers"]  # no secret: unsigned
    assert body["platform"]["status"] == "failed" and "requires" in body["platform"]["error"]


def test_behaviour_is_a_setting_kept_across_resets_and_reachable_over_http() -> None:
    with SandboxServer(webhook_behaviour={"postforme": {"attempts": 2}}) as box:
        assert box.webhooks()["behaviour"]["postforme"]["attempts"] == 2
        answer = requests.post(box.url + "/_sandbox/webhooks", timeout=T,
                               json={"provider": "late", "timeout_seconds": 3})
        assert answer.json()["behaviour"]["late"]["timeout_seconds"] == 3
        box.reset()
        behaviour = box.webhooks()["behaviour"]
        assert behaviour["postforme"]["attempts"] == 2  # the constructor's stays
        assert behaviour["late"]["timeout_seconds"] == 10  # the real service's again
        bad = requests.post(box.url + "/_sandbox/webhooks", timeout=T,
                            json={"provider": "late", "attempts": 0})
        assert bad.status_code == 400 and "attempts" in bad.json()["error"]
