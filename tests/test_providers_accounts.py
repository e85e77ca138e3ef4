"""Accounts per user, at the provider clients: over real HTTP against the sandbox, every
create checked at the sandbox for the account it went to (created_accounts).

Shared key: PostForMe accounts tagged `external_id` = user id, LATE accounts in the
profile named by the user id; untagged ones are the organisation's
(SOCIALPOST_SHARED_ACCOUNTS). The user's own key: every account is theirs."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from providers import (
    HttpProvider,
    LateProvider,
    OutcomeKind,
    PostForMeProvider,
    PublishRequest,
    clear_accounts_cache,
)

PROVIDERS = ["postforme", "late"]


@pytest.fixture(autouse=True)
def _fresh_accounts_cache() -> Iterator[None]:
    clear_accounts_cache()
    yield
    clear_accounts_cache()


def _key(sandbox: Any, which: str) -> tuple[HttpProvider, str]:
    """A new key with no accounts yet, and its client."""
    key = f"{which}-shared-{uuid.uuid4().hex[:12]}"
    sandbox.register_key(which, key, [])
    if which == "postforme":
        return PostForMeProvider(key, sandbox.postforme_url), key
    return LateProvider(key, sandbox.late_url), key


def _connect(sandbox: Any, which: str, key: str, platform: str, user: str | None) -> str:
    """One more account: tagged for `user` (PostForMe external_id, LATE profile named by
    the user id), or untagged (the organisation's) when `user` is None."""
    tag = {"external_id": user} if which == "postforme" else {"profile": user}
    return str(sandbox.add_account(which, key, platform, **tag)["id"])


def _publish(
    provider: HttpProvider, user: str | None, platforms: tuple[str, ...] = ("linkedin",),
    source: str = "global", **kwargs: Any,
) -> tuple[Any, str]:
    idem = f"post-{uuid.uuid4()}"
    request = PublishRequest(
        content=f"hello {uuid.uuid4().hex[:8]}", platforms=platforms, idempotency_key=idem,
        user_id=user, credential_source=source, **kwargs,
    )
    return provider.publish(request, allow_partial=True), idem


def _went_to(sandbox: Any, which: str, idem: str) -> list[tuple[str, str]]:
    """(platform, account id) of each account the post `idem` was created on."""
    return [(p, a) for k, p, a in sandbox.created_accounts()[which] if k == idem]


@pytest.mark.parametrize("which", PROVIDERS)
def test_two_tenants_on_one_shared_key_each_get_their_own_account(
    sandbox: Any, which: str
) -> None:
    provider, key = _key(sandbox, which)
    user_a, user_b = str(uuid.uuid4()), str(uuid.uuid4())
    acc_a = _connect(sandbox, which, key, "linkedin", user_a)
    acc_b = _connect(sandbox, which, key, "linkedin", user_b)
    for user, account in ((user_a, acc_a), (user_b, acc_b), (user_a, acc_a)):
        outcome, idem = _publish(provider, user)
        assert outcome.kind is OutcomeKind.PUBLISHED, outcome
        assert _went_to(sandbox, which, idem) == [("linkedin", account)]


@pytest.mark.parametrize("which", PROVIDERS)
def test_a_user_without_an_account_is_never_given_another_users(
    sandbox: Any, which: str
) -> None:
    provider, key = _key(sandbox, which)
    _connect(sandbox, which, key, "linkedin", str(uuid.uuid4()))
    outcome, idem = _publish(provider, str(uuid.uuid4()))
    assert outcome.kind is OutcomeKind.NO_ACCOUNT
    assert outcome.missing_platforms == ("linkedin",) and not outcome.refused_platforms
    why = outcome.account_errors["linkedin"]
    assert why == f"no linkedin account of this user under the global {provider.name} key"
    assert sandbox.created_accounts()[which] == []


@pytest.mark.parametrize("which", PROVIDERS)
def test_an_untagged_shared_account_serves_users_without_their_own(
    sandbox: Any, which: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    provider, key = _key(sandbox, which)
    brand = _connect(sandbox, which, key, "linkedin", None)
    user, owner = str(uuid.uuid4()), str(uuid.uuid4())
    outcome, idem = _publish(provider, user)
    assert outcome.kind is OutcomeKind.PUBLISHED
    assert _went_to(sandbox, which, idem) == [("linkedin", brand)]
    # The user's own account wins over the shared one.
    own = _connect(sandbox, which, key, "linkedin", owner)
    clear_accounts_cache()
    outcome, idem = _publish(provider, owner)
    assert _went_to(sandbox, which, idem) == [("linkedin", own)]
    # Multi-tenant: no one may use the untagged account.
    monkeypatch.setenv("SOCIALPOST_SHARED_ACCOUNTS", "0")
    outcome, idem = _publish(provider, user)
    assert outcome.kind is OutcomeKind.NO_ACCOUNT
    assert "SOCIALPOST_SHARED_ACCOUNTS=0" in outcome.account_errors["linkedin"]
    assert _went_to(sandbox, which, idem) == []
    named, idem = _publish(provider, user, account_ids={"linkedin": brand})
    assert named.refused_platforms == ("linkedin",)
    assert "shared account" in named.account_errors["linkedin"]
    outcome, idem = _publish(provider, owner)  # own accounts are unaffected
    assert _went_to(sandbox, which, idem) == [("linkedin", own)]


@pytest.mark.parametrize("which", PROVIDERS)
def test_two_shared_accounts_need_account_ids(sandbox: Any, which: str) -> None:
    provider, key = _key(sandbox, which)
    first = _connect(sandbox, which, key, "linkedin", None)
    second = _connect(sandbox, which, key, "linkedin", None)
    twitter = _connect(sandbox, which, key, "twitter", None)
    user = str(uuid.uuid4())
    outcome, idem = _publish(provider, user, ("linkedin", "twitter"))
    # The unambiguous platform goes out; the ambiguous one is refused, listing both.
    assert outcome.kind is OutcomeKind.PUBLISHED
    assert _went_to(sandbox, which, idem) == [("twitter", twitter)]
    assert outcome.refused_platforms == ("linkedin",)
    why = outcome.account_errors["linkedin"]
    assert first in why and second in why and "account_ids" in why
    outcome, idem = _publish(provider, user, account_ids={"linkedin": second})
    assert outcome.kind is OutcomeKind.PUBLISHED
    assert _went_to(sandbox, which, idem) == [("linkedin", second)]


@pytest.mark.parametrize("which", PROVIDERS)
def test_account_ids_naming_another_users_account_is_refused(sandbox: Any, which: str) -> None:
    provider, key = _key(sandbox, which)
    user_a, user_b = str(uuid.uuid4()), str(uuid.uuid4())
    _connect(sandbox, which, key, "linkedin", user_a)
    acc_b = _connect(sandbox, which, key, "linkedin", user_b)
    outcome, idem = _publish(provider, user_a, account_ids={"linkedin": acc_b})
    assert outcome.kind is OutcomeKind.NO_ACCOUNT
    assert outcome.refused_platforms == ("linkedin",)
    assert "belongs to another user" in outcome.account_errors["linkedin"]
    assert sandbox.created_accounts()[which] == []
    # A named account not under this key at all: not refused, this step just cannot serve.
    outcome, _ = _publish(provider, user_a, account_ids={"linkedin": "acc-elsewhere"})
    assert outcome.missing_platforms == ("linkedin",) and not outcome.refused_platforms
    # A named account of the wrong platform is refused.
    tw = _connect(sandbox, which, key, "twitter", user_a)
    clear_accounts_cache()
    outcome, _ = _publish(provider, user_a, account_ids={"linkedin": tw})
    assert outcome.refused_platforms == ("linkedin",)
    assert "twitter account" in outcome.account_errors["linkedin"]


@pytest.mark.parametrize("which", PROVIDERS)
def test_on_the_users_own_key_every_account_is_theirs(sandbox: Any, which: str) -> None:
    provider, key = _key(sandbox, which)
    other = str(uuid.uuid4())
    tagged = _connect(sandbox, which, key, "linkedin", other)  # tags do not matter here
    outcome, idem = _publish(provider, str(uuid.uuid4()), source="user")
    assert outcome.kind is OutcomeKind.PUBLISHED
    assert _went_to(sandbox, which, idem) == [("linkedin", tagged)]
    # ...but two of them for one platform are still a choice to make, never "the first".
    second = _connect(sandbox, which, key, "linkedin", None)
    clear_accounts_cache()
    outcome, idem = _publish(provider, str(uuid.uuid4()), source="user")
    assert outcome.refused_platforms == ("linkedin",)
    outcome, idem = _publish(provider, None, source="user", account_ids={"linkedin": second})
    assert _went_to(sandbox, which, idem) == [("linkedin", second)]


@pytest.mark.parametrize("which", PROVIDERS)
def test_provider_tied_only_mode_skips_shared_accounts(sandbox: Any, which: str) -> None:
    """shared_accounts=False (the seed service without its database): only accounts the
    provider itself ties to the user."""
    provider, key = _key(sandbox, which)
    _connect(sandbox, which, key, "linkedin", None)
    user = str(uuid.uuid4())
    outcome, _ = _publish(provider, user, shared_accounts=False)
    assert outcome.kind is OutcomeKind.NO_ACCOUNT
    own = _connect(sandbox, which, key, "linkedin", user)
    clear_accounts_cache()
    outcome, idem = _publish(provider, user, shared_accounts=False)
    assert _went_to(sandbox, which, idem) == [("linkedin", own)]


def test_postforme_oauth_url_tags_the_account_with_the_user(sandbox: Any) -> None:
    provider, _ = _key(sandbox, "postforme")
    user = str(uuid.uuid4())
    url = provider.get_oauth_url("twitter", "https://app.example/cb", user_id=user)
    assert url and f"external_id={user}" in url
    sent = [r for r in sandbox.requests("postforme") if r["path"].endswith("/auth-url")][-1]
    assert sent["external_id"] == user and sent["redirect_url"] == "https://app.example/cb"


def test_late_oauth_url_on_a_shared_key_uses_the_users_profile(sandbox: Any) -> None:
    provider, key = _key(sandbox, "late")
    assert isinstance(provider, LateProvider)
    user = str(uuid.uuid4())
    url = provider.get_oauth_url("linkedin", "https://app.example/cb", user_id=user,
                                 shared_key=True)
    made = [r for r in sandbox.requests("late") if r["method"] == "POST"
            and r["path"].endswith("/profiles")]
    assert len(made) == 1 and made[0]["profile_name"] == user
    profile = made[0]["profile_id"]
    assert url and f"profileId={profile}" in url
    connects = [r for r in sandbox.requests("late") if "/connect/" in r["path"]]
    assert connects[-1]["profile_id"] == profile
    # The second connect finds the profile: no new one.
    provider.get_oauth_url("twitter", "https://app.example/cb", user_id=user, shared_key=True)
    assert len([r for r in sandbox.requests("late") if r["method"] == "POST"]) == 1
    assert [r for r in sandbox.requests("late") if "/connect/" in r["path"]][-1][
        "profile_id"] == profile
    # An account connected into that profile is the user's.
    acc = sandbox.add_account("late", key, "linkedin", profile=user)
    assert acc["profile_id"] == profile
    outcome, idem = _publish(provider, user)
    assert _went_to(sandbox, "late", idem) == [("linkedin", acc["id"])]
