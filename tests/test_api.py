"""The HTTP API over real HTTP: `socialpost api` as a process, a real worker and beat,
PostgreSQL, Redis and the provider sandbox. Every assertion reads an answer, the ledger
or what the sandbox received."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from tests.api_stack import Api, count_posts, start_api, token, wait_status
from tests.stack import ROOT
from tests.workers import conn, creates, new_user, save_key, user_with_key

BODY_CAP = 8192


@pytest.fixture(scope="module")
def api(database_url: str, redis_url: str, sandbox_server: Any,
        tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    env = {"SOCIALPOST_API_MAX_BODY_BYTES": str(BODY_CAP)}
    with start_api(tmp_path_factory, database_url, redis_url, env) as served:
        yield served


def post_body(user: str, **extra: Any) -> dict[str, Any]:
    return {"user_id": user, "content": "hello from the API " + uuid.uuid4().hex[:6],
            "platforms": ["twitter", "linkedin"], **extra}


def test_a_post_published_through_the_api_reaches_posted(api: Api, sandbox: Any) -> None:
    user = user_with_key(sandbox, "postforme", ["twitter", "linkedin"])
    tok = token(user)
    answer = api.call("POST", "/v1/posts", tok, json=post_body(user))
    assert answer.status_code == 202, answer.text
    accepted = answer.json()
    assert accepted["status"] == "queued"
    assert answer.headers["Location"] == f"/v1/posts/{accepted['post_id']}"
    final = wait_status(api, tok, accepted["post_id"], {"posted", "partial", "failed",
                                                        "unconfirmed"})
    assert final["status"] == "posted", final
    assert {t["platform"]: t["status"] for t in final["targets"]} == {
        "twitter": "posted", "linkedin": "posted"}
    assert [a["outcome"] for a in final["attempts"] if a["step"] is not None] == ["published"]
    assert len(creates(sandbox, "postforme", accepted["post_id"])) == 1


def test_an_idempotent_repeat_answers_the_first_answer_and_a_changed_body_409(
    api: Api, sandbox: Any
) -> None:
    user = new_user()
    tok = token(user)
    body = post_body(user, scheduled_for=(datetime.now(UTC) + timedelta(hours=1)).isoformat())
    key = {"Idempotency-Key": "order-" + uuid.uuid4().hex}
    first = api.call("POST", "/v1/posts", tok, json=body, headers=key)
    assert first.status_code == 202 and first.json()["status"] == "scheduled", first.text
    again = api.call("POST", "/v1/posts", tok, json=dict(reversed(list(body.items()))),
                     headers=key)
    assert again.status_code == 202
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    changed = api.call("POST", "/v1/posts", tok, json={**body, "content": "other words"},
                       headers=key)
    assert changed.status_code == 409, changed.text
    assert changed.headers["content-type"] == "application/problem+json"
    assert [e["field"] for e in changed.json()["errors"]] == ["Idempotency-Key"]
    assert count_posts(user) == 1
    # The same key under another user is another request.
    other = new_user()
    theirs = api.call("POST", "/v1/posts", token(other), json={**body, "user_id": other},
                      headers=key)
    assert theirs.status_code == 202 and theirs.json()["post_id"] != first.json()["post_id"]


def test_a_scoped_token_sees_and_writes_only_its_users(api: Api) -> None:
    mine, theirs = new_user(), new_user()
    their_post = api.call("POST", "/v1/posts", token(theirs), json=post_body(
        theirs, scheduled_for=(datetime.now(UTC) + timedelta(hours=1)).isoformat()))
    assert their_post.status_code == 202
    pid = their_post.json()["post_id"]
    tok = token(mine)
    read = api.call("GET", f"/v1/posts/{pid}", tok)
    assert read.status_code == 404 and theirs not in read.text
    assert api.call("GET", f"/v1/posts/{pid}", token(admin=True)).status_code == 200
    assert api.call("GET", f"/v1/posts?user_id={theirs}", tok).status_code == 404
    assert api.call("POST", f"/v1/posts/{pid}/cancel", tok).status_code == 404
    write = api.call("POST", "/v1/posts", tok, json=post_body(theirs))
    assert write.status_code == 403, write.text
    assert write.json()["errors"] == [{"field": "user_id",
                                       "detail": "outside this token's users"}]
    assert count_posts(theirs) == 1
    key = api.call("PUT", f"/v1/users/{theirs}/credentials/late", tok,
                   json={"api_key": "sk-not-stored"})
    assert key.status_code == 403
    with conn() as c:
        assert c.execute("SELECT 1 FROM user_social_credentials WHERE user_id = %s",
                         (theirs,)).fetchone() is None


def test_no_token_or_an_unknown_or_revoked_one_is_401(api: Api) -> None:
    for headers in ({}, {"Authorization": "Bearer sp_nothing"}, {"Authorization": "Basic x"}):
        answer = api.call("GET", f"/v1/posts?user_id={new_user()}", headers=headers)
        assert answer.status_code == 401, (headers, answer.text)
        assert answer.headers["WWW-Authenticate"].startswith("Bearer")
        assert answer.json()["type"].endswith(":unauthenticated")
    unscoped = subprocess.run(
        [sys.executable, "-m", "worker.cli", "tokens", "create", "--name", "ci"],
        cwd=ROOT, env=api.stack.env, capture_output=True, text=True, timeout=60)
    assert unscoped.returncode == 2 and unscoped.stdout == ""
    assert unscoped.stderr.startswith("Error: --user: name at least one user"), unscoped.stderr
    made = subprocess.run(
        [sys.executable, "-m", "worker.cli", "tokens", "create", "--name", "ci", "--admin"],
        cwd=ROOT, env=api.stack.env, capture_output=True, text=True, timeout=60)
    assert made.returncode == 0, made.stderr
    tok = made.stdout.strip()
    assert made.stdout == tok + "\n" and tok.startswith("sp_")  # alone on stdout
    assert api.call("GET", f"/v1/posts?user_id={new_user()}", tok).status_code == 200
    listed = subprocess.run([sys.executable, "-m", "worker.cli", "tokens", "list", "--json"],
                            cwd=ROOT, env=api.stack.env, capture_output=True, text=True,
                            timeout=60)
    assert tok not in listed.stdout
    ident = next(t["id"] for t in json.loads(listed.stdout) if t["prefix"] == tok[:10])
    revoked = subprocess.run([sys.executable, "-m", "worker.cli", "tokens", "revoke", ident],
                             cwd=ROOT, env=api.stack.env, capture_output=True, text=True,
                             timeout=60)
    assert revoked.returncode == 0, revoked.stderr
    assert api.call("GET", f"/v1/posts?user_id={new_user()}", tok).status_code == 401
    for path in ("/healthz", "/readyz", "/openapi.json", "/docs"):
        assert api.call("GET", path).status_code == 200, path
    with conn() as c:  # kept as a digest only
        assert c.execute("SELECT 1 FROM api_tokens t WHERE t::text LIKE %s",
                         (f"%{tok[3:]}%",)).fetchone() is None
        assert c.execute("SELECT 1 FROM api_tokens WHERE token_hash = sha256(%s::bytea)",
                         (tok.encode(),)).fetchone() is not None


def test_every_error_names_its_field_and_nothing_is_stored(api: Api) -> None:
    user = new_user()
    tok = token(user)
    bad = api.call("POST", "/v1/posts", tok, json={
        "user_id": user, "content": "", "platforms": ["twittr"],
        "media_urls": ["ftp://cdn.example.com/a.jpg"], "scheduled_for": "2026-06-01T09:00"})
    assert bad.status_code == 422
    assert bad.headers["content-type"] == "application/problem+json"
    fields = [e["field"] for e in bad.json()["errors"]]
    assert fields == ["content", "platforms", "media_urls[0]", "scheduled_for"], bad.text
    assert all(e["detail"] for e in bad.json()["errors"])
    typo = api.call("POST", "/v1/posts", tok, json={**post_body(user), "scheduled_at": "x"})
    assert typo.status_code == 422
    assert typo.json()["errors"] == [{"field": "scheduled_at", "detail": "unknown field"}]
    for query, field in (("limit=0", "limit"), ("cursor=nope", "cursor"),
                         ("status=done", "status"), ("platform=myspace", "platform")):
        page = api.call("GET", f"/v1/posts?user_id={user}&{query}", tok)
        assert page.status_code == 422, (query, page.text)
        assert [e["field"] for e in page.json()["errors"]] == [field], page.text
    not_json = api.call("POST", "/v1/posts", tok, data=b"\xff{",
                        headers={"Content-Type": "application/json"})
    assert not_json.status_code == 422 and not_json.json()["errors"][0]["field"] == "body"
    huge = api.call("POST", "/v1/posts", tok, json=post_body(user, content="x" * BODY_CAP))
    assert huge.status_code == 413 and huge.json()["status"] == 413
    assert count_posts(user) == 0


def test_pages_walk_every_post_once_newest_first(api: Api) -> None:
    user = new_user()
    tok = token(user)
    later = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    made = [api.call("POST", "/v1/posts", tok, json=post_body(user, scheduled_for=later))
            .json()["post_id"] for _ in range(5)]
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        query = f"/v1/posts?user_id={user}&limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = api.call("GET", query, tok).json()
        pages += 1
        seen += [p["id"] for p in page["data"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 3 and seen == list(reversed(made))
    only = api.call("GET", f"/v1/posts?user_id={user}&status=queued", tok).json()
    assert only == {"data": [], "next_cursor": None}


def test_cancel_then_too_late(api: Api) -> None:
    user = new_user()
    tok = token(user)
    pid = api.call("POST", "/v1/posts", tok, json=post_body(
        user, scheduled_for=(datetime.now(UTC) + timedelta(hours=1)).isoformat())
    ).json()["post_id"]
    done = api.call("POST", f"/v1/posts/{pid}/cancel", tok)
    assert done.status_code == 200 and done.json() == {"post_id": pid, "status": "cancelled"}
    again = api.call("POST", f"/v1/posts/{pid}/cancel", tok)
    assert again.status_code == 409 and "already cancelled" in again.json()["detail"]
    assert api.call("POST", f"/v1/posts/{uuid.uuid4()}/cancel", tok).status_code == 404


def test_a_campaign_is_created_checked_and_published_once(api: Api, sandbox: Any) -> None:
    user = user_with_key(sandbox, "postforme", ["twitter"])
    tok = token(user)
    soon = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    broken = api.call("POST", "/v1/campaigns", tok, json={
        "user_id": user, "name": "spring",
        "creative_calendar": {"batches": [{"caption": "one"}, {"media_urls": []}]}})
    assert broken.status_code == 422
    assert broken.json()["errors"] == [{"field": "creative_calendar",
                                        "detail": "batch 2: caption: missing or empty"}]
    made = api.call("POST", "/v1/campaigns", tok, json={
        "user_id": user, "name": "spring", "creative_calendar": {"batches": [
            {"caption": "now"}, {"caption": "later", "scheduled_for": soon}]}})
    assert made.status_code == 201, made.text
    cid = made.json()["id"]
    assert [b["caption"] for b in made.json()["batches"]] == ["now", "later"]
    sent = api.call("POST", f"/v1/campaigns/{cid}/publish", tok, json={"platforms": ["x"]})
    assert sent.status_code == 202, sent.text
    ids = [b["post_id"] for b in sent.json()["batches"]]
    assert len(ids) == 2 and all(b["sent"] for b in sent.json()["batches"])
    first = wait_status(api, tok, ids[0], {"posted", "failed", "partial", "unconfirmed"})
    assert first["status"] == "posted", first
    again = api.call("POST", f"/v1/campaigns/{cid}/publish", tok, json={"platforms": ["twitter"]})
    assert [b["post_id"] for b in again.json()["batches"]] == ids
    shown = api.call("GET", f"/v1/campaigns/{cid}", tok).json()
    assert sorted(p["id"] for p in shown["posts"]) == sorted(ids)
    assert len(creates(sandbox, "postforme", ids[0])) == 1
    assert api.call("GET", f"/v1/campaigns/{cid}", token(new_user())).status_code == 404
    taken = api.call("POST", "/v1/campaigns", tok, json={
        "user_id": user, "name": "again", "id": cid, "creative_calendar": {"batches": []}})
    assert taken.status_code == 409 and taken.json()["errors"][0]["field"] == "id"


def test_credentials_are_stored_never_echoed_and_accounts_listed(api: Api, sandbox: Any) -> None:
    user = new_user()
    tok = token(user)
    secret = "user-late-" + uuid.uuid4().hex
    sandbox.register_key("late", secret, ["twitter", "bluesky"])
    saved = api.call("PUT", f"/v1/users/{user}/credentials/late", tok,
                     json={"api_key": secret})
    assert saved.status_code == 200, saved.text
    assert secret not in saved.text and saved.json()["provider"] == "late"
    with conn() as c:
        stored = c.execute("SELECT encrypted_api_key FROM user_social_credentials "
                           "WHERE user_id = %s", (user,)).fetchone()
    assert stored and secret not in stored["encrypted_api_key"]
    accounts = api.call("GET", f"/v1/users/{user}/accounts", tok)
    assert accounts.status_code == 200, accounts.text
    assert {a["platform"] for a in accounts.json()["accounts"]} == {"twitter", "bluesky"}
    assert all(a["source"] == "user" for a in accounts.json()["accounts"])
    link = api.call("POST", f"/v1/users/{user}/oauth-url", tok,
                    json={"platform": "linkedin", "redirect_url": "https://app.example/cb"})
    assert link.status_code == 200, link.text
    assert link.json()["provider"] == "late" and link.json()["url"].startswith("http")
    bad = api.call("POST", f"/v1/users/{user}/oauth-url", tok,
                   json={"platform": "myspace", "redirect_url": "javascript:x"})
    assert [e["field"] for e in bad.json()["errors"]] == ["platform", "redirect_url"]
    assert api.call("DELETE", f"/v1/users/{user}/credentials/late", tok).status_code == 204
    assert api.call("DELETE", f"/v1/users/{user}/credentials/late", tok).status_code == 404
    assert secret not in api.log() and secret not in api.stack.logs()


def test_only_an_admin_token_manages_tokens(api: Api) -> None:
    user = new_user()
    admin = token(admin=True)
    assert api.call("GET", "/v1/tokens", token(user)).status_code == 403
    made = api.call("POST", "/v1/tokens", admin, json={"name": "svc", "user_ids": [user]})
    assert made.status_code == 201, made.text
    new = made.json()
    assert new["token"].startswith("sp_") and new["user_ids"] == [user]
    assert api.call("GET", f"/v1/posts?user_id={user}", new["token"]).status_code == 200
    listed = api.call("GET", "/v1/tokens", admin).json()["data"]
    assert new["id"] in {t["id"] for t in listed} and new["token"] not in json.dumps(listed)
    scope = api.call("POST", "/v1/tokens", admin, json={"name": "none"})
    assert [e["field"] for e in scope.json()["errors"]] == ["user_ids"]
    assert api.call("DELETE", f"/v1/tokens/{new['id']}", admin).status_code == 204
    assert api.call("GET", f"/v1/posts?user_id={user}", new["token"]).status_code == 401
    assert api.call("DELETE", f"/v1/tokens/{new['id']}", admin).status_code == 404


def test_per_platform_overrides_go_through_the_api_and_typos_are_refused_by_name(
    api: Api, sandbox: Any
) -> None:
    user, key = new_user(), f"user-postforme-{uuid.uuid4().hex}"
    sandbox.register_key("postforme", key, ["twitter", "linkedin"])
    save_key(user, "postforme", key)
    tok = token(user)
    long_linkedin = "The longer story for LinkedIn. " * 20  # ~600 characters: too long for X
    typo = api.call("POST", "/v1/posts", tok, json=post_body(
        user, overrides={"linkedin": {"contnet": long_linkedin}}))
    assert typo.status_code == 422, typo.text
    assert [e["field"] for e in typo.json()["errors"]] == ["overrides.linkedin.contnet"]
    assert count_posts(user) == 0

    answer = api.call("POST", "/v1/posts", tok, json=post_body(
        user, overrides={"linkedin": {"content": long_linkedin}}))
    assert answer.status_code == 202, answer.text
    post_id = answer.json()["post_id"]
    final = wait_status(api, tok, post_id, {"posted", "partial", "failed", "unconfirmed"})
    assert final["status"] == "posted", final
    assert final["overrides"] == {"linkedin": {"content": long_linkedin}}
    assert len(creates(sandbox, "postforme", post_id)) == 1
    (provider_post,) = {t["provider_post_id"] for t in final["targets"]}
    sent = requests.get(f"{sandbox.postforme_url}/social-posts/{provider_post}", timeout=5,
                        headers={"Authorization": f"Bearer {key}"}).json()
    assert sent["caption"].startswith("hello from the API")  # the common words for X
    assert sent["platform_configurations"]["linkedin"] == {"caption": long_linkedin}


def test_an_admin_manages_webhook_endpoints_and_a_post_shows_its_events(
    api: Api, sandbox: Any
) -> None:
    admin = token(admin=True)
    user = user_with_key(sandbox, "postforme", ["twitter", "linkedin"])
    assert api.call("GET", "/v1/webhooks", token(user)).status_code == 403
    made = api.call("POST", "/v1/webhooks", admin, json={
        "url": "http://127.0.0.1:9/hooks", "user_id": user, "event_types": ["post.*"]})
    assert made.status_code == 201, made.text
    hook = made.json()
    assert hook["secret"].startswith("whsec_") and hook["user_id"] == user
    assert made.headers["Location"] == f"/v1/webhooks/{hook['id']}"
    listed = api.call("GET", "/v1/webhooks", admin).json()["data"]
    assert hook["id"] in {h["id"] for h in listed} and hook["secret"] not in json.dumps(listed)
    bad = api.call("POST", "/v1/webhooks", admin, json={"url": "ftp://example.com/x",
                                                         "event_types": ["post.nothing"]})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] in ("url",
                                                                          "event_types")
    ping = api.call("POST", f"/v1/webhooks/{hook['id']}/test", admin)
    assert ping.status_code == 202, ping.text
    with conn() as c:
        row = c.execute("SELECT type FROM post_events WHERE id = %s",
                        (ping.json()["event_id"],)).fetchone()
    assert row == {"type": "ping"}
    # /metrics shows the delivery log's counts (the ping is one delivery)
    with conn() as c:
        ledger = {r["status"]: r["n"] for r in c.execute(
            "SELECT status, count(*) AS n FROM webhook_deliveries GROUP BY 1")}
    scraped = {line.split('"')[1]: float(line.rsplit(" ", 1)[1])
               for line in api.call("GET", "/metrics").text.splitlines()
               if line.startswith("socialpost_webhook_deliveries{")}
    assert scraped == {s: float(ledger.get(s, 0)) for s in ("pending", "delivered", "failed")}
    assert sum(scraped.values()) >= 1
    assert api.call("DELETE", f"/v1/webhooks/{hook['id']}", admin).status_code == 204
    assert api.call("DELETE", f"/v1/webhooks/{hook['id']}", admin).status_code == 404
    assert api.call("POST", f"/v1/webhooks/{hook['id']}/test", admin).status_code == 404

    tok = token(user)
    accepted = api.call("POST", "/v1/posts", tok, json=post_body(user)).json()
    final = wait_status(api, tok, accepted["post_id"], {"posted", "partial", "failed",
                                                        "unconfirmed"})
    assert final["status"] == "posted", final
    seen = wait_events(api, tok, accepted["post_id"], 3)
    assert sorted((e["type"], e["platform"]) for e in seen) == [
        ("post.posted", None), ("post.target.posted", "linkedin"),
        ("post.target.posted", "twitter")]
    listed_posts = api.call("GET", f"/v1/posts?user_id={user}", tok).json()["data"]
    assert [p["events"] for p in listed_posts] == [None]  # pages leave them out


def wait_events(api: Api, tok: str, post_id: str, n: int) -> list[dict[str, Any]]:
    from tests.stack import wait_for

    seen: list[dict[str, Any]] = []

    def enough() -> bool:
        seen[:] = api.call("GET", f"/v1/posts/{post_id}", tok).json()["events"]
        return len(seen) >= n

    wait_for(enough, 20, f"{n} events of post {post_id}")
    return seen


def test_a_batch_that_needs_late_is_refused_then_published_once_a_late_key_is_stored(
    api: Api, sandbox: Any
) -> None:
    # A thread goes through LATE only: with no LATE key the batch is refused, nothing is
    # stored or sent; once the user stores one, publishing again makes the post.
    user = user_with_key(sandbox, "postforme", ["twitter", "linkedin"])
    tok = token(user)
    made = api.call("POST", "/v1/campaigns", tok, json={
        "user_id": user, "name": "threads", "creative_calendar": {"batches": [
            {"caption": "plain"},
            {"caption": "first of a thread", "overrides": {"twitter": {"thread": ["2/"]}}}]}})
    assert made.status_code == 201, made.text
    cid = made.json()["id"]
    first = api.call("POST", f"/v1/campaigns/{cid}/publish", tok, json={"platforms": ["x"]})
    assert first.status_code == 202, first.text
    plain, threaded = first.json()["batches"]
    assert plain["sent"] and plain["error"] is None
    assert not threaded["sent"] and "overrides.twitter" in threaded["error"]
    assert "no LATE key" in threaded["error"]
    with conn() as c:
        assert c.execute("SELECT 1 FROM social_posts WHERE id = %s",
                         (threaded["post_id"],)).fetchone() is None
    late_key = f"user-late-{uuid.uuid4().hex}"
    sandbox.register_key("late", late_key, ["twitter"])
    save_key(user, "late", late_key)
    again = api.call("POST", f"/v1/campaigns/{cid}/publish", tok, json={"platforms": ["x"]})
    assert again.status_code == 202, again.text
    assert [(b["post_id"], b["sent"], b["error"]) for b in again.json()["batches"]] == [
        (plain["post_id"], True, None), (threaded["post_id"], True, None)]
    final = wait_status(api, tok, threaded["post_id"], {"posted", "failed", "partial",
                                                        "unconfirmed"})
    assert final["status"] == "posted", final
    assert final["targets"][0]["provider"] == "late"
