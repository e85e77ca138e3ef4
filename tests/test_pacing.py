"""The fleet's pacer, caps and circuit against the real Redis: permits per key, the fair
line, background yielding, the provider's word, caps per account, open and probe."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest

from providers import circuit
from providers.account_caps import AccountCaps
from providers.limits_syntax import parse_caps
from providers.models import AccountInfo
from providers.pacing import Budget, CallContext, Denied, Pacer, Priority

CREATE = CallContext()
WAITED = CallContext(Priority.CREATE, waited=True)
BACKGROUND = CallContext(Priority.BACKGROUND)


@pytest.fixture
def key() -> str:
    return f"sk-{uuid.uuid4().hex}"


def pacer_with(redis_url: str, spec: str, share: float = 0.2) -> Pacer:
    return Pacer(redis_url, {"postforme": Budget.of(spec, share), "late": None})


def denial(p: Pacer, key: str, ctx: CallContext = CREATE) -> Denied:
    with pytest.raises(Denied) as caught:
        p.admit("postforme", key, ctx)
    return caught.value


def test_a_key_gets_its_budget_then_waits_in_line(redis_url: str, key: str) -> None:
    p = pacer_with(redis_url, "3 per 2 seconds")
    for _ in range(3):
        p.admit("postforme", key, CREATE)
    first = denial(p, key)
    assert "in line for a PostForMe permit" in first.reason and 0 < first.wait <= 2.0 + 1.0
    # the next ones queue behind it, one steady-rate slot (2/3 s) apart: no stampede
    turns = [denial(p, key).wait for _ in range(4)]
    floors = [float(d.reason.rsplit("turn in ", 1)[1].split(" s")[0]) for d in
              [denial(p, key) for _ in range(2)]]
    # each wait is its turn (2/3 s after the one before) plus up to one slot of jitter: the
    # waits grow, and the fourth turn is at least two slots (less one of jitter) after the first
    assert turns == sorted(turns) and turns[-1] - turns[0] > 2 * (2 / 3) - 0.1
    assert floors[1] - floors[0] == pytest.approx(2 / 3, abs=0.15)


def test_keys_are_paced_apart(redis_url: str, key: str) -> None:
    p = pacer_with(redis_url, "1/second")
    p.admit("postforme", key, CREATE)
    denial(p, key)
    p.admit("postforme", key + "-other", CREATE)


def test_a_post_whose_turn_came_waits_only_for_the_next_permit(redis_url: str,
                                                               key: str) -> None:
    p = pacer_with(redis_url, "2 per 3 seconds")
    p.admit("postforme", key, CREATE)
    p.admit("postforme", key, CREATE)
    for _ in range(5):
        denial(p, key)  # a line of five, up to ~7.5 s out
    again = denial(p, key, WAITED)
    assert "waiting for a PostForMe permit" in again.reason and again.wait <= 3.0 + 1.0


def test_background_calls_yield_to_waiting_creates_and_keep_to_their_share(
        redis_url: str, key: str) -> None:
    p = pacer_with(redis_url, "10/second", share=0.2)
    p.admit("postforme", key, BACKGROUND)
    p.admit("postforme", key, BACKGROUND)
    assert "background share" in denial(p, key, BACKGROUND).reason  # 2 of 10
    for _ in range(8):
        p.admit("postforme", key, CREATE)  # creates still have the rest
    denial(p, key)  # a create in line now
    assert "yielding to creates" in denial(p, key, BACKGROUND).reason


def test_background_calls_keep_half_their_share_while_creates_wait(redis_url: str,
                                                                   key: str) -> None:
    p = pacer_with(redis_url, "2/second;40/minute", share=0.2)  # 8 a minute, 4 when busy
    p.admit("postforme", key, CREATE)
    p.admit("postforme", key, CREATE)
    denial(p, key)  # the second's permits are spent: a create waits in line
    time.sleep(1.05)
    p.admit("postforme", key, BACKGROUND)  # not starved: one of the busy share of 4
    assert "yielding to creates" in denial(p, key, BACKGROUND).reason  # 1/second bg


def test_the_providers_word_blocks_the_key(redis_url: str, key: str) -> None:
    p = pacer_with(redis_url, "100/second")
    p.observe("postforme", key, 429, {"Retry-After": "5"})
    d = denial(p, key)
    assert "PostForMe asked us to wait" in d.reason and 4.5 <= d.wait <= 6.0
    late = f"{key}-late"
    p.observe("late", late, 200, {"X-RateLimit-Remaining": "0",
                                  "X-RateLimit-Reset": str(int(time.time()) + 3)})
    with pytest.raises(Denied):
        p.admit("late", late, CREATE)
    p.observe("late", late + "2", 200, {"X-RateLimit-Remaining": "7",
                                        "X-RateLimit-Reset": str(int(time.time()) + 3)})
    p.admit("late", late + "2", CREATE)


def test_keys_are_never_stored_in_redis(redis_url: str, key: str) -> None:
    import redis

    p = pacer_with(redis_url, "1/second")
    p.admit("postforme", key, CREATE)
    denial(p, key)
    p.observe("postforme", key, 429, {"Retry-After": "1"})
    names = [k.decode() for k in redis.Redis.from_url(redis_url).scan_iter(count=1000)]
    assert names and not any(key in n for n in names)


def test_without_redis_calls_go_out_unpaced(key: str) -> None:
    p = pacer_with("redis://127.0.0.1:1/0", "1/second")
    for _ in range(3):
        p.admit("postforme", key, CREATE)


def test_without_redis_a_provider_call_goes_out(sandbox: object,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """The client's admission (circuit and pacing read in one round trip) lets the call
    through when the broker's Redis is away: the provider's own 429 still protects."""
    from providers.postforme import PostForMeProvider

    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")
    monkeypatch.setenv("CELERY_BROKER_URL", "redis://127.0.0.1:1/0")
    monkeypatch.setattr(circuit, "SEEN_FOR", 0.0)
    key = f"sk-{uuid.uuid4().hex}"
    sandbox.register_key("postforme", key, ["twitter"])  # type: ignore[attr-defined]
    accounts = PostForMeProvider(key)._fetch_accounts()  # uncached: a real call
    assert [a.platform for a in accounts] == ["twitter"]


ACCOUNT = AccountInfo(id="acc-1", platform="twitter", username="brand")


def test_an_account_at_its_cap_holds_the_post(redis_url: str) -> None:
    caps = AccountCaps(pacer_with(redis_url, "100/second"),
                       parse_caps("twitter=2/hour,*=5/day"))
    account = AccountInfo(id=f"acc-{uuid.uuid4().hex}", platform="twitter", username="brand")
    chosen = {"twitter": account}
    assert caps.check("late", chosen) is None and caps.check("late", chosen) is None
    assert caps.take("late", chosen) is None and caps.take("late", chosen) is None
    held = caps.take("late", chosen)
    assert held is not None and 3000 < held.wait <= 3600
    assert "twitter account brand (LATE) is at its cap of 2 posts per hour" in held.reason
    other = AccountInfo(id=f"acc-{uuid.uuid4().hex}", platform="linkedin", username="x")
    assert caps.take("late", {"linkedin": other}) is None  # the * caps, its own count


def test_a_post_held_for_one_account_costs_the_others_nothing(redis_url: str) -> None:
    caps = AccountCaps(pacer_with(redis_url, "100/second"),
                       parse_caps("twitter=1/hour,linkedin=1/hour"))
    tw = AccountInfo(id=f"t-{uuid.uuid4().hex}", platform="twitter", username="t")
    li = AccountInfo(id=f"l-{uuid.uuid4().hex}", platform="linkedin", username="l")
    assert caps.take("late", {"twitter": tw}) is None
    assert caps.take("late", {"linkedin": li, "twitter": tw}) is not None
    assert caps.take("late", {"linkedin": li}) is None  # linkedin's one was not spent


@pytest.fixture
def fast_circuit(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setattr(circuit, "SEEN_FOR", 0.0)  # read Redis every time here
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("SOCIALPOST_CIRCUIT_FAILURES", "3")
    monkeypatch.setenv("SOCIALPOST_CIRCUIT_COOLDOWN", "0.5")
    yield f"http://127.0.0.1:9/{uuid.uuid4().hex}"


def test_the_circuit_opens_after_failures_in_a_row_and_one_probe_closes_it(
        fast_circuit: str) -> None:
    url = fast_circuit
    circuit.failed(url)
    circuit.failed(url)
    assert circuit.admit(url, "PostForMe", 5.0) is True  # trouble counted, still closed
    circuit.answered(url, True)  # an answer resets the count
    for _ in range(3):
        circuit.failed(url)
    found = circuit.is_open(url)
    assert found is not None
    with pytest.raises(Denied) as caught:
        circuit.admit(url, "PostForMe", 5.0)
    assert caught.value.reason.startswith("PostForMe unavailable (circuit open since ")
    time.sleep(0.6)
    assert circuit.is_open(url) is None  # the probe is free for the taking
    assert circuit.admit(url, "PostForMe", 5.0) is True  # this call is the probe
    assert circuit.is_open(url) is not None  # everyone else still skips
    with pytest.raises(Denied):
        circuit.admit(url, "PostForMe", 5.0)
    circuit.answered(url, True)
    assert circuit.is_open(url) is None and circuit.admit(url, "PostForMe", 5.0) is False


def test_a_failed_probe_opens_the_circuit_again(fast_circuit: str) -> None:
    url = fast_circuit
    for _ in range(3):
        circuit.failed(url)
    since = circuit.is_open(url)
    time.sleep(0.6)
    assert circuit.admit(url, "PostForMe", 5.0) is True
    circuit.failed(url)
    again = circuit.is_open(url)
    assert again is not None and since is not None and again.since == since.since
    assert again.until > time.time()
