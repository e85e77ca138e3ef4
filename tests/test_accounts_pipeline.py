"""Issue 10 path 4, "posting on the wrong account", end to end: real PostgreSQL, Redis,
`celery worker` processes and the sandbox. Every post is checked at the sandbox for
the account its create went to (created_accounts), and in the ledger for its targets.

Two tenants share the global keys: PostForMe accounts tagged `external_id` = user id,
LATE accounts in the profile named by the user id; untagged ones are the
organisation's (SOCIALPOST_SHARED_ACCOUNTS)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.stack import Stack
from tests.workers import post as read_post
from tests.workers import start_stack, wait_final

GLOBAL_PFM = "global-pfm-acc-" + uuid.uuid4().hex[:8]
GLOBAL_LATE = "global-late-acc-" + uuid.uuid4().hex[:8]


def _stack_env(database_url: str, broker: str, **extra: str) -> dict[str, str]:
    return {"DATABASE_URL": database_url, "REDIS_URL": broker,
            "POSTFORME_API_KEY": GLOBAL_PFM, "LATE_API_KEY": GLOBAL_LATE, **extra}


@pytest.fixture(scope="module")
def stack(
    database_url: str, redis_url: str, sandbox_server: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    env = {"POSTFORME_API_KEY": GLOBAL_PFM, "LATE_API_KEY": GLOBAL_LATE}
    with start_stack(tmp_path_factory, database_url, redis_url, env, concurrency=2) as s:
        yield s


def _client(broker: str) -> Any:
    """The producer client on its own send-only app, bound to `broker`."""
    from celery import Celery

    from tasks.client import PublishClient

    app = Celery("accounts-test", set_as_current=False)
    app.config_from_object("celeryconfig")
    app.conf.broker_url = broker
    app.conf.result_backend = None
    return PublishClient(app)


def _targets(post: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {t["platform"]: t for t in post["targets"]}


def _went_to(sandbox: Any, post_id: str) -> set[tuple[str, str, str]]:
    """(provider, platform, account id) of every create made for our post `post_id`."""
    return {
        (provider, platform, account)
        for provider, rows in sandbox.created_accounts().items()
        for key, platform, account in rows
        if key and key.startswith(post_id)
    }


def _pfm(sandbox: Any, platform: str, user: str | None) -> str:
    return str(sandbox.add_account("postforme", GLOBAL_PFM, platform, external_id=user)["id"])


def _late(sandbox: Any, platform: str, user: str | None) -> str:
    return str(sandbox.add_account("late", GLOBAL_LATE, platform, profile=user)["id"])


@pytest.fixture
def keys(sandbox: Any) -> Any:
    """Both global keys known to the sandbox, with no accounts yet."""
    sandbox.register_key("postforme", GLOBAL_PFM, [])
    sandbox.register_key("late", GLOBAL_LATE, [])
    return sandbox


def test_two_tenants_on_the_global_postforme_key_each_post_on_their_own(
    stack: Stack, keys: Any, redis_url: str
) -> None:
    user_a, user_b = str(uuid.uuid4()), str(uuid.uuid4())
    acc_a, acc_b = _pfm(keys, "linkedin", user_a), _pfm(keys, "linkedin", user_b)
    client = _client(redis_url)
    post_a = client.enqueue_post(user_a, "A's news", ["linkedin"])
    post_b = client.enqueue_post(user_b, "B's news", ["linkedin"])
    for post_id, account in ((post_a, acc_a), (post_b, acc_b)):
        post = wait_final(post_id)
        assert post["status"] == "posted", post
        assert _went_to(keys, post_id) == {("postforme", "linkedin", account)}


def test_an_untagged_shared_account_serves_a_user_without_one(
    stack: Stack, keys: Any, redis_url: str
) -> None:
    brand = _pfm(keys, "linkedin", None)
    _pfm(keys, "linkedin", str(uuid.uuid4()))  # another tenant's: never chosen
    post_id = _client(redis_url).enqueue_post(str(uuid.uuid4()), "brand news", ["linkedin"])
    post = wait_final(post_id)
    assert post["status"] == "posted", post
    assert _went_to(keys, post_id) == {("postforme", "linkedin", brand)}


def test_shared_accounts_off_refuses_the_untagged_account(
    database_url: str, keys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through the seed service, which runs the workers' engine in process: a second
    worker fleet just for SOCIALPOST_SHARED_ACCOUNTS=0 would need a broker of its own."""
    from providers import clear_accounts_cache
    from social_posting_service import SocialPostingService

    for name, value in (("POSTFORME_API_KEY", GLOBAL_PFM), ("LATE_API_KEY", GLOBAL_LATE),
                        ("SOCIALPOST_SHARED_ACCOUNTS", "0"), ("SOCIALPOST_BACKOFF_BASE", "0.1"),
                        ("SOCIALPOST_ACCOUNTS_CACHE_SECONDS", "0")):
        monkeypatch.setenv(name, value)
    clear_accounts_cache()
    _pfm(keys, "linkedin", None)
    _late(keys, "linkedin", None)
    service = SocialPostingService()
    service.init(database_url)
    user = str(uuid.uuid4())
    result = service.create_post(user, "multi-tenant", ["linkedin"])
    assert not result.success, result
    post = service.get_post_history(user)[0]
    assert post["status"] == "failed", post
    error = _targets(post)["linkedin"]["error"]
    assert "no linkedin account of this user under the global PostForMe key" in error
    assert "no linkedin account of this user under the global LATE key" in error
    assert "SOCIALPOST_SHARED_ACCOUNTS=0" in error
    assert keys.created_accounts() == {"postforme": [], "late": []}
    # The user's own tagged account still serves them.
    mine = _pfm(keys, "linkedin", user)
    assert service.create_post(user, "multi-tenant 2", ["linkedin"]).success
    assert [a for _, _, a in keys.created_accounts()["postforme"]] == [mine]
    # With shared accounts on, the same untagged account serves a user without one.
    monkeypatch.setenv("SOCIALPOST_SHARED_ACCOUNTS", "1")
    assert service.create_post(str(uuid.uuid4()), "brand", ["linkedin"]).success


def test_two_shared_accounts_without_account_ids_fail_that_target_listing_both(
    stack: Stack, keys: Any, redis_url: str
) -> None:
    first, second = _pfm(keys, "linkedin", None), _pfm(keys, "linkedin", None)
    twitter = _pfm(keys, "twitter", None)
    user = str(uuid.uuid4())
    client = _client(redis_url)
    post_id = client.enqueue_post(user, "which page?", ["linkedin", "twitter"])
    post = wait_final(post_id)
    assert post["status"] == "partial", post
    linkedin = _targets(post)["linkedin"]
    assert linkedin["status"] == "failed"
    assert first in linkedin["error"] and second in linkedin["error"]
    assert "account_ids" in linkedin["error"]
    assert _went_to(keys, post_id) == {("postforme", "twitter", twitter)}

    named = client.enqueue_post(user, "this page", ["linkedin"], account_ids={"linkedin": second})
    assert wait_final(named)["status"] == "posted"
    assert _went_to(keys, named) == {("postforme", "linkedin", second)}
    stored = read_post(named)
    assert stored is not None and stored["account_ids"] == {"linkedin": second}


def test_account_ids_naming_another_users_account_is_refused(
    stack: Stack, keys: Any, redis_url: str
) -> None:
    user_a, user_b = str(uuid.uuid4()), str(uuid.uuid4())
    _pfm(keys, "linkedin", user_a)
    acc_b = _pfm(keys, "linkedin", user_b)
    post_id = _client(redis_url).enqueue_post(
        user_a, "on B's page?", ["linkedin"], account_ids={"linkedin": acc_b})
    post = wait_final(post_id)
    assert post["status"] == "failed", post
    error = _targets(post)["linkedin"]["error"]
    assert acc_b in error and "belongs to another user" in error
    assert _went_to(keys, post_id) == set()


def test_global_late_key_with_a_profile_per_user(
    stack: Stack, keys: Any, redis_url: str
) -> None:
    user_a, user_b = str(uuid.uuid4()), str(uuid.uuid4())
    late_a, late_b = _late(keys, "linkedin", user_a), _late(keys, "linkedin", user_b)
    _pfm(keys, "linkedin", user_b)  # B has a PostForMe account too; A does not
    client = _client(redis_url)
    post_a = client.enqueue_post(user_a, "A via LATE", ["linkedin"])
    post = wait_final(post_a)
    assert post["status"] == "posted", post
    # No account of A's under the global PostForMe key: skipped with the reason, then LATE.
    target = _targets(post)["linkedin"]
    assert target["provider"] == "late"
    assert _went_to(keys, post_a) == {("late", "linkedin", late_a)}
    assert all(late_b != a for _, _, a in _went_to(keys, post_a))
    history = [a["error"] or "" for a in post["attempts"]]
    assert any("no linkedin account of this user under the global PostForMe key" in e
               for e in history), history


def test_the_service_ties_new_accounts_to_the_user_and_lists_only_theirs(
    database_url: str, keys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from providers import clear_accounts_cache
    from social_posting_service import SocialPostingService

    monkeypatch.setenv("POSTFORME_API_KEY", GLOBAL_PFM)
    monkeypatch.setenv("LATE_API_KEY", GLOBAL_LATE)
    clear_accounts_cache()
    service = SocialPostingService()
    service.init(database_url)
    user, other = str(uuid.uuid4()), str(uuid.uuid4())
    url = service.get_oauth_url(user, "linkedin", "https://app.example/cb")
    assert url and f"external_id={user}" in url
    sent = [r for r in keys.requests("postforme") if r["path"].endswith("/auth-url")][-1]
    assert sent["external_id"] == user
    mine, brand = _pfm(keys, "linkedin", user), _pfm(keys, "twitter", None)
    _pfm(keys, "linkedin", other)
    listed = {a["id"] for a in service.get_connected_accounts(user)}
    assert listed == {mine, brand}
    monkeypatch.setenv("SOCIALPOST_SHARED_ACCOUNTS", "0")
    assert {a["id"] for a in service.get_connected_accounts(user)} == {mine}
    assert service.get_connected_accounts("user-uuid") == []
    # Only a global LATE key: the connect URL is for the user's own profile.
    monkeypatch.delenv("POSTFORME_API_KEY")
    url = service.get_oauth_url(user, "linkedin", "https://app.example/cb")
    profile = next(r["profile_id"] for r in keys.requests("late")
                   if r["method"] == "POST" and r["path"].endswith("/profiles"))
    assert url and f"profileId={profile}" in url
