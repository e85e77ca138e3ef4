"""Input checks before anything is stored or sent (tasks/validation.py), and the credential
chain every attempt walks (tasks/chain.py). Pure functions: no database, no network
(media hosts are IP literals, so checking them resolves nothing over the wire)."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from providers.platforms import VALID_PLATFORMS
from tasks import validation
from tasks.chain import (
    CHAIN,
    Step,
    build_chain,
    global_keys,
    idempotency_key,
    step_at_or_after,
)
from tasks.validation import (
    MAX_CONTENT_CHARS,
    MAX_MEDIA_ITEMS,
    InvalidRequest,
    PublishInput,
    check_publish_input,
)

NOW = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
USER = "6f1c2a9e-2f5b-4c1e-9a57-0d6f3b8f4a11"
IMG = "https://cdn.example/a.jpg"
VID = "https://cdn.example/v.mp4"
PUBLIC_IMG = "https://93.184.216.34/a.jpg"  # a public address literal: nothing to resolve
PROBLEM = re.compile(r"^[A-Za-z_]+(\[\d+\])?(\.[A-Za-z_]+)*: \S")


def check(**overrides: Any) -> PublishInput:
    request: dict[str, Any] = {"user_id": USER, "content": "Hello", "platforms": ["twitter"]}
    request.update(overrides)
    return check_publish_input(now=NOW, **request)


def problems(**overrides: Any) -> list[str]:
    with pytest.raises(InvalidRequest) as info:
        check(**overrides)
    found = info.value.problems
    assert found, "InvalidRequest without a problem"
    for p in found:
        assert PROBLEM.match(p), f"not 'field: rule': {p!r}"
    return found


def one(**overrides: Any) -> str:
    found = problems(**overrides)
    assert len(found) == 1, found
    return found[0]


# -- a valid request --------------------------------------------------------------------------


def test_a_valid_request_comes_back_typed() -> None:
    post_id, campaign_id = uuid.uuid4(), uuid.uuid4()
    data = check(
        content="Launch day",
        platforms=["X", "linkedin", "twitter"],
        media_urls=[IMG],
        post_id=str(post_id),
        campaign_id=campaign_id,
        batch_number=3,
        platform_options={"linkedin": {"visibility": "PUBLIC"}},
    )
    assert data == PublishInput(
        user_id=uuid.UUID(USER),
        content="Launch day",
        platforms=("twitter", "linkedin"),  # "X" is twitter; duplicates dropped, order kept
        media_urls=(IMG,),
        scheduled_for=None,
        campaign_id=campaign_id,
        batch_number=3,
        post_id=post_id,
        platform_options={"linkedin": {"visibility": "PUBLIC"}},
    )
    assert data.due_now(NOW)


def test_invalid_request_is_a_value_error_listing_every_problem() -> None:
    with pytest.raises(ValueError) as info:
        check(
            user_id="someone",
            content="",
            platforms=["twitter", "myspace"],
            scheduled_for="2026-06-02T09:00:00",
            batch_number=0,
        )
    exc = info.value
    assert isinstance(exc, InvalidRequest)
    assert exc.fields == ["user_id", "content", "platforms", "scheduled_for", "batch_number"]
    assert str(exc) == "; ".join(exc.problems)


def test_platform_rules_are_listed_with_the_other_problems() -> None:
    """A bad id must not hide that the caption is too long: every problem in one answer."""
    found = problems(user_id="nope", post_id="123", content="x" * 281)
    fields = [p.split(":", 1)[0] for p in found]
    assert fields == ["user_id", "post_id", "content"]
    assert "twitter allows 280" in found[2]


def test_a_faulted_field_is_reported_once() -> None:
    assert one(platforms=["instagram"], media_urls=["ftp://cdn.example/a.jpg"]) == (
        "media_urls[0]: media URL must use http or https, got scheme 'ftp'"
    )
    too_many = [IMG] * (MAX_MEDIA_ITEMS + 1)
    assert one(platforms=["instagram"], media_urls=too_many) == (
        f"media_urls: at most {MAX_MEDIA_ITEMS} items, got {MAX_MEDIA_ITEMS + 1}"
    )


# -- ids and types ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"user_id": None}, "user_id: is required (a UUID)"),
        ({"user_id": ""}, "user_id: is required (a UUID)"),
        ({"user_id": "not-a-uuid"}, "user_id: must be a UUID, got 'not-a-uuid'"),
        ({"user_id": 42}, "user_id: must be a UUID string, got int"),
        ({"post_id": "123"}, "post_id: must be a UUID, got '123'"),
        ({"post_id": ["x"]}, "post_id: must be a UUID string, got list"),
        ({"campaign_id": "c-1"}, "campaign_id: must be a UUID, got 'c-1'"),
        ({"batch_number": "3"}, "batch_number: must be an integer, got str"),
        ({"batch_number": True}, "batch_number: must be an integer, got bool"),
        ({"batch_number": 2.0}, "batch_number: must be an integer, got float"),
        ({"batch_number": 0}, "batch_number: must be >= 1, got 0"),
        ({"content": None}, "content: must be a string, got NoneType"),
        ({"content": 12}, "content: must be a string, got int"),
        ({"platforms": "twitter"}, "platforms: must be a list of strings, got str"),
        ({"platforms": None}, "platforms: must name at least one platform"),
        ({"platforms": []}, "platforms: must name at least one platform"),
        ({"platforms": ["twitter", 3]}, "platforms[1]: must be a string, got int"),
        ({"media_urls": IMG}, "media_urls: must be a list of strings, got str"),
        ({"media_urls": [IMG, None]}, "media_urls[1]: must be a string, got NoneType"),
        ({"platform_options": ["x"]}, "platform_options: must map platform names to objects"),
        (
            {"platform_options": {"youtube": "title"}},
            "platform_options: must map platform names to objects",
        ),
        ({"scheduled_for": 1780304400}, "scheduled_for: must be an ISO 8601 string, got int"),
        (
            {"scheduled_for": "next tuesday"},
            "scheduled_for: must be ISO 8601 with an offset, got 'next tuesday'",
        ),
    ],
)
def test_wrong_values_and_types(overrides: dict[str, Any], expected: str) -> None:
    assert one(**overrides) == expected


def test_long_values_are_shortened_in_messages() -> None:
    message = one(user_id="u" * 500)
    assert message.startswith("user_id: must be a UUID, got 'uuu")
    assert message.endswith("...") and len(message) < 120


def test_ids_may_be_uuid_objects() -> None:
    uid = uuid.UUID(USER)
    assert check(user_id=uid).user_id == uid


# -- content ----------------------------------------------------------------------------------


@pytest.mark.parametrize("content", ["", "   ", "\n\t "])
def test_empty_content_is_refused(content: str) -> None:
    assert one(content=content) == "content: must not be empty"


def test_oversized_content_is_refused_before_platform_rules() -> None:
    text = "x" * (MAX_CONTENT_CHARS + 1)
    assert one(content=text, platforms=["facebook"]) == (
        f"content: at most {MAX_CONTENT_CHARS} characters, got {MAX_CONTENT_CHARS + 1}"
    )


def test_control_characters_are_refused_but_newlines_and_tabs_are_fine() -> None:
    assert one(content="bell\x07") == (
        "content: must not contain control characters other than newline and tab"
    )
    assert check(content="line one\r\nline\ttwo").content == "line one\r\nline\ttwo"


# -- platforms --------------------------------------------------------------------------------


def test_an_unknown_platform_lists_the_valid_ones() -> None:
    message = one(platforms=["twitter", "myspace", "friendster"])
    assert message.startswith("platforms: unknown platform 'myspace', 'friendster'; valid: ")
    for name in VALID_PLATFORMS:
        assert name in message


def test_platform_names_are_normalised() -> None:
    assert check(platforms=[" Twitter ", "x", "LinkedIn"]).platforms == ("twitter", "linkedin")


def test_twitter_allows_280_characters() -> None:
    assert check(content="a" * 280).content == "a" * 280
    assert one(content="a" * 281) == (
        "content: twitter allows 280 characters (URLs count 23), got 281"
    )


def test_twitter_counts_a_url_as_23() -> None:
    url = "https://example.com/" + "p" * 200
    text = "a" * (280 - 24) + " " + url  # 256 + 1 + 23 = 280
    assert check(content=text).content == text
    assert "got 281" in one(content="a" + text)


def test_each_platform_applies_its_own_text_limit() -> None:
    text = "y" * 301
    found = problems(content=text, platforms=["twitter", "bluesky", "threads", "linkedin"])
    assert found == [
        "content: twitter allows 280 characters (URLs count 23), got 301",
        "content: bluesky allows 300 graphemes, got 301",
    ]


def test_bluesky_counts_graphemes() -> None:
    flags = "\U0001f1eb\U0001f1f7" * 300  # 300 flags, 600 code points
    assert check(content=flags, platforms=["bluesky"]).content == flags
    assert one(content=flags + "!", platforms=["bluesky"]) == (
        "content: bluesky allows 300 graphemes, got 301"
    )


@pytest.mark.parametrize(
    ("platforms", "media", "expected"),
    [
        (["instagram"], [], "media_urls: instagram requires media: at least one image or video"),
        (["youtube"], [IMG], "media_urls: youtube requires exactly one video, got"),
        (["pinterest"], [VID], "media_urls: pinterest requires exactly one image, got"),
        (["twitter"], [IMG] * 5, "media_urls: twitter allows 4 images or 1 video, got 5 images"),
    ],
)
def test_media_rules_per_platform(platforms: list[str], media: list[str], expected: str) -> None:
    required = {"youtube": {"title": "t"}, "pinterest": {"board_id": "b1"}}
    overrides = {p: required[p] for p in platforms if p in required}
    assert one(platforms=platforms, media_urls=media, overrides=overrides).startswith(expected)


def test_youtube_title_limit() -> None:
    assert (
        one(
            platforms=["youtube"],
            media_urls=[VID],
            platform_options={"youtube": {"title": "t" * 101}},
        )
        == "platform_options.youtube.title: youtube allows a title of 100 characters, got 101"
    )


def test_pinterest_needs_a_board() -> None:
    assert one(platforms=["pinterest"], media_urls=[IMG]) == (
        "overrides.pinterest.board_id: pinterest needs a board to pin to")
    # the older raw platform_options carry one too
    options = {"pinterest": {"board_ids": ["b1"]}}
    assert check(platforms=["pinterest"], media_urls=[IMG],
                 platform_options=options).platforms == ("pinterest",)


# -- huge lists -------------------------------------------------------------------------------


def test_too_many_media_urls() -> None:
    urls = [f"https://cdn.example/{i}.jpg" for i in range(MAX_MEDIA_ITEMS + 1)]
    assert one(media_urls=urls) == (
        f"media_urls: at most {MAX_MEDIA_ITEMS} items, got {MAX_MEDIA_ITEMS + 1}"
    )


def test_too_many_platforms() -> None:
    assert one(platforms=["twitter"] * 21) == "platforms: at most 20 items, got 21"


def test_a_huge_list_is_refused_without_checking_each_item() -> None:
    assert one(media_urls=[None] * 100_000) == "media_urls: at most 35 items, got 100000"


# -- scheduled_for ----------------------------------------------------------------------------


def test_naive_datetimes_are_refused() -> None:
    expected = "scheduled_for: must carry a UTC offset (e.g. 2026-06-01T09:00:00+00:00)"
    assert one(scheduled_for=datetime(2026, 6, 2, 9, 0)) == expected
    assert one(scheduled_for="2026-06-02T09:00:00") == expected


@pytest.mark.parametrize(
    "value",
    [
        "2026-06-02T09:00:00Z",
        "2026-06-02T09:00:00z",
        "2026-06-02T11:00:00+02:00",
        " 2026-06-02T04:00:00-05:00 ",
        datetime(2026, 6, 2, 18, 0, tzinfo=timezone(timedelta(hours=9))),
    ],
)
def test_aware_times_are_stored_in_utc(value: object) -> None:
    data = check(scheduled_for=value)
    assert data.scheduled_for == datetime(2026, 6, 2, 9, 0, tzinfo=UTC)
    assert data.scheduled_for is not None and data.scheduled_for.tzinfo is UTC
    assert not data.due_now(NOW)
    assert data.due_now(NOW + timedelta(days=1))


def test_a_little_in_the_past_publishes_now() -> None:
    when = NOW - validation.max_past() + timedelta(seconds=1)
    data = check(scheduled_for=when)
    assert data.scheduled_for == when
    assert data.due_now(NOW)


def test_too_far_in_the_past_is_refused() -> None:
    when = NOW - validation.max_past() - timedelta(seconds=1)
    seconds = int(validation.max_past().total_seconds())
    assert one(scheduled_for=when) == (
        f"scheduled_for: {when.isoformat()} is more than {seconds} s in the past; "
        "send null to publish now"
    )


def test_at_most_365_days_ahead() -> None:
    assert check(scheduled_for=NOW + timedelta(days=365)).scheduled_for is not None
    assert one(scheduled_for=NOW + timedelta(days=365, seconds=1)) == (
        "scheduled_for: at most 365 days ahead"
    )


def test_empty_scheduled_for_means_now() -> None:
    assert check(scheduled_for="").scheduled_for is None
    assert check(scheduled_for=None).due_now()


# -- media URLs -------------------------------------------------------------------------------


@pytest.fixture
def public_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """tests/conftest.py allows private URLs for the sandbox; production does not."""
    monkeypatch.delenv("SOCIALPOST_ALLOW_PRIVATE_URLS", raising=False)


@pytest.mark.usefixtures("public_only")
@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/a.jpg",
        "http://127.9.9.9:8080/a.jpg",
        "http://[::1]/a.jpg",
        "http://10.0.0.5/a.jpg",
        "http://172.16.3.4/a.jpg",
        "http://192.168.1.10/a.jpg",
        "http://169.254.169.254/latest/meta-data",  # cloud metadata
        "http://0.0.0.0/a.jpg",
        "http://[::ffff:127.0.0.1]/a.jpg",  # IPv4-mapped loopback
    ],
)
def test_media_on_loopback_or_private_addresses_is_refused(url: str) -> None:
    message = one(media_urls=[url])
    assert message.startswith("media_urls[0]: media host ")
    assert "non-public address" in message


@pytest.mark.usefixtures("public_only")
def test_media_on_a_public_address_is_accepted() -> None:
    assert check(media_urls=[PUBLIC_IMG]).media_urls == (PUBLIC_IMG,)


@pytest.mark.usefixtures("public_only")
def test_each_bad_media_url_is_named_by_position() -> None:
    found = problems(media_urls=[PUBLIC_IMG, "http://10.1.2.3/x.png", "ftp://93.184.216.34/x"])
    assert [p.split(":", 1)[0] for p in found] == ["media_urls[1]", "media_urls[2]"]


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "ftp://cdn.example/a.jpg",
            "media_urls[0]: media URL must use http or https, got scheme 'ftp'",
        ),
        (
            "file:///etc/passwd",
            "media_urls[0]: media URL must use http or https, got scheme 'file'",
        ),
        ("cdn.example/a.jpg", "media_urls[0]: media URL must use http or https, got scheme 'none'"),
        ("https:///a.jpg", "media_urls[0]: media URL has no host"),
        ("   ", "media_urls[0]: media URL is empty"),
        ("http://cdn.example:99999/a.jpg", "media_urls[0]: media URL is malformed"),
    ],
)
def test_media_url_must_be_http_with_a_host(url: str, expected: str) -> None:
    assert one(media_urls=[url]) == expected


def test_private_media_is_allowed_when_the_switch_is_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOCIALPOST_ALLOW_PRIVATE_URLS", "1")
    assert check(media_urls=["http://127.0.0.1:8080/a.jpg"]).media_urls == (
        "http://127.0.0.1:8080/a.jpg",
    )


# -- the credential chain ---------------------------------------------------------------------

USER_KEYS = {"postforme": "pfm-user-SECRET-1", "late": "sk_late-user-SECRET-2"}
GLOBAL_KEYS = {"postforme": "pfm-global-SECRET-3", "late": "sk_late-global-SECRET-4"}


def test_chain_order_is_user_then_global_postforme_before_late() -> None:
    chain = build_chain(USER_KEYS, GLOBAL_KEYS)
    assert [(s.index, s.source, s.provider, s.api_key) for s in chain] == [
        (0, "user", "postforme", "pfm-user-SECRET-1"),
        (1, "user", "late", "sk_late-user-SECRET-2"),
        (2, "global", "postforme", "pfm-global-SECRET-3"),
        (3, "global", "late", "sk_late-global-SECRET-4"),
    ]
    assert [s.label for s in chain] == [
        "PostForMe (user)",
        "LATE (user)",
        "PostForMe (global)",
        "LATE (global)",
    ]
    assert [(s.source, s.provider) for s in chain] == list(CHAIN)


@pytest.mark.parametrize(
    ("user", "globals_", "indices"),
    [
        ({}, {}, []),
        ({"late": "u"}, {}, [1]),
        ({}, {"postforme": "g"}, [2]),
        ({"postforme": "u"}, {"late": "g"}, [0, 3]),
        ({"late": "u"}, {"postforme": "g", "late": "g2"}, [1, 2, 3]),
        ({"postforme": "", "late": "u"}, {"postforme": ""}, [1]),  # empty keys are absent
    ],
)
def test_absent_steps_are_skipped_and_indices_stay_stable(
    user: dict[str, str], globals_: dict[str, str], indices: list[int]
) -> None:
    assert [s.index for s in build_chain(user, globals_)] == indices


def test_global_keys_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POSTFORME_API_KEY", "pfm-env")
    monkeypatch.setenv("LATE_API_KEY", "   ")  # blank: not configured
    assert global_keys() == {"postforme": "pfm-env"}
    chain = build_chain({"late": "u"})
    assert [(s.index, s.api_key) for s in chain] == [(1, "u"), (2, "pfm-env")]
    assert build_chain({"late": "u"}, {}) == [Step(1, "user", "late", "u")]  # explicit: no env


def test_step_at_or_after() -> None:
    chain = build_chain({"postforme": "u"}, {"late": "g"})
    assert step_at_or_after(chain, 0) is chain[0]
    assert step_at_or_after(chain, 1) is chain[1]  # 1 and 2 absent: global LATE
    assert step_at_or_after(chain, 3) is chain[1]
    assert step_at_or_after(chain, 4) is None
    assert step_at_or_after([], 0) is None


def test_idempotency_keys_are_per_post_and_step() -> None:
    post = str(uuid.uuid4())
    assert idempotency_key(post, 0) == idempotency_key(post, 0)  # a retry reuses it
    keys = {idempotency_key(post, i) for i in range(4)}
    assert len(keys) == 4  # a new step is a new provider post
    assert all(k.startswith(post) for k in keys)
    assert idempotency_key(str(uuid.uuid4()), 0) not in keys
    assert idempotency_key(post, 2) == f"{post}-s2"


def test_a_step_never_shows_its_key() -> None:
    chain = build_chain(USER_KEYS, GLOBAL_KEYS)
    shown = " ".join(
        [repr(chain), str(chain), f"{chain[0]}", f"{chain[1]!r}", str({"s": chain[2]})]
    )
    shown += "Step: %s" % chain[3]  # noqa: UP031 -- the %-formatting loggers use
    assert "SECRET" not in shown
    assert repr(chain[0]) == "Step(0, PostForMe (user))"
    assert str(chain[3]) == "Step(3, LATE (global))"


def test_steps_compare_by_value() -> None:
    assert build_chain(USER_KEYS, {}) == build_chain(dict(USER_KEYS), {})
    with pytest.raises(AttributeError):
        build_chain(USER_KEYS, {})[0].api_key = "other"  # type: ignore[misc]


def test_flower_sees_a_publish_message_summed_up_not_whole() -> None:
    from tasks.client import SUMMARY_TEXT, kwargs_summary

    text = "x" * 5000
    shown = kwargs_summary({"user_id": "u1", "content": text, "platforms": ["twitter"],
                            "media_urls": None, "post_id": "p1"})
    assert shown.startswith("{'user_id': 'u1', 'content': '" + "x" * SUMMARY_TEXT + "…'")
    assert "media_urls" not in shown and "'post_id': 'p1'" in shown
    assert len(shown) < 200


def test_a_callback_needs_its_queue() -> None:
    """Sent by our routing, a producer's task would land on our default queue, where our
    workers drop a task they do not know."""
    assert one(notify_task="producer.on_event").startswith("notify_queue: required")
    assert check(notify_task="producer.on_event", notify_queue="producer").notify_queue
