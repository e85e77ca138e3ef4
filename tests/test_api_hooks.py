"""Provider webhooks in and /metrics (issue 14, items 4 and 5), end to end: a real
`socialpost api` process, a worker (no beat: no confirmation sweep runs, so only a
webhook can confirm a target here), PostgreSQL, Redis, and the sandbox sending its
webhooks, registered by `socialpost hooks register`, to the API over HTTP."""

from __future__ import annotations

import hashlib
import hmac
import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.stack import ROOT, Stack, free_port, wait_for
from tests.workers import client, conn, new_user, post, start_stack, wait_final

GLOBAL_PFM = "global-pfm-hooks-" + uuid.uuid4().hex[:8]
GLOBAL_LATE = "global-late-hooks-" + uuid.uuid4().hex[:8]
LATE_SECRET = "late-hook-secret-" + uuid.uuid4().hex
T = 10


WORKER_METRICS_PORT = free_port()
ENV = {"POSTFORME_API_KEY": GLOBAL_PFM, "LATE_API_KEY": GLOBAL_LATE,
       "LATE_WEBHOOK_SECRET": LATE_SECRET,
       "SOCIALPOST_WORKER_METRICS_PORT": str(WORKER_METRICS_PORT)}


@pytest.fixture(scope="module")
def stack(database_url: str, redis_url: str, sandbox_server: Any,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with start_stack(tmp_path_factory, database_url, redis_url, ENV, beat=False) as s:
        yield s


@pytest.fixture(scope="module")
def api(stack: Stack) -> str:
    """`socialpost api` on a free port, in the stack (stopped with it)."""
    port = free_port()
    stack.api(port)
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def hooked(sandbox: Any, stack: Stack, api: str) -> str:
    """The global keys' accounts, and our webhooks registered with both providers by the
    CLI (the sandbox forgets them at each test's reset)."""
    sandbox.register_key("postforme", GLOBAL_PFM, ["twitter", "linkedin"])
    sandbox.register_key("late", GLOBAL_LATE, ["twitter", "linkedin"])
    done = subprocess.run(
        [sys.executable, "-m", "worker.cli", "hooks", "register", "--url", api],
        cwd=ROOT, env=stack.env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert LATE_SECRET not in done.stdout + done.stderr  # printed only with --show-secrets
    return api


def test_registering_again_removes_the_earlier_postforme_webhook(
        hooked: str, sandbox: Any, stack: Stack) -> None:
    first = sandbox.webhooks()["hooks"]["postforme"]
    assert len(first) == 1
    again = subprocess.run(
        [sys.executable, "-m", "worker.cli", "hooks", "register", "--url", hooked],
        cwd=ROOT, env=stack.env, capture_output=True, text=True, timeout=60)
    assert again.returncode == 0, again.stderr
    now = sandbox.webhooks()["hooks"]
    # one PostForMe endpoint, the new one: the old would send with a secret we dropped
    assert [h["id"] for h in now["postforme"]] != [h["id"] for h in first]
    assert len(now["postforme"]) == 1
    assert len(now["late"]) == 2  # LATE documents no removal: the user is told
    assert f"the earlier webhook {now['late'][0]['id']}" in again.stderr
    # without LATE_WEBHOOK_SECRET, the stored secret is reused: the registration LATE keeps
    # is still verifiable
    env = {k: v for k, v in stack.env.items() if k != "LATE_WEBHOOK_SECRET"}
    third = subprocess.run(
        [sys.executable, "-m", "worker.cli", "hooks", "register", "--url", hooked,
         "--provider", "late", "--show-secrets"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert third.returncode == 0, third.stderr
    assert f"LATE_WEBHOOK_SECRET={LATE_SECRET}" in third.stdout.splitlines()


def test_hooks_register_without_a_global_key_says_what_to_set(stack: Stack) -> None:
    env = {k: v for k, v in stack.env.items() if k != "LATE_API_KEY"}
    done = subprocess.run(
        [sys.executable, "-m", "worker.cli", "hooks", "register", "--url",
         "https://posts.example.com"], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=60)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1].startswith("Error: set LATE_API_KEY")
    assert done.stdout == ""


def _target(post_id: str, platform: str) -> dict[str, Any]:
    row = post(post_id)
    assert row is not None
    return next(t for t in row["targets"] if t["platform"] == platform)


def _accepted(post_id: str, platform: str) -> dict[str, Any]:
    return wait_for(lambda: (t := _target(post_id, platform))["status"] == "accepted" and t,
                    30, f"{platform} of {post_id} to be accepted")


def _signed(body: dict[str, Any], secret: str, event_id: str) -> tuple[bytes, dict[str, str]]:
    raw = json.dumps(body).encode()
    return raw, {"Content-Type": "application/json", "X-Zernio-Event": body["event"],
                 "X-Zernio-Event-Id": event_id,
                 "X-Zernio-Signature": hmac.new(secret.encode(), raw,
                                                hashlib.sha256).hexdigest()}


def _late_event(row: dict[str, Any], platform: str, url: str) -> dict[str, Any]:
    target = {"platform": platform, "status": "published", "platformPostId": "999",
              "publishedUrl": url, "error": None}
    return {"event": "post.platform.published",
            "post": {"id": row["provider_post_id"], "platforms": [target]},
            "platform": target, "timestamp": "2026-01-01T00:00:00Z"}


def test_a_signed_late_webhook_confirms_the_target(hooked: str, sandbox: Any) -> None:
    sandbox.revoke_key("postforme", GLOBAL_PFM)  # the chain falls over to LATE at once
    sandbox.set_faults("late", pending_platforms=["twitter"], pending_seconds=1.5)
    post_id = client().enqueue_post(new_user(), "hello from a hook", ["twitter"])
    _accepted(post_id, "twitter")
    row = wait_final(post_id, timeout=30)  # no beat: only LATE's webhook can do this
    target = next(t for t in row["targets"] if t["platform"] == "twitter")
    assert (row["status"], target["status"]) == ("posted", "posted")
    sent = [d for d in sandbox.webhook_deliveries("late")
            if d["event"] == "post.platform.published"]
    assert sent and sent[-1]["status"] == 200
    assert target["platform_post_url"] and target["platform_post_id"]
    assert "confirmed" in [a["outcome"] for a in row["attempts"]]


def test_a_provider_side_failure_by_webhook_sends_the_post_on_to_the_next_step(
        hooked: str, sandbox: Any) -> None:
    sandbox.revoke_key("postforme", GLOBAL_PFM)  # LATE's global key is the last step
    sandbox.set_faults("late", pending_platforms=["twitter"], pending_seconds=1.0,
                       fail_platforms={"twitter": "platform_error"})
    post_id = client().enqueue_post(new_user(), "fails at LATE", ["twitter"])
    _accepted(post_id, "twitter")
    row = wait_final(post_id, timeout=30)  # requeued by the hook; no step is left
    target = row["targets"][0]
    assert (row["status"], target["status"]) == ("failed", "failed")
    assert "failed at the provider, nothing published" in target["error"]
    assert "failed_at_provider" in [a["outcome"] for a in row["attempts"]]


def test_a_late_failure_after_a_success_revises_the_post_by_webhook(hooked: str,
                                                                     sandbox: Any) -> None:
    sandbox.revoke_key("postforme", GLOBAL_PFM)
    sandbox.set_faults("late", regress_platforms={"twitter": 1.0})
    post_id = client().enqueue_post(new_user(), "published, then not", ["twitter"])
    assert wait_final(post_id, timeout=30)["status"] == "posted"  # LATE said published
    revised = wait_for(lambda: (row := post(post_id)) and row["status"] == "failed" and row,
                       30, "LATE's later failure to revise the post")
    assert "revised" in [a["outcome"] for a in revised["attempts"]]
    assert "did not confirm the publish" in revised["targets"][0]["error"]


def test_a_forged_late_webhook_is_refused_and_changes_nothing(hooked: str,
                                                              sandbox: Any) -> None:
    sandbox.revoke_key("postforme", GLOBAL_PFM)
    sandbox.set_faults("late", pending_platforms=["linkedin"], pending_seconds=120)
    post_id = client().enqueue_post(new_user(), "a forged hook", ["linkedin"])
    before = _accepted(post_id, "linkedin")
    event = _late_event(before, "linkedin", "https://www.linkedin.com/feed/update/1")
    raw, headers = _signed(event, "not-the-secret", "evt_forged_" + uuid.uuid4().hex)
    for sent_headers in (headers, {**headers, "X-Zernio-Signature": ""},
                         {k: v for k, v in headers.items() if "Signature" not in k}):
        answer = requests.post(hooked + "/hooks/late", data=raw, headers=sent_headers,
                               timeout=T)
        assert answer.status_code == 401, answer.text
        assert answer.headers["content-type"].startswith("application/problem+json")
    assert _target(post_id, "linkedin") == before  # not a field changed
    # The same event, signed with the secret, confirms it; its retry is a duplicate.
    raw, headers = _signed(event, LATE_SECRET, "evt_real_" + uuid.uuid4().hex)
    first = requests.post(hooked + "/hooks/late", data=raw, headers=headers, timeout=T)
    assert first.json() == {"result": "applied", "changed": 1}, first.text
    again = requests.post(hooked + "/hooks/late", data=raw, headers=headers, timeout=T)
    assert again.json() == {"result": "duplicate", "changed": 0}
    assert _target(post_id, "linkedin")["platform_post_url"] == "https://www.linkedin.com/feed/update/1"
    assert wait_final(post_id, timeout=15)["status"] == "posted"


def test_an_event_for_a_post_a_worker_holds_is_503_and_taken_on_the_retry(
        hooked: str, sandbox: Any) -> None:
    sandbox.revoke_key("postforme", GLOBAL_PFM)
    sandbox.set_faults("late", pending_platforms=["twitter"], pending_seconds=120)
    post_id = client().enqueue_post(new_user(), "held by a worker", ["twitter"])
    before = _accepted(post_id, "twitter")
    with conn() as c:  # as a worker's claim leaves it while it works on the post
        c.execute("UPDATE social_posts SET lease_owner = 'another-worker', lease_expires_at "
                  "= now() + interval '1 minute' WHERE id = %s", (post_id,))
    url = "https://x.com/u/status/999"
    raw, headers = _signed(_late_event(before, "twitter", url), LATE_SECRET,
                           "evt_held_" + uuid.uuid4().hex)
    busy = requests.post(hooked + "/hooks/late", data=raw, headers=headers, timeout=T)
    assert busy.status_code == 503 and busy.headers["Retry-After"] == "1"
    assert _target(post_id, "twitter") == before
    with conn() as c:
        c.execute("UPDATE social_posts SET lease_owner = NULL, lease_expires_at = NULL "
                  "WHERE id = %s", (post_id,))
    retried = requests.post(hooked + "/hooks/late", data=raw, headers=headers, timeout=T)
    assert retried.json() == {"result": "applied", "changed": 1}  # not taken the first time
    assert _target(post_id, "twitter")["platform_post_url"] == url


def test_a_postforme_result_before_the_create_is_answered_waits_for_the_record(
        hooked: str, sandbox: Any) -> None:
    """PostForMe may post a result while its answer to the create is still on the way:
    the post id is not recorded yet, so the event is answered 503 and not taken, and
    one of PostForMe's retries confirms the post (no beat here: nothing else could)."""
    sandbox.set_faults("postforme", create_delay_seconds=2.0, result_delay_seconds=0.1)
    post_id = client().enqueue_post(new_user(), "answered after its result", ["twitter"])
    row = wait_final(post_id, timeout=30)
    assert row["status"] == "posted" and row["targets"][0]["status"] == "posted"
    tries = [t for t in sandbox.webhook_deliveries("postforme")
             if t["event"] == "social.post.result.created"]
    statuses = [t["status"] for t in tries]
    assert statuses[0] == 503 and statuses[-1] == 200, tries  # refused, then taken
    assert len({t["event_id"] for t in tries}) == 1  # one result, tried again


def test_a_late_event_for_a_post_we_do_not_know_is_ignored_even_while_a_create_is_out(
        hooked: str, sandbox: Any) -> None:
    """LATE's publishNow answer carries its outcomes (the worker records them), and LATE
    disables an endpoint after 20 failures in a row: its events are never held back."""
    sandbox.revoke_key("postforme", GLOBAL_PFM)
    sandbox.set_faults("late", pending_platforms=["twitter"], pending_seconds=120)
    post_id = client().enqueue_post(new_user(), "a create out", ["twitter"])
    _accepted(post_id, "twitter")
    with conn() as c:  # as a worker leaves it while its create call is out
        c.execute("UPDATE social_posts SET lease_owner = 'another-worker', lease_expires_at"
                  " = now() + interval '1 minute', send_started_at = now() WHERE id = %s",
                  (post_id,))
    try:
        unknown = {"provider_post_id": "late-post-" + uuid.uuid4().hex}
        raw, headers = _signed(_late_event(unknown, "twitter", "https://x.com/u/status/1"),
                               LATE_SECRET, "evt_unknown_" + uuid.uuid4().hex)
        answer = requests.post(hooked + "/hooks/late", data=raw, headers=headers, timeout=T)
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"result": "ignored", "changed": 0}
    finally:
        with conn() as c:
            c.execute("UPDATE social_posts SET lease_owner = NULL, lease_expires_at = NULL,"
                      " send_started_at = NULL WHERE id = %s", (post_id,))


def test_a_malformed_late_event_is_400_naming_the_field(hooked: str) -> None:
    raw, headers = _signed({"event": "post.platform.published", "post": {}}, LATE_SECRET,
                           "evt_bad_" + uuid.uuid4().hex)
    answer = requests.post(hooked + "/hooks/late", data=raw, headers=headers, timeout=T)
    assert answer.status_code == 400
    assert answer.json()["errors"] == [{"field": "post.id", "detail": "is required"}]


def test_postforme_webhooks_confirm_and_a_wrong_secret_is_refused(hooked: str,
                                                                  sandbox: Any) -> None:
    sandbox.set_faults("postforme", result_delay_seconds=2)
    post_id = client().enqueue_post(new_user(), "hello PostForMe", ["twitter"])
    before = _accepted(post_id, "twitter")
    forged = {"event_type": "social.post.result.created", "data": {
        "id": "spr_forged", "post_id": before["provider_post_id"], "platform": "x",
        "success": False, "error": "Token expired"}}
    for secret in ("wrong", None):
        headers = {"Post-For-Me-Webhook-Secret": secret} if secret else {}
        answer = requests.post(hooked + "/hooks/postforme", json=forged, headers=headers,
                               timeout=T)
        assert answer.status_code == 401, answer.text
    assert _target(post_id, "twitter") == before
    row = wait_final(post_id, timeout=30)  # the sandbox's own webhook, with its secret
    assert row["status"] == "posted"
    tries = sandbox.webhook_deliveries("postforme")
    assert tries and all(t["status"] == 200 for t in tries)


def test_a_postforme_failure_waits_for_the_poll_which_it_puts_first(
        hooked: str, sandbox: Any) -> None:
    from db import hooks
    from db.vault import Vault

    sandbox.set_faults("postforme", result_delay_seconds=120)
    post_id = client().enqueue_post(new_user(), "may still succeed", ["twitter"])
    before = _accepted(post_id, "twitter")
    with conn() as c:
        c.execute("UPDATE post_targets SET checked_at = now() WHERE post_id = %s", (post_id,))
        secret = hooks.stored_secret(c, Vault.from_env(), "postforme")
    assert secret
    failed = {"event_type": "social.post.result.created", "data": {
        "id": "spr_" + uuid.uuid4().hex, "post_id": before["provider_post_id"],
        "platform": "x", "success": False, "error": "Internal error, retrying"}}
    answer = requests.post(hooked + "/hooks/postforme", json=failed, timeout=T,
                           headers={"Post-For-Me-Webhook-Secret": secret})
    assert answer.json() == {"result": "applied", "changed": 0}  # PostForMe may yet retry
    after = _target(post_id, "twitter")
    assert after["status"] == "accepted" and after["checked_at"] is None  # asked first


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_metrics_show_the_counts_the_ledger_shows(hooked: str, sandbox: Any) -> None:
    # Results a second after the create: its webhook then finds the target accepted (one
    # arriving before the worker recorded the create is left to the sweep, not run here).
    sandbox.set_faults("postforme", result_delay_seconds=1)
    worker_url = f"http://127.0.0.1:{WORKER_METRICS_PORT}/metrics"
    counted_before = _samples(requests.get(worker_url, timeout=T).text)
    # One platform each: a PostForMe result names only the account, and a webhook can
    # place it only on a provider post's one target (no beat here to map the rest).
    ids = [client().enqueue_post(new_user(), f"counted {i}", ["twitter"]) for i in range(3)]
    due = datetime.now(UTC) - timedelta(seconds=30)  # due a while ago: it leaves now, late
    ids.append(client().enqueue_post(new_user(), "late one", ["twitter"],
                                     scheduled_for=due.isoformat()))
    for post_id in ids:
        assert wait_final(post_id, timeout=60)["status"] in ("posted", "partial")
    scraped = _samples(requests.get(hooked + "/metrics", timeout=T).text)
    with conn() as c:
        posts = c.execute("SELECT status, COALESCE(provider, 'none') AS provider, "
                          "count(*) AS n FROM social_posts GROUP BY 1, 2").fetchall()
        targets = c.execute("SELECT status, COALESCE(provider, 'none') AS provider, "
                            "count(*) AS n FROM post_targets GROUP BY 1, 2").fetchall()
        attempts = c.execute(
            """SELECT provider, outcome, credential_source, count(*) AS n
               FROM post_attempts WHERE step IS NOT NULL AND post_id = ANY(%s)
               GROUP BY 1, 2, 3""", ([uuid.UUID(i) for i in ids],)).fetchall()
    for r in posts:
        key = ("socialpost_posts", (("provider", r["provider"]), ("status", r["status"])))
        assert scraped[key] == r["n"], key
    assert sum(v for (name, _), v in scraped.items() if name == "socialpost_posts") \
        == sum(r["n"] for r in posts)
    for r in targets:
        key = ("socialpost_targets", (("provider", r["provider"]), ("status", r["status"])))
        assert scraped[key] == r["n"], key
    assert scraped[("socialpost_scrape_ok", (("source", "postgres"),))] == 1
    assert scraped[("socialpost_scrape_ok", (("source", "redis"),))] == 1
    assert ("socialpost_queue_depth", (("queue", "social.publish"),)) in scraped
    assert scraped[("socialpost_circuit_open", (("provider", "late"),))] == 0
    # The worker counted each call it recorded for these posts, as post_attempts shows.
    counted = _samples(requests.get(worker_url, timeout=T).text)
    assert attempts
    for r in attempts:
        calls = ("socialpost_attempts_total", (("credential_source", r["credential_source"]),
                                               ("outcome", r["outcome"]),
                                               ("provider", r["provider"])))
        assert counted.get(calls, 0) - counted_before.get(calls, 0) == r["n"], calls
    create_count = ("socialpost_create_seconds_count", (("provider", "postforme"),))
    assert counted[create_count] - counted_before.get(create_count, 0) == len(ids)
    late_count = ("socialpost_scheduled_lateness_seconds_count", (("provider", "postforme"),))
    late_sum = ("socialpost_scheduled_lateness_seconds_sum", (("provider", "postforme"),))
    assert counted[late_count] - counted_before.get(late_count, 0) == 1
    assert 30 <= counted[late_sum] - counted_before.get(late_sum, 0) < 120


def test_metrics_need_the_token_when_one_is_set(
        stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> None:
    secret = "m-" + uuid.uuid4().hex
    guarded = Stack.create(tmp_path_factory.mktemp("metrics-token"),
                           {**stack.env, "SOCIALPOST_METRICS_TOKEN": secret})
    port = free_port()
    try:
        guarded.api(port)
        url = f"http://127.0.0.1:{port}/metrics"
        refused = requests.get(url, timeout=T)
        assert refused.status_code == 401
        assert secret not in refused.text
        assert requests.get(url, timeout=T, headers={
            "Authorization": "Bearer wrong"}).status_code == 401
        ok = requests.get(url, timeout=T, headers={"Authorization": f"Bearer {secret}"})
        assert ok.status_code == 200 and "socialpost_posts" in ok.text
    finally:
        guarded.stop()
