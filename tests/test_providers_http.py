"""HTTP plumbing: Retry-After parsing, error text, settings, sessions and deadlines."""

from __future__ import annotations

import email.utils
import logging
import threading
import time
import uuid
from typing import Any

import pytest

from providers import (
    LateProvider,
    OutcomeKind,
    PostForMeProvider,
    PublishRequest,
    config,
    max_request_seconds,
)
from providers.http import error_message, retry_after_seconds, session_for
from settings import SettingsError


def test_retry_after_seconds_and_dates() -> None:
    now = 1_700_000_000.0
    assert retry_after_seconds({"Retry-After": "12"}, now) == 12
    date = email.utils.formatdate(now + 30, usegmt=True)
    assert retry_after_seconds({"retry-after": date}, now) == pytest.approx(30, abs=1)
    assert retry_after_seconds({"X-RateLimit-Reset": str(int(now) + 45)}, now) == 45
    assert retry_after_seconds({"X-Rate-Limit-Reset": "9"}, now) == 9
    assert retry_after_seconds({"X-RateLimit-Reset": str(int(now) - 5)}, now) == 0
    assert retry_after_seconds({}, now) is None
    assert retry_after_seconds({"Retry-After": "soon"}, now) is None


def test_error_message_shapes() -> None:
    nest = {"statusCode": 400, "message": "Validation failed", "errors": ["caption: required"]}
    assert error_message(nest, "") == "Validation failed: caption: required"
    late = {"error": "Account not found", "type": "invalid_request_error", "code": 400}
    assert error_message(late, "") == "Account not found"
    assert error_message(None, "<html>Bad gateway</html>") == "<html>Bad gateway</html>"
    assert error_message(None, "") == "(empty answer)"


def test_settings_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOCIALPOST_CONNECT_TIMEOUT", "2")
    monkeypatch.setenv("POSTFORME_READ_TIMEOUT", "10")
    monkeypatch.setenv("LATE_READ_TIMEOUT", "200")
    assert max_request_seconds("postforme") == 12
    assert max_request_seconds("late") == 202
    assert max_request_seconds() == 202
    provider = LateProvider("k", "http://127.0.0.1:9/x")
    assert provider.connect_timeout == 2 and provider.read_timeout == 200
    assert provider.max_request_seconds == 202
    custom = PostForMeProvider("k", "http://127.0.0.1:9/x", connect_timeout=1, read_timeout=3)
    assert custom.max_request_seconds == 4
    monkeypatch.setenv("LATE_READ_TIMEOUT", "fast")
    with pytest.raises(SettingsError, match="LATE_READ_TIMEOUT"):
        config.late_read_timeout()
    monkeypatch.delenv("LATE_READ_TIMEOUT")
    monkeypatch.setenv("LATE_BASE_URL", "getlate.dev")
    with pytest.raises(SettingsError, match="LATE_BASE_URL"):
        config.late_base_url()


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "SOCIALPOST_CONNECT_TIMEOUT",
        "POSTFORME_READ_TIMEOUT",
        "LATE_READ_TIMEOUT",
        "SOCIALPOST_ACCOUNTS_CACHE_SECONDS",
        "SOCIALPOST_MEDIA_MAX_BYTES",
    ):
        monkeypatch.delenv(name, raising=False)
    assert config.connect_timeout() == 5
    assert config.postforme_read_timeout() == 30
    assert config.late_read_timeout() == 120
    assert config.accounts_cache_seconds() == 60
    assert config.media_max_bytes() == 100 * 1024 * 1024


def test_one_session_per_thread_and_base_url() -> None:
    a = session_for("http://a.example/v1")
    assert session_for("http://a.example/v1") is a
    assert session_for("http://b.example/v1") is not a
    other: list[object] = []
    thread = threading.Thread(target=lambda: other.append(session_for("http://a.example/v1")))
    thread.start()
    thread.join()
    assert other[0] is not a


def test_connections_are_reused(sandbox: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="urllib3.connectionpool")
    key = f"reuse-{uuid.uuid4().hex[:8]}"
    sandbox.register_key("late", key)
    provider = LateProvider(key, sandbox.late_url)
    provider.accounts()
    for i in range(5):
        provider.publish(PublishRequest(f"reuse {i}", ("twitter",)))
    opened = [r for r in caplog.records if "Starting new HTTP connection" in r.getMessage()]
    assert len(opened) <= 1  # six calls on (at most) one new TCP connection


def test_latency_fault_beyond_read_timeout_is_ambiguous(sandbox: Any) -> None:
    key = f"slow-{uuid.uuid4().hex[:8]}"
    sandbox.register_key("postforme", key)
    fast = PostForMeProvider(key, sandbox.postforme_url, read_timeout=5)
    fast.accounts()  # cached: the account list is not what times out below
    slow = PostForMeProvider(key, sandbox.postforme_url, read_timeout=0.3)
    sandbox.set_faults("postforme", latency_ms=1000)
    start = time.monotonic()
    outcome = slow.publish(PublishRequest("slow", ("twitter",), idempotency_key="slow-1"))
    assert outcome.kind is OutcomeKind.AMBIGUOUS
    assert time.monotonic() - start < 0.9  # the deadline held
