"""`account_ids` at intake: what can be told without asking a provider (the platform is
known and one the post is for, the id is a plausible string) is refused here, naming
the field; whether the user may use the account is decided at send time."""

from __future__ import annotations

import uuid

import pytest

from tasks.validation import InvalidRequest, check_publish_input


def _check(account_ids: object, platforms: list[str] | None = None) -> dict[str, str]:
    return check_publish_input(
        user_id=str(uuid.uuid4()), content="hello", platforms=platforms or ["linkedin", "x"],
        account_ids=account_ids,
    ).account_ids


def test_account_ids_are_normalised_by_platform() -> None:
    assert _check({"x": "acc-1", "LinkedIn": "acc-2"}) == {"twitter": "acc-1",
                                                           "linkedin": "acc-2"}
    assert _check(None) == {} and _check({}) == {}


@pytest.mark.parametrize(("value", "problem"), [
    (["acc-1"], "account_ids: must map platform names to account ids"),
    ({"myspace": "acc-1"}, "account_ids: unknown platform"),
    ({"bluesky": "acc-1"}, "account_ids[bluesky]: the post is not for bluesky"),
    ({"linkedin": ""}, "account_ids[linkedin]: must be a non-empty account id string"),
    ({"linkedin": 7}, "account_ids[linkedin]: must be a non-empty account id string"),
    ({"linkedin": "a b"}, "account_ids[linkedin]: not an account id"),
    ({"x": "a", "twitter": "b"}, "account_ids[twitter]: two accounts named for one platform"),
])
def test_bad_account_ids_are_refused_naming_the_field(value: object, problem: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        _check(value)
    assert any(p.startswith(problem) for p in info.value.problems), info.value.problems
