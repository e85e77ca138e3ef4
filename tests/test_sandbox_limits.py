"""The sandbox's rate limits over real HTTP: the providers' gateways as documented.

PostForMe: 5/second and 40/minute per key, a NestJS 429 whose Retry-After and
X-Rate-Limit-* headers come only on the 429 (Reset in seconds). LATE: X-RateLimit-* on
every answer of a limited key (Reset in Unix seconds). Windows are scaled down
(`3 per 2 seconds`) to keep the tests short; one test pins the exact default answer.
"""

from __future__ import annotations

import math
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from providers.sandbox import SandboxServer
from providers.sandbox.rate_limits import Arrival, RateLimits, parse_limits

PFM_KEY = "pfm_limits_key_AAAA1111"
PFM_OTHER = "pfm_limits_key_BBBB2222"
LATE_KEY = "sk_late_limits_key_CCCC3333"
TIMEOUT = 5
PFM_HEADERS = ("Retry-After", "X-Rate-Limit-Limit", "X-Rate-Limit-Remaining",
               "X-Rate-Limit-Reset", "X-Rate-Limit-Name", "X-Rate-Limit-Duration")
DEFAULTS = {"postforme": "5/second;40/minute", "late": "60/minute"}


@pytest.fixture(scope="module")
def server() -> Iterator[SandboxServer]:
    """One sandbox with the real default limits from its constructor."""
    box = SandboxServer(rate_limits=DEFAULTS).start()
    yield box
    box.stop()


@pytest.fixture
def box(server: SandboxServer) -> SandboxServer:
    server.reset()
    server.register_key("postforme", PFM_KEY)
    server.register_key("postforme", PFM_OTHER)
    server.register_key("late", LATE_KEY)
    return server


def session(key: str) -> requests.Session:
    s = requests.Session()
    s.headers["Authorization"] = f"Bearer {key}"
    return s


def pfm_get(box: SandboxServer, key: str = PFM_KEY, path: str = "/social-accounts",
            s: requests.Session | None = None) -> requests.Response:
    return (s or session(key)).get(box.postforme_url + path, timeout=TIMEOUT)


def late_get(box: SandboxServer, path: str = "/accounts",
             s: requests.Session | None = None) -> requests.Response:
    return (s or session(LATE_KEY)).get(box.late_url + path, timeout=TIMEOUT)


def most_in_any_window(arrivals: list[Arrival], seconds: float) -> int:
    """How many counted arrivals the busiest `seconds`-long window held."""
    times = sorted(a.time for a in arrivals if not a.rate_limited)
    return max((sum(1 for u in times if t <= u < t + seconds) for t in times), default=0)


# -- settings --------------------------------------------------------------------------


def test_limits_are_off_by_default(sandbox: SandboxServer) -> None:
    sandbox.register_key("postforme", PFM_KEY)
    assert sandbox.rate_limits() == {"postforme": None, "late": None, "jitter_seconds": 0.1}
    s = session(PFM_KEY)
    answers = [pfm_get(sandbox, s=s) for _ in range(12)]
    assert {r.status_code for r in answers} == {200}
    assert not any(h in r.headers for r in answers for h in PFM_HEADERS)
    assert sandbox.rate_limited("postforme") == 0
    assert len(sandbox.arrivals("postforme")) == 12  # arrivals are recorded all the same


def test_specs_parse_with_the_limits_syntax() -> None:
    assert [(lim.amount, lim.seconds, lim.name) for lim in parse_limits(DEFAULTS["postforme"])
            ] == [(5, 1.0, "second"), (40, 60.0, "minute")]
    assert [(lim.amount, lim.seconds, lim.name) for lim in parse_limits("20 per 10 seconds")
            ] == [(20, 10.0, "10 seconds")]
    assert parse_limits(None) == parse_limits("none") == ()
    with pytest.raises(ValueError, match="5/second"):
        parse_limits("five a minute")


def test_set_and_reset(box: SandboxServer) -> None:
    assert box.rate_limits() == {**DEFAULTS, "jitter_seconds": 0.1}
    box.set_rate_limits("postforme", None)
    box.set_rate_limits("late", "2 per 10 seconds")
    assert box.rate_limits()["postforme"] is None
    assert {pfm_get(box).status_code for _ in range(8)} == {200}
    box.reset()  # back to the constructor's limits
    assert box.rate_limits() == {**DEFAULTS, "jitter_seconds": 0.1}
    with pytest.raises(ValueError):
        box.set_rate_limits("postforme", "lots")
    with pytest.raises(ValueError):
        SandboxServer(rate_limits={"postforme": "1/second"}, rate_limit_jitter_seconds=1.5)


def test_control_api(box: SandboxServer) -> None:
    route = box.url + "/_sandbox/rate-limits"
    answer = requests.post(route, json={"provider": "postforme", "limits": "1 per 5 seconds"},
                           timeout=TIMEOUT)
    assert answer.status_code == 200 and answer.json()["postforme"] == "1 per 5 seconds"
    assert requests.get(route, timeout=TIMEOUT).json() == box.rate_limits()
    bad = requests.post(route, json={"provider": "postforme", "limits": "often"}, timeout=TIMEOUT)
    assert bad.status_code == 400
    assert [pfm_get(box).status_code for _ in range(2)] == [200, 429]
    log = requests.get(box.url + "/_sandbox/arrivals", params={"provider": "postforme"},
                       timeout=TIMEOUT).json()
    assert log["rate_limited"] == {"postforme": 1, "late": 0}
    assert [a["status"] for a in log["arrivals"]] == [200, 429]
    assert [a["rate_limited"] for a in log["arrivals"]] == [False, True]
    assert set(log["arrivals"][0]) == {"provider", "time", "wall_time", "method", "path",
                                       "status", "key_label", "rate_limited"}
    off = requests.post(route, json={"provider": "postforme", "limits": None}, timeout=TIMEOUT)
    assert off.json()["postforme"] is None and pfm_get(box).status_code == 200


# -- PostForMe -------------------------------------------------------------------------


def test_postforme_default_answer_exactly(box: SandboxServer) -> None:
    s = session(PFM_KEY)
    answers = [pfm_get(box, s=s) for _ in range(6)]
    assert [r.status_code for r in answers] == [200] * 5 + [429]
    refused = answers[-1]
    assert refused.json() == {"statusCode": 429,
                              "message": "Too many requests, please try again later"}
    assert {h: refused.headers[h] for h in PFM_HEADERS} == {
        "Retry-After": "1", "X-Rate-Limit-Limit": "5", "X-Rate-Limit-Remaining": "0",
        "X-Rate-Limit-Reset": "1", "X-Rate-Limit-Name": "second", "X-Rate-Limit-Duration": "1",
    }
    # headers only on the 429: never on an admitted answer
    assert not any(h in r.headers for r in answers[:5] for h in PFM_HEADERS)


def test_postforme_41st_in_a_minute(box: SandboxServer) -> None:
    """The default minute limit, paced under 5/second: the 41st request is refused."""
    s = session(PFM_KEY)
    started = time.monotonic()
    for i in range(40):
        time.sleep(max(0.0, started + i * 0.21 - time.monotonic()))
        assert pfm_get(box, s=s).status_code == 200, f"request {i + 1}"
    refused = pfm_get(box, s=s)
    assert refused.status_code == 429
    assert refused.headers["X-Rate-Limit-Name"] == "minute"
    assert refused.headers["X-Rate-Limit-Limit"] == "40"
    assert refused.headers["X-Rate-Limit-Duration"] == "60"
    wait = int(refused.headers["X-Rate-Limit-Reset"])
    assert 50 <= wait <= 60 and refused.headers["Retry-After"] == str(wait)


def test_postforme_scaled_windows(box: SandboxServer) -> None:
    """`3 per 1 second;5 per 5 seconds`: the 4th in a second, then the 6th in 5 s."""
    box.set_rate_limits("postforme", "3 per 1 second;5 per 5 seconds")
    s = session(PFM_KEY)
    assert [pfm_get(box, s=s).status_code for _ in range(4)] == [200, 200, 200, 429]
    time.sleep(1.0)
    answers = [pfm_get(box, s=s) for _ in range(3)]
    assert [r.status_code for r in answers] == [200, 200, 429]
    refused = answers[-1]
    assert refused.headers["X-Rate-Limit-Name"] == "5 seconds"
    assert refused.headers["X-Rate-Limit-Limit"] == "5"
    assert refused.headers["X-Rate-Limit-Duration"] == "5"
    arrivals = box.arrivals("postforme")
    first, last = arrivals[0].time, arrivals[-1].time
    expected = math.ceil(first + 5 - 0.1 - last)  # when the oldest counted arrival leaves
    assert refused.headers["X-Rate-Limit-Reset"] == refused.headers["Retry-After"] == str(expected)


def test_retry_after_is_enough_and_rejections_do_not_count(box: SandboxServer) -> None:
    box.set_rate_limits("postforme", "2 per 2 seconds")
    s = session(PFM_KEY)
    assert [pfm_get(box, s=s).status_code for _ in range(2)] == [200, 200]
    refusals = [pfm_get(box, s=s) for _ in range(8)]  # hammering: all refused, none counted
    assert {r.status_code for r in refusals} == {429}
    assert refusals[0].headers["Retry-After"] == "2"
    assert box.rate_limited("postforme") == 8
    time.sleep(float(refusals[-1].headers["X-Rate-Limit-Reset"]))
    # the window is free again: the 8 refusals did not count
    assert [pfm_get(box, s=s).status_code for _ in range(3)] == [200, 200, 429]
    arrivals = box.arrivals("postforme", api_key=PFM_KEY)
    assert [a.rate_limited for a in arrivals] == [False] * 2 + [True] * 8 + [False] * 2 + [True]
    assert most_in_any_window(arrivals, 1.9) <= 2


def test_every_route_counts(box: SandboxServer) -> None:
    box.set_rate_limits("postforme", "6 per 10 seconds")
    s = session(PFM_KEY)
    base = box.postforme_url
    accounts = s.get(base + "/social-accounts", timeout=TIMEOUT).json()["data"]
    created = s.post(base + "/social-posts", timeout=TIMEOUT, json={
        "caption": "hello", "social_accounts": [accounts[0]["id"]], "external_id": "e1"})
    assert created.status_code == 201
    statuses = [
        s.get(base + "/social-posts", params={"external_id": "e1"}, timeout=TIMEOUT).status_code,
        s.get(base + "/social-post-results", params={"post_id": created.json()["id"]},
              timeout=TIMEOUT).status_code,
        s.post(base + "/media/create-upload-url", timeout=TIMEOUT).status_code,
        s.get(base + "/no-such-route", timeout=TIMEOUT).status_code,  # a 404 counts too
        s.get(base + "/social-accounts", timeout=TIMEOUT).status_code,
    ]
    assert statuses == [200, 200, 201, 404, 429]
    paths = [a.path for a in box.arrivals("postforme")]
    assert paths[:3] == ["/postforme/v1/social-accounts", "/postforme/v1/social-posts",
                         "/postforme/v1/social-posts"]


def test_keys_have_their_own_budgets(box: SandboxServer) -> None:
    box.set_rate_limits("postforme", "2 per 10 seconds")
    assert [pfm_get(box, PFM_KEY).status_code for _ in range(3)] == [200, 200, 429]
    assert [pfm_get(box, PFM_OTHER).status_code for _ in range(3)] == [200, 200, 429]
    mine = box.arrivals("postforme", api_key=PFM_KEY)
    assert len(mine) == 3 and {a.key_label for a in mine} == {PFM_KEY[-4:]}
    assert len(box.arrivals("postforme")) == 6 and box.rate_limited("postforme") == 2
    # an unknown key is counted on its own (the gateway counts before auth); no key: never
    assert [pfm_get(box, "pfm_unknown_key_9999").status_code for _ in range(3)] == [401, 401, 429]
    bare = [requests.get(box.postforme_url + "/social-accounts", timeout=TIMEOUT).status_code
            for _ in range(3)]
    assert bare == [401, 401, 401]


def test_jitter_is_forgiven() -> None:
    """The model: N per W s refuses only with N counted arrivals in (t − W + jitter, t]."""
    gateway = RateLimits({"postforme": "2/second"})
    verdicts = [gateway.admit("postforme", "k", t) for t in (0.0, 0.5)]
    assert [v is not None and v.allowed for v in verdicts] == [True, True]
    early = gateway.admit("postforme", "k", 0.85)
    assert early is not None and not early.allowed  # 3 in 0.85 s: over
    assert round(early.reset_after, 6) == 0.05  # the arrival at 0.0 leaves at 0.9
    late = gateway.admit("postforme", "k", 0.95)
    assert late is not None and late.allowed  # 3 in 0.95 s: within the jitter, forgiven
    strict = RateLimits({"postforme": "2/second"}, jitter_seconds=0)
    for t in (0.0, 0.5):
        strict.admit("postforme", "k", t)
    refused = strict.admit("postforme", "k", 0.95)
    assert refused is not None and not refused.allowed


def test_a_client_pacing_at_the_limit_is_never_refused(box: SandboxServer) -> None:
    """Requests exactly 0.5 s apart against 2/second: sleep jitter must not cost a 429."""
    box.set_rate_limits("postforme", "2/second")
    s = session(PFM_KEY)
    started = time.monotonic()
    for i in range(7):
        time.sleep(max(0.0, started + i * 0.5 - time.monotonic()))
        assert pfm_get(box, s=s).status_code == 200, f"request {i + 1}"


# -- LATE ------------------------------------------------------------------------------


def test_late_headers_on_every_answer(box: SandboxServer) -> None:
    box.set_rate_limits("late", "3/minute")
    s = session(LATE_KEY)
    before = time.time()
    answers = [
        late_get(box, s=s),  # 200
        late_get(box, "/posts/000000000000000000000000", s=s),  # 404
        s.post(box.late_url + "/posts", data="not json", timeout=TIMEOUT),  # 400
        late_get(box, s=s),  # 429
    ]
    assert [r.status_code for r in answers] == [200, 404, 400, 429]
    assert [r.headers["X-RateLimit-Limit"] for r in answers] == ["3"] * 4
    assert [r.headers["X-RateLimit-Remaining"] for r in answers] == ["2", "1", "0", "0"]
    resets = [int(r.headers["X-RateLimit-Reset"]) for r in answers]
    assert all(before + 58 < reset <= time.time() + 61 for reset in resets)  # Unix seconds
    assert len(set(resets)) == 1  # the first arrival frees the window's slot
    refused = answers[-1]
    body = refused.json()
    assert body["type"] == "rate_limit_error" and body["code"] == 429 and body["error"]
    assert 58 <= int(refused.headers["Retry-After"]) <= 60
    assert all("X-Request-Id" in r.headers for r in answers)
    assert box.rate_limited("late") == 1 and box.rate_limited("postforme") == 0


def test_late_without_limits_keeps_its_default_headers(sandbox: SandboxServer) -> None:
    sandbox.register_key("late", LATE_KEY)
    answer = late_get(sandbox)
    assert answer.status_code == 200 and answer.headers["X-RateLimit-Limit"] == "1200"


# -- the CLI ---------------------------------------------------------------------------


def test_cli_flags(tmp_path: Path) -> None:
    socialpost = Path(sys.executable).with_name("socialpost")
    proc = subprocess.Popen(
        [str(socialpost), "sandbox", "--port", "0", "--accept-any-key",
         "--postforme-rate-limits", "2 per 10 seconds", "--late-rate-limits", "1/minute",
         "--rate-limit-jitter", "0.2"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path,
    )
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline() for _ in range(3)]
        pfm = lines[1].strip().split("=", 1)[1]
        base = lines[0].split()[-1]
        s = session("pfm_cli_key_1234")
        statuses = [s.get(pfm + "/social-accounts", timeout=TIMEOUT).status_code for _ in range(3)]
        assert statuses == [200, 200, 429]
        specs = requests.get(base + "/_sandbox/rate-limits", timeout=TIMEOUT).json()
        assert specs == {"postforme": "2 per 10 seconds", "late": "1/minute",
                         "jitter_seconds": 0.2}
    finally:
        proc.terminate()
        proc.wait(timeout=10)
