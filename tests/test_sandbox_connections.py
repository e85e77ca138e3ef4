"""A dead or black-holed provider, with real sockets and `requests`.

With `separate_ports` each provider has its own listener: "refuse" closes it (connects
fail at once with ECONNREFUSED), "blackhole" leaves a full accept queue nobody accepts
from (the kernel drops the SYNs, the client's connect timeout fires), "serve" brings it
back on the same port. Pooled keep-alive sessions must see each outage too.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner
from urllib3.exceptions import NewConnectionError

from providers.sandbox import SandboxServer
from providers.sandbox.listeners import MODES
from worker.commands import sandbox as sandbox_command

PFM_KEY = "pfm_conn_key_AAAA1111"
LATE_KEY = "sk_late_conn_key_BBBB2222"
CONNECT = 1.0
TIMEOUT = (CONNECT, 5.0)


@pytest.fixture(scope="module")
def server() -> Iterator[SandboxServer]:
    box = SandboxServer(separate_ports=True).start()
    yield box
    box.stop()


@pytest.fixture
def box(server: SandboxServer) -> SandboxServer:
    server.reset()
    server.register_key("postforme", PFM_KEY)
    server.register_key("late", LATE_KEY)
    return server


def session(key: str) -> requests.Session:
    s = requests.Session()
    s.headers["Authorization"] = f"Bearer {key}"
    return s


def pfm(box: SandboxServer, s: requests.Session | None = None) -> requests.Response:
    return (s or session(PFM_KEY)).get(box.postforme_url + "/social-accounts", timeout=TIMEOUT)


def late(box: SandboxServer, s: requests.Session | None = None) -> requests.Response:
    return (s or session(LATE_KEY)).get(box.late_url + "/accounts", timeout=TIMEOUT)


def refused(exc: requests.exceptions.ConnectionError) -> bool:
    """Whether the connect failed with ECONNREFUSED (urllib3's NewConnectionError names it)."""
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    cause = getattr(reason, "__cause__", None)
    return isinstance(reason, NewConnectionError) and isinstance(cause, ConnectionRefusedError)


def test_separate_ports(box: SandboxServer) -> None:
    ports = {box.port, int(box.postforme_url.split(":")[2].split("/")[0]),
             int(box.late_url.split(":")[2].split("/")[0])}
    assert len(ports) == 3
    assert box.postforme_url.endswith("/postforme/v1") and box.late_url.endswith("/late/api/v1")
    assert pfm(box).status_code == 200 and late(box).status_code == 200
    # the main port is the control port; a provider's port serves only that provider ...
    assert requests.get(box.url + "/postforme/v1/social-accounts", timeout=TIMEOUT
                        ).status_code == 404
    pfm_base = box.postforme_url.removesuffix("/postforme/v1")
    assert requests.get(pfm_base + "/_sandbox/stats", timeout=TIMEOUT).status_code == 404
    assert session(LATE_KEY).get(pfm_base + "/late/api/v1/accounts", timeout=TIMEOUT
                                 ).status_code == 404
    # ... and the media routes its answers link to
    assert requests.get(pfm_base + "/_sandbox/sample/image.jpg", timeout=TIMEOUT).ok
    slot = session(PFM_KEY).post(box.postforme_url + "/media/create-upload-url",
                                 timeout=TIMEOUT).json()
    assert slot["upload_url"].startswith(pfm_base)
    put = requests.put(slot["upload_url"], data=b"\xff\xd8\xff", timeout=TIMEOUT,
                       headers={"Content-Type": "image/jpeg"})
    assert put.status_code == 200
    assert requests.get(slot["media_url"], timeout=TIMEOUT).content == b"\xff\xd8\xff"
    assert box.connections() == {
        "separate_ports": True,
        "postforme": {"mode": "serve", "url": box.postforme_url},
        "late": {"mode": "serve", "url": box.late_url},
    }


def test_refuse_is_a_quick_connection_error_then_recovers(box: SandboxServer) -> None:
    url = box.postforme_url
    box.set_connection_mode("postforme", "refuse")
    started = time.monotonic()
    with pytest.raises(requests.exceptions.ConnectionError) as caught:
        pfm(box)
    assert time.monotonic() - started < 0.5
    assert not isinstance(caught.value, requests.exceptions.ConnectTimeout)
    assert refused(caught.value), repr(caught.value)
    assert late(box).status_code == 200  # the other provider is untouched
    box.set_connection_mode("postforme", "serve")
    assert box.postforme_url == url and pfm(box).status_code == 200


def test_blackhole_is_a_connect_timeout_then_recovers(box: SandboxServer) -> None:
    box.set_connection_mode("late", "blackhole")
    for _ in range(2):  # not just the first: the queue stays full
        started = time.monotonic()
        with pytest.raises(requests.exceptions.ConnectTimeout):
            late(box)
        assert CONNECT * 0.9 <= time.monotonic() - started < CONNECT + 1.5
    assert pfm(box).status_code == 200
    box.set_connection_mode("late", "serve")
    assert late(box).status_code == 200


def test_pooled_sessions_see_the_outage(box: SandboxServer) -> None:
    s = session(PFM_KEY)
    assert pfm(box, s).status_code == 200  # a keep-alive connection now sits in the pool
    box.set_connection_mode("postforme", "refuse")
    with pytest.raises(requests.exceptions.ConnectionError):
        pfm(box, s)
    box.set_connection_mode("postforme", "serve")
    assert pfm(box, s).status_code == 200
    box.set_connection_mode("postforme", "blackhole")
    with pytest.raises(requests.exceptions.ConnectTimeout):
        pfm(box, s)
    box.set_connection_mode("postforme", "refuse")  # straight from one outage to the other
    with pytest.raises(requests.exceptions.ConnectionError):
        pfm(box, s)
    box.set_connection_mode("postforme", "serve")
    assert pfm(box, s).status_code == 200


def test_control_api_and_reset(box: SandboxServer) -> None:
    route = box.url + "/_sandbox/connections"
    answer = requests.post(route, json={"provider": "late", "mode": "refuse"}, timeout=TIMEOUT)
    assert answer.status_code == 200 and answer.json()["late"]["mode"] == "refuse"
    assert requests.get(route, timeout=TIMEOUT).json() == box.connections()
    with pytest.raises(requests.exceptions.ConnectionError):
        late(box)
    bad = requests.post(route, json={"provider": "late", "mode": "sulk"}, timeout=TIMEOUT)
    assert bad.status_code == 400
    box.reset()  # every provider serves again (and its keys are forgotten)
    assert box.connections()["late"]["mode"] == "serve" and late(box).status_code == 401


def test_modes_need_separate_ports(sandbox: SandboxServer) -> None:
    with pytest.raises(ValueError, match="separate_ports"):
        sandbox.set_connection_mode("postforme", "refuse")
    answer = requests.post(sandbox.url + "/_sandbox/connections",
                           json={"provider": "postforme", "mode": "refuse"}, timeout=TIMEOUT)
    assert answer.status_code == 400
    assert sandbox.connections()["postforme"] == {"mode": "serve", "url": sandbox.postforme_url}


def test_stop_and_start_keep_a_mode() -> None:
    box = SandboxServer(separate_ports=True)
    box.set_connection_mode("postforme", "blackhole")  # before start: applied by start()
    box.start()
    try:
        with pytest.raises(requests.exceptions.ConnectTimeout):
            pfm(box)
        box.stop()  # a black hole does not hold stop() up
        box.start()
        with pytest.raises(requests.exceptions.ConnectTimeout):
            pfm(box)
        box.set_connection_mode("postforme", "serve")
        box.register_key("postforme", PFM_KEY)
        assert pfm(box).status_code == 200
    finally:
        box.stop()


def test_cli_flags(tmp_path: Path) -> None:
    assert sandbox_command.MODES == MODES
    usage = CliRunner().invoke(sandbox_command.sandbox, ["--late-connections", "refuse"])
    assert usage.exit_code == 2 and "--separate-ports" in usage.output
    socialpost = Path(sys.executable).with_name("socialpost")
    proc = subprocess.Popen(
        [str(socialpost), "sandbox", "--port", "0", "--accept-any-key", "--separate-ports",
         "--late-connections", "refuse"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path,
    )
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline() for _ in range(3)]
        pfm_url = lines[1].strip().split("=", 1)[1]
        late_url = lines[2].strip().split("=", 1)[1]
        assert pfm_url.split(":")[2] != late_url.split(":")[2]
        ok = session("pfm_cli_key_1234").get(pfm_url + "/social-accounts", timeout=TIMEOUT)
        assert ok.status_code == 200
        with pytest.raises(requests.exceptions.ConnectionError):
            session("sk_cli_key_1234").get(late_url + "/accounts", timeout=TIMEOUT)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
