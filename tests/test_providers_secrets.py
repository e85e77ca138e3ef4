"""A recognisable API key goes through every path of both providers and is found nowhere
in what they log, return or raise."""

from __future__ import annotations

import functools
import logging
import pickle
import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from providers import (
    LateProvider,
    PostForMeProvider,
    ProviderCallError,
    PublishRequest,
    clear_accounts_cache,
)
from providers.redact import clean_error, redact
from tests.flow_state import clear_flow_state

KEY = "sk_live_CANARY_7f3a9b2c4d5e6f708192a3b4"


@pytest.fixture(autouse=True)
def _fresh_accounts_cache() -> Iterator[None]:
    clear_accounts_cache()
    yield
    clear_accounts_cache()


def _closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}/v1"


@pytest.mark.parametrize("which", ["postforme", "late"])
def test_key_never_leaves_the_client(
    sandbox: Any, which: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # every logger, urllib3 included
    sandbox.register_key(which, KEY, ["twitter", "linkedin"])
    cls = PostForMeProvider if which == "postforme" else LateProvider
    base = sandbox.postforme_url if which == "postforme" else sandbox.late_url
    provider = cls(KEY, base, read_timeout=0.5)
    seen: list[object] = [provider, str(provider), repr(provider), vars(provider)]

    def collect(call: Callable[[], object]) -> None:
        try:
            seen.append(call())
        except Exception as exc:  # what is raised counts too
            seen.extend([exc, str(exc), repr(exc), getattr(exc, "outcome", None)])

    echo = {"message": f"invalid key {KEY}", "hint": f"Authorization: Bearer {KEY}"}
    sandbox.push_responses(
        which,
        [
            {"status": 401, "body": echo},
            {"status": 400, "body": {"message": f"Bearer {KEY} rejected", "error": KEY}},
            {"status": 500, "body": {"error": f"upstream saw {KEY}"}},
            {"status": 429, "retry_after": 1, "body": {"message": f"slow down {KEY}"}},
            {"hang": True, "hang_seconds": 2},
        ],
    )
    for i in range(5):
        req = PublishRequest(content=f"post {i}", platforms=("twitter",), idempotency_key=f"k{i}")
        collect(functools.partial(provider.publish, req))
        if i == 3:
            clear_flow_state()  # the 429 held the key fleet-wide for its Retry-After
    collect(lambda: provider.post("seed post", ["twitter", "tiktok"]))
    collect(lambda: provider.post("seed post ok", ["twitter"], post_id="seed-1"))
    collect(provider.accounts)
    collect(provider.get_accounts)
    collect(lambda: provider.find_post("k0"))
    collect(lambda: provider.get_oauth_url("twitter", "https://app.example/cb"))
    collect(lambda: provider.upload_media(f"{sandbox.url}/_sandbox/sample/image.jpg"))
    collect(lambda: provider.upload_media(f"{sandbox.url}/_sandbox/sample/text.txt"))

    # The same key, refused or unreachable.
    sandbox.revoke_key(which, KEY)
    provider.invalidate_accounts()
    collect(provider.accounts)
    collect(lambda: provider.post("after revoke", ["twitter"]))
    collect(lambda: provider.upload_media(f"{sandbox.url}/_sandbox/sample/image.jpg"))
    collect(lambda: provider.get_oauth_url("linkedin", "https://app.example/cb"))
    offline = cls(KEY, _closed_port_url())
    seen.append(repr(offline))
    collect(offline.accounts)
    collect(lambda: offline.post("offline", ["twitter"]))
    collect(lambda: offline.publish(PublishRequest("x", ("twitter",), idempotency_key="z")))

    text = "\n".join(repr(x) for x in seen) + "\n" + caplog.text
    text += "\n".join(r.getMessage() + repr(r.args) for r in caplog.records)
    assert KEY not in text
    assert "CANARY" not in text  # not even a fragment of it
    # The key was really used: the sandbox authenticated it before the revoke.
    assert sandbox.stats()[which]["creates"] >= 2
    with pytest.raises(TypeError):
        pickle.dumps(provider._key)


def test_redact_helpers() -> None:
    assert redact(f"x {KEY} y", [KEY]) == "x *** y"
    assert redact("Authorization: Bearer abc.def-123", []) == "Authorization: Bearer ***"
    assert redact("authorization=sk_other_secret", []) == "authorization=***"
    assert redact("https://user:pw@host/x", []) == "https://***@host/x"
    long = clean_error("y" * 2000 + KEY, [KEY])
    assert len(long) <= 500 and KEY not in long


def test_provider_call_error_repr_is_redacted(sandbox: Any) -> None:
    provider = LateProvider(KEY, sandbox.late_url)  # unregistered: 401
    with pytest.raises(ProviderCallError) as info:
        provider.accounts()
    assert KEY not in repr(info.value) and KEY not in str(info.value)
    assert info.value.outcome.http_status == 401
