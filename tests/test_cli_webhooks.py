"""`socialpost webhooks` against a real database and a real receiving HTTP server; the
ping is delivered in this process through the dispatcher's own passes (no worker)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from standardwebhooks.webhooks import Webhook

from tasks import dispatch, webhook_send
from tests.receiver import Receiver
from tests.test_cli import broker, env, one_error_line, run  # noqa: F401 - fixtures

pytestmark = pytest.mark.usefixtures("env")  # the operator's environment (tests.test_cli)
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver().start()
    yield r
    r.stop()
    from tests.workers import conn

    with conn() as c:  # endpoints are global: no later test's events go to a dead port
        c.execute("DELETE FROM webhook_endpoints WHERE url = %s", (r.url,))


def _deliver_due() -> None:
    dispatch.send_due_once(lambda d, token: print(webhook_send.attempt(d, token)), 100, 60)


def test_add_list_test_deliveries_redeliver_remove(
        receiver: Receiver) -> None:
    added = run("webhooks", "add", "--url", receiver.url, "--events", "post.*,post.target.*")
    assert added.exit_code == 0, added.stderr
    endpoint = re.search(rf"endpoint:\s+({UUID})", added.stdout).group(1)  # type: ignore[union-attr]
    secret = re.search(r"secret:\s+(whsec_\S+)", added.stdout).group(1)  # type: ignore[union-attr]
    assert "never shown again" in added.stderr

    listed = run("webhooks", "list")
    assert listed.exit_code == 0 and endpoint in listed.stdout and "enabled" in listed.stdout
    assert secret not in listed.stdout

    pinged = run("webhooks", "test", endpoint)
    assert pinged.exit_code == 0
    event_id = pinged.stdout.strip()
    _deliver_due()
    [got] = receiver.snapshot()
    assert got.id == event_id and got.event["type"] == "ping"
    Webhook(secret).verify(got.body, got.headers)

    log = run("webhooks", "deliveries", "--endpoint", endpoint)
    assert log.exit_code == 0 and event_id in log.stdout and "ping" in log.stdout
    assert "204" in log.stdout
    assert run("webhooks", "deliveries", "--failed").stdout.count(event_id) == 0

    again = run("webhooks", "redeliver", event_id)
    assert again.exit_code == 0 and "1 delivery" in again.stderr
    _deliver_due()
    assert [d.id for d in receiver.snapshot()] == [event_id, event_id]  # same webhook-id

    assert run("webhooks", "remove", endpoint).exit_code == 0
    gone = run("webhooks", "remove", endpoint)
    assert gone.exit_code == 1 and "no webhook endpoint" in one_error_line(gone)


def test_bad_input_is_one_line_naming_the_field(monkeypatch: pytest.MonkeyPatch) -> None:
    bad_events = run("webhooks", "add", "--url", "https://example.com/h", "--events", "post.x")
    assert bad_events.exit_code == 2 and "event_types" in one_error_line(bad_events)
    scheme = run("webhooks", "add", "--url", "ftp://example.com/h")
    assert scheme.exit_code == 2 and "url" in one_error_line(scheme)
    monkeypatch.setenv("SOCIALPOST_ALLOW_PRIVATE_URLS", "0")
    private = run("webhooks", "add", "--url", "http://127.0.0.1:9/h")
    assert private.exit_code == 2 and "non-public address" in one_error_line(private)
    missing = run("webhooks", "redeliver", "00000000-0000-0000-0000-000000000000")
    assert missing.exit_code == 1 and "no event" in one_error_line(missing)
