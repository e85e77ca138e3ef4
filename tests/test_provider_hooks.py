"""Reading provider webhooks (tasks/provider_hooks.py): a webhook must say what the REST
answer the confirmation poll reads says, despite LATE's other field names (`id`,
`publishedUrl`, `error`), and a body that is not an event is refused naming the field.
Pure: no process, no network."""

from __future__ import annotations

import pytest

from providers.late import LateProvider
from tasks.provider_hooks import BadEvent, parse_late, parse_postforme

REST_PUBLISHED = {"platform": "twitter", "accountId": "a1", "status": "published",
                  "platformPostId": "123", "platformPostUrl": "https://x.com/u/status/123",
                  "publishedAt": "2026-01-01T10:00:00.000Z", "errorMessage": None}
HOOK_PUBLISHED = {"platform": "twitter", "accountId": "a1", "status": "published",
                  "platformPostId": "123", "publishedUrl": "https://x.com/u/status/123",
                  "publishedAt": "2026-01-01T10:00:00.000Z", "error": None}
REST_FAILED = {"platform": "linkedin", "accountId": "a2", "status": "failed",
               "errorMessage": "Text exceeds the 3000 character limit"}
HOOK_FAILED = {"platform": "linkedin", "accountId": "a2", "status": "failed",
               "error": "Text exceeds the 3000 character limit"}


@pytest.mark.parametrize(("rest", "hook"), [(REST_PUBLISHED, HOOK_PUBLISHED),
                                            (REST_FAILED, HOOK_FAILED)])
def test_a_late_webhook_reads_as_the_rest_answer_the_poll_reads(
        rest: dict[str, object], hook: dict[str, object]) -> None:
    polled = LateProvider("sk_unused_key_0000")._targets({"platforms": [rest]}, {})
    event = parse_late({"event": f"post.platform.{hook['status']}", "post": {
        "id": "p1", "platforms": [hook]}, "platform": hook}, None, "evt_1")
    assert event.results == polled
    assert (event.provider_post_id, event.event_id, event.final) == ("p1", "evt_1", True)


def test_a_late_post_event_speaks_for_every_finished_platform() -> None:
    pending = {"platform": "threads", "status": "pending"}
    event = parse_late({"id": "evt_2", "event": "post.partial", "post": {
        "_id": "p2", "platforms": [HOOK_PUBLISHED, HOOK_FAILED, pending]}}, None, None)
    assert set(event.results) == {"twitter", "linkedin"}  # pending decides nothing
    assert event.event_id == "evt_2" and event.provider_post_id == "p2"


def test_other_late_events_are_acknowledged_without_results() -> None:
    event = parse_late({"event": "account.connected", "account": {}}, None, "evt_3")
    assert event.provider_post_id is None and not event.results


def test_a_postforme_failure_waits_for_the_poll_and_an_unnamed_account_too() -> None:
    data: dict[str, object] = {
        "id": "spr_1", "post_id": "sp_1", "social_account_id": "spc_1", "platform": "x",
        "success": False, "error": "Internal error while publishing, please retry"}
    body = {"event_type": "social.post.result.created", "data": data}
    event = parse_postforme(body)
    assert event.final is False  # PostForMe may yet retry it into a success
    assert event.results["twitter"].error_class == "provider"
    del data["platform"]  # as the real results: the account only
    unplaced = parse_postforme(body)
    assert unplaced.results == {} and unplaced.unplaced is not None
    assert unplaced.unplaced.error_class == "provider" and unplaced.unplaced.success is False


@pytest.mark.parametrize(("body", "field"), [
    ([], "body"),
    ({"event_type": "nope", "data": {}}, "event_type"),
    ({"event_type": "social.post.result.created", "data": {"post_id": "sp"}}, "data.id"),
    ({"event_type": "social.post.result.created", "data": {"id": "r", "post_id": "sp"}},
     "data.success"),
])
def test_a_bad_postforme_body_names_its_field(body: object, field: str) -> None:
    with pytest.raises(BadEvent, match=rf"^{field}:"):
        parse_postforme(body)


@pytest.mark.parametrize(("body", "event_id", "field"), [
    ({"event": "post.platform.published"}, None, "X-Zernio-Event-Id"),
    ({"event": "post.platform.published", "post": {"id": "p"}}, "e", "platform"),
    ({"event": "post.published", "post": {"id": "p"}}, "e", "post.platforms"),
    ({"event": "made.up"}, "e", "event"),
])
def test_a_bad_late_body_names_its_field(body: object, event_id: str | None,
                                         field: str) -> None:
    with pytest.raises(BadEvent, match=rf"^{field}:"):
        parse_late(body, None, event_id)
