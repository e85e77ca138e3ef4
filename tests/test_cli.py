"""The operator CLI (`socialpost`) against a real database, Redis and the provider sandbox.

No Celery worker runs here: `post` and `campaign publish` are checked by the messages they
leave in Redis; where a command follows posts to the end, the test plays the worker's part
through the ledger functions the worker itself uses (db.posts).
"""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from cryptography.fernet import Fernet

from worker.cli import COMMANDS, cli

ROOT = Path(__file__).resolve().parent.parent
_SCRIPT = ROOT / ".venv" / "bin" / "socialpost"
# The installed entry point when there is one, else the same main() through -m.
SOCIALPOST = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "worker.cli"]
QUEUES = ("social.publish", "celery", "social.maintenance")
# Ten days ahead, on the hour: within the client's one-year horizon whatever today is.
LATER = (datetime.now(UTC) + timedelta(days=10)).replace(minute=0, second=0, microsecond=0)


# -- fixtures and helpers ----------------------------------------------------------------

@pytest.fixture(scope="module")
def broker(redis_url: str) -> Iterator[Any]:
    """The run's Redis db; the queues this module fills are emptied afterwards, so no
    later test's worker publishes our test posts."""
    import redis

    client = redis.Redis.from_url(redis_url)
    client.delete(*QUEUES)
    yield client
    client.delete(*QUEUES)


@pytest.fixture
def env(
    database_url: str, redis_url: str, broker: Any, monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> dict[str, str]:
    """The environment an operator's shell would have; returned for subprocesses too."""
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.delenv("CELERY_BROKER_URL", raising=False)
    monkeypatch.setenv("ENCRYPTION_KEY", Fernet.generate_key().decode())
    monkeypatch.setenv("SOCIALPOST_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("POSTFORME_API_KEY", raising=False)
    monkeypatch.delenv("LATE_API_KEY", raising=False)
    monkeypatch.delenv("FLOWER_BASIC_AUTH", raising=False)
    broker.delete(*QUEUES)
    return dict(os.environ)


def run(*args: str, input: str | None = None) -> Result:
    """`socialpost ARGS` in this process; stdout and stderr kept apart."""
    result = CliRunner().invoke(cli, list(args), input=input, prog_name="socialpost")
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception  # a traceback is a bug: show it
    return result


def one_error_line(result: Result) -> str:
    """Failures are exactly one line on stderr, starting 'Error:'."""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: "), result.stderr
    return lines[0]


def spawn(args: list[str], env: dict[str, str], cwd: Path, **kw: Any) -> Any:
    return subprocess.Popen(
        [*SOCIALPOST, *args], env=env, cwd=cwd, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw,
    )


def sp(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """The installed `socialpost` program, as an operator runs it."""
    return subprocess.run(
        [*SOCIALPOST, *args], env=env, cwd=cwd, text=True, capture_output=True,
        timeout=30, check=False,
    )


def queued_messages(broker: Any, queue: str = "social.publish") -> list[dict[str, Any]]:
    """(task name, args, kwargs) of every message waiting in a queue, oldest first."""
    out = []
    for raw in reversed(broker.lrange(queue, 0, -1)):
        msg = json.loads(raw)
        body = json.loads(base64.b64decode(msg["body"]))
        out.append({"task": msg["headers"]["task"], "args": body[0], "kwargs": body[1]})
    return out


def conn() -> Any:
    from db.pool import connect

    return connect()


def insert(user: str, content: str = "hello", platforms: tuple[str, ...] = ("twitter",),
           **extra: Any) -> str:
    from db import posts

    with conn() as c:
        row, _ = posts.insert_post(
            c, posts.NewPost(user_id=user, content=content, platforms=list(platforms), **extra)
        )
    return str(row["id"])


def settle(post_id: str, outcomes: dict[str, str], provider: str = "postforme") -> None:
    """Do what a worker does after one provider call: claim, then record the attempt with
    each platform's result, through the engine's own ledger statements."""
    from tasks.planning import TargetChange
    from tests import ledger

    with conn() as c:
        held = ledger.claim(c, post_id, "test-cli")
        assert ledger.finish(c, held, "test-cli", [
            TargetChange(
                platform=p, status=s, provider=provider, credential_source="user",
                provider_post_id="sbx_1",
                platform_post_id=f"{p}-id" if s == "posted" else None,
                platform_post_url=f"https://{p}.example/{post_id}" if s == "posted" else None,
                error=None if s == "posted" else "rejected by the platform",
            )
            for p, s in outcomes.items()
        ], ledger.attempt_row(list(outcomes), provider))


def save_key(user: str, provider: str, key: str) -> None:
    from db import credentials
    from db.vault import Vault

    with conn() as c:
        credentials.save_credentials(c, Vault.from_env(), user, provider, key)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def new_user() -> str:
    return str(uuid.uuid4())


# -- help and usage --------------------------------------------------------------------

@pytest.mark.parametrize(
    "args",
    [[name] for name in COMMANDS]
    + [["campaign", "create"], ["campaign", "show"], ["campaign", "publish"]],
    ids=lambda a: " ".join(a),
)
def test_every_command_has_help(args: list[str]) -> None:
    result = run(*args, "--help")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"Usage: socialpost {' '.join(args)}")
    assert len(result.stdout.splitlines()) > 4


def test_usage_errors_are_one_line(env: dict[str, str]) -> None:
    result = run("history")
    assert result.exit_code == 2
    line = one_error_line(result)
    assert "--user" in line and "socialpost history --help" in line


# -- post, batch, cancel -----------------------------------------------------------------

def test_post_enqueues_a_message_and_prints_the_id(env: dict[str, str], broker: Any) -> None:
    user, pid = new_user(), str(uuid.uuid4())
    result = run("post", "--user", user, "-p", "X,linkedin", "-p", "bluesky", "--media",
                 "https://cdn.example.com/a.jpg", "--post-id", pid, "Launch day")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == pid
    assert f"enqueued post {pid} for twitter, linkedin, bluesky" in result.stderr
    [msg] = queued_messages(broker)
    assert msg["task"] == "social.publish_post"
    kw = msg["kwargs"]
    assert (kw["post_id"], kw["user_id"], kw["content"]) == (pid, user, "Launch day")
    assert kw["platforms"] == ["twitter", "linkedin", "bluesky"]
    assert kw["media_urls"] == ["https://cdn.example.com/a.jpg"]
    assert kw["scheduled_for"] is None


def test_post_reads_content_from_stdin_and_schedules(env: dict[str, str], broker: Any) -> None:
    at = LATER.astimezone(timezone(timedelta(hours=2))).isoformat()
    result = run("post", "--user", new_user(), "-p", "linkedin", "--at", at, "-",
                 input="From a file\nsecond line\n")
    assert result.exit_code == 0, result.output
    [msg] = queued_messages(broker)
    assert msg["kwargs"]["content"] == "From a file\nsecond line"
    assert msg["kwargs"]["scheduled_for"] == LATER.isoformat()


def test_post_bad_input_names_every_field_and_sends_nothing(
    env: dict[str, str], broker: Any
) -> None:
    result = run("post", "--user", "not-a-uuid", "-p", "twitter,myspace", "--at",
                 "2030-01-01T09:00:00", "hi")
    assert result.exit_code == 2
    line = one_error_line(result)
    for field in ("user_id", "platforms", "myspace", "scheduled_for"):
        assert field in line
    assert queued_messages(broker) == []
    assert run("post", "--user", new_user(), "-p", "twitter").exit_code == 2  # no content


def test_post_overrides_from_flags_and_a_file(
    env: dict[str, str], broker: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LATE_API_KEY", "late-global-for-threads")  # a thread needs LATE
    file = tmp_path / "overrides.json"
    file.write_text(json.dumps({"linkedin": {"content": "From the file"},
                                "x": {"content": "the file's, replaced"}}))
    result = run(
        "post", "--user", new_user(), "-p", "x,linkedin", "--overrides", str(file),
        "--override", "twitter.content=Short for X",
        "--override", 'x.thread=["2/ more", "3/ end"]',
        "--override", "twitter.reply_settings=following", "Common words")
    assert result.exit_code == 0, result.output
    [msg] = queued_messages(broker)
    assert msg["kwargs"]["overrides"] == {
        "linkedin": {"content": "From the file"},
        "twitter": {"content": "Short for X", "reply_settings": "following",
                    "thread": [{"content": "2/ more"}, {"content": "3/ end"}]},
    }


def test_post_bad_overrides_name_each_field_and_send_nothing(
    env: dict[str, str], broker: Any
) -> None:
    result = run("post", "--user", new_user(), "-p", "youtube,tiktok", "--media",
                 "https://cdn.example.com/v.mp4", "--override", "youtube.titel=Launch",
                 "--override", "tiktok.express_consent_given=true", "hi")
    assert result.exit_code == 2
    line = one_error_line(result)
    for field in ("overrides.youtube.titel: unknown field", "overrides.youtube.title",
                  "overrides.tiktok.content_preview_confirmed"):
        assert field in line, line
    assert "overrides.tiktok.express_consent_given" not in line
    assert queued_messages(broker) == []
    bad = run("post", "--user", new_user(), "-p", "x", "--override", "x.content", "hi")
    assert bad.exit_code == 2 and "PLATFORM.FIELD=VALUE" in one_error_line(bad)


def test_post_wait_follows_the_post_to_its_end(
    env: dict[str, str], broker: Any, tmp_path: Path
) -> None:
    user, pid = new_user(), str(uuid.uuid4())
    proc = spawn(["post", "--user", user, "-p", "twitter,linkedin", "--post-id", pid,
                  "--wait", "--timeout", "20", "Wait for me"], env, tmp_path)
    try:
        deadline = time.monotonic() + 15
        while not queued_messages(broker) and time.monotonic() < deadline:
            time.sleep(0.05)
        # the worker's part: accept the message, publish, record the outcome
        insert(user, "Wait for me", ("twitter", "linkedin"), id=pid)
        settle(pid, {"twitter": "posted", "linkedin": "failed"})
        out, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == 1, err
    assert out.splitlines()[0] == pid
    assert "status:" in out and "partial" in out
    assert "twitter   posted" in out and "linkedin  failed" in out
    assert err.strip().splitlines()[-1] == (
        f"Error: post {pid} ended partial: linkedin: rejected by the platform"
    )


def test_batch_enqueues_publish_batch(env: dict[str, str], broker: Any) -> None:
    user, campaign = new_user(), str(uuid.uuid4())
    result = run("batch", "--user", user, "--campaign", campaign, "--batch", "3",
                 "-p", "twitter")
    assert result.exit_code == 0, result.output
    [msg] = queued_messages(broker)
    assert msg["task"] == "social.publish_batch"
    assert msg["kwargs"]["campaign_id"] == campaign
    assert msg["kwargs"]["batch_number"] == 3
    assert msg["kwargs"]["post_id"] == result.stdout.strip()
    bad = run("batch", "--user", user, "--campaign", "nope", "--batch", "0", "-p", "twitter")
    assert bad.exit_code == 2
    assert "campaign_id" in one_error_line(bad) and "batch_number" in bad.stderr


def test_cancel(env: dict[str, str]) -> None:
    user = new_user()
    queued = insert(user)
    result = run("cancel", queued)
    assert (result.exit_code, result.stdout.strip()) == (0, f"cancelled post {queued}")
    again = run("cancel", queued)
    assert again.exit_code == 0 and "already cancelled" in again.stdout

    done = insert(user)
    settle(done, {"twitter": "posted"})
    late = run("cancel", done)
    assert late.exit_code == 1
    assert one_error_line(late) == f"Error: too late to cancel post {done}: it is already posted"

    missing = run("cancel", str(uuid.uuid4()))
    assert missing.exit_code == 1 and "no post" in one_error_line(missing)
    bad = run("cancel", "12345")
    assert bad.exit_code == 2 and "post_id" in one_error_line(bad)

    from db import posts

    with conn() as c:
        row = posts.get_post(c, queued)
    assert row is not None and row["status"] == "cancelled"
    assert [t["status"] for t in row["targets"]] == ["cancelled"]


# -- history and show --------------------------------------------------------------------

def test_history_lists_newest_first_with_filters_and_json(env: dict[str, str]) -> None:
    user = new_user()
    first = insert(user, "first post", ("twitter", "linkedin"))
    settle(first, {"twitter": "posted", "linkedin": "failed"})
    second = insert(user, "second post", ("bluesky",))
    third = insert(user, "bad", ("twitter",), status="failed", error_message="content: empty")
    insert(new_user(), "someone else's")

    result = run("history", "--user", user)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["CREATED", "POST", "ID", "STATUS", "TARGETS", "CAMPAIGN",
                                "CONTENT", "ERROR"]
    assert [line.split()[2] for line in lines[1:]] == [third, second, first]
    assert "partial  twitter:posted linkedin:failed" in result.stdout
    assert "someone else" not in result.stdout
    # columns line up: every row's status starts where the header's does
    col = lines[0].index("STATUS")
    assert {line[col:].split()[0] for line in lines[1:]} == {"failed", "queued", "partial"}

    only = run("history", "--user", user, "--status", "queued")
    assert [line.split()[2] for line in only.stdout.splitlines()[1:]] == [second]
    by_platform = run("history", "--user", user, "--platform", "x")
    assert [line.split()[2] for line in by_platform.stdout.splitlines()[1:]] == [third, first]

    data = json.loads(run("history", "--user", user, "--json").stdout)
    assert [p["id"] for p in data["posts"]] == [third, second, first]
    assert data["next"] is None
    posted = data["posts"][2]
    assert posted["user_id"] == user and posted["status"] == "partial"
    assert [(t["platform"], t["status"]) for t in posted["targets"]] == [
        ("twitter", "posted"), ("linkedin", "failed")]
    assert posted["attempts"][0]["outcome"] == "published"
    assert posted["created_at"].startswith(str(time.gmtime().tm_year))


def test_history_pages_with_a_cursor(env: dict[str, str]) -> None:
    user = new_user()
    ids = [insert(user, f"post {i}") for i in range(3)]
    page = run("history", "--user", user, "--limit", "2")
    assert len(page.stdout.splitlines()) == 3
    assert "more: --before '" in page.stderr
    data = json.loads(run("history", "--user", user, "--limit", "2", "--json").stdout)
    assert [p["id"] for p in data["posts"]] == ids[:0:-1]
    rest = json.loads(
        run("history", "--user", user, "--limit", "2", "--before", data["next"], "--json").stdout
    )
    assert [p["id"] for p in rest["posts"]] == [ids[0]] and rest["next"] is None


def test_history_errors(env: dict[str, str]) -> None:
    bad = run("history", "--user", "nope")
    assert bad.exit_code == 2 and "--user" in one_error_line(bad)
    unknown = run("history", "--user", new_user(), "--platform", "myspace")
    assert unknown.exit_code == 2 and "--platform" in one_error_line(unknown)
    cursor = run("history", "--user", new_user(), "--before", "garbage")
    assert cursor.exit_code == 2 and "before" in one_error_line(cursor)
    assert run("history", "--user", new_user()).stdout.strip() == "no posts"


def test_show_prints_header_targets_and_attempts(env: dict[str, str]) -> None:
    user = new_user()
    pid = insert(user, "Show me\nall", ("twitter", "linkedin"))
    settle(pid, {"twitter": "posted", "linkedin": "failed"})
    result = run("show", pid)
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert f"post:       {pid}" in out and "status:     partial" in out
    assert "content:    Show me all" in out
    targets = out.split("\nTargets\n")[1].split("\n\nAttempts\n")[0].splitlines()
    assert targets[0].split() == ["PLATFORM", "STATUS", "PROVIDER", "SOURCE", "PLATFORM", "ID",
                                  "URL", "ERROR"]
    assert targets[1].split()[:5] == ["twitter", "posted", "postforme", "user", "twitter-id"]
    assert f"https://twitter.example/{pid}" in targets[1]
    assert targets[2].endswith("rejected by the platform")
    attempts = out.split("\nAttempts\n")[1].splitlines()
    assert attempts[1].split()[3:] == ["0", "postforme", "user", "twitter,linkedin", "201",
                                       "42", "ms", "published", "-"]

    data = json.loads(run("show", pid, "--json").stdout)
    assert data["id"] == pid and data["content"] == "Show me\nall"
    assert len(data["targets"]) == 2 and data["attempts"][0]["http_status"] == 201

    missing = run("show", str(uuid.uuid4()))
    assert missing.exit_code == 1 and "no post" in one_error_line(missing)
    assert run("show", "xyz").exit_code == 2


def test_database_unreachable_is_one_line(env: dict[str, str], tmp_path: Path) -> None:
    env = {**env, "DATABASE_URL": f"postgresql://postgres@127.0.0.1:{closed_port()}/x"}
    for args in (["history", "--user", new_user()], ["show", new_user()],
                 ["cancel", new_user()]):
        result = sp(args, env, tmp_path)
        assert result.returncode == 1, result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("Error: cannot reach the database:")
        assert "Connection refused" in lines[0]


def test_migrate_waits_for_the_database_then_gives_up_in_one_line(env: dict[str, str]) -> None:
    port = closed_port()
    start = time.monotonic()
    result = run("migrate", "--wait", "1",
                 "--database-url", f"postgresql://postgres@127.0.0.1:{port}/x")
    assert result.exit_code == 1
    assert 1 <= time.monotonic() - start < 5
    line = one_error_line(result)
    assert line.startswith(f"Error: gave up after 1 s waiting for PostgreSQL at 127.0.0.1:{port}")
    assert run("migrate", "--wait", "5").stdout.strip() == "up to date"


def test_broker_unreachable_is_one_line(env: dict[str, str], tmp_path: Path) -> None:
    env = {**env, "REDIS_URL": f"redis://127.0.0.1:{closed_port()}/0"}
    result = sp(["post", "--user", new_user(), "-p", "twitter", "hi"], env, tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip().startswith("Error: cannot reach the broker")
    assert len(result.stderr.strip().splitlines()) == 1


# -- campaigns -----------------------------------------------------------------------------

CALENDAR = {
    "batches": [
        {"caption": "Teaser", "media_urls": ["https://cdn.example.com/t.jpg"]},
        {"caption": "Launch", "scheduled_for": LATER.isoformat()},
        {"caption": "Too old", "scheduled_for": "2020-01-01T00:00:00Z"},
    ]
}


def create_campaign(user: str, tmp_path: Path) -> str:
    path = tmp_path / "calendar.json"
    path.write_text(json.dumps(CALENDAR))
    result = run("campaign", "create", "--user", user, "--name", "Spring", "--calendar",
                 str(path))
    assert result.exit_code == 0, result.output
    assert "with 3 batch(es)" in result.stderr
    return str(uuid.UUID(result.stdout.strip()))


def test_campaign_create_and_show(env: dict[str, str], tmp_path: Path) -> None:
    user = new_user()
    cid = create_campaign(user, tmp_path)
    made = insert(user, "Teaser", ("twitter",), campaign_id=cid, batch_number=1)
    result = run("campaign", "show", cid)
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert f"campaign:  {cid}" in out and "name:      Spring" in out
    batches = out.split("\nBatches\n")[1].split("\n\nPosts\n")[0].splitlines()
    assert batches[0].split() == ["BATCH", "SCHEDULED", "FOR", "MEDIA", "CAPTION"]
    assert batches[1].split() == ["1", "-", "1", "Teaser"]
    assert batches[2].split() == ["2", *LATER.strftime("%Y-%m-%d %H:%M:%SZ").split(), "0",
                                  "Launch"]
    assert out.split("\nPosts\n")[1].splitlines()[1].split()[:3] == ["1", made, "queued"]

    data = json.loads(run("campaign", "show", cid, "--json").stdout)
    assert data["campaign"]["name"] == "Spring"
    assert [b["batch_number"] for b in data["batches"]] == [1, 2, 3]
    assert data["batches"][1]["scheduled_for"] == LATER.isoformat()
    assert [p["id"] for p in data["posts"]] == [made]

    missing = run("campaign", "show", str(uuid.uuid4()))
    assert missing.exit_code == 1 and "no campaign" in one_error_line(missing)


def test_campaign_create_refuses_a_bad_calendar(env: dict[str, str], tmp_path: Path) -> None:
    user = new_user()
    broken = run("campaign", "create", "--user", user, "--name", "x", "--calendar", "-",
                 input='{"batches": [')
    assert broken.exit_code == 2 and "--calendar: not valid JSON" in one_error_line(broken)
    no_caption = run("campaign", "create", "--user", user, "--name", "x", "--calendar", "-",
                     input='[{"caption": "ok"}, {"media_urls": []}]')
    assert no_caption.exit_code == 2
    assert one_error_line(no_caption) == "Error: --calendar: batch 2: caption: missing or empty"
    typo = run("campaign", "create", "--user", user, "--name", "x", "--calendar", "-",
               input='[{"caption": "ok", "overrides": {"youtube": {"titel": "t"}}}]')
    assert typo.exit_code == 2
    assert one_error_line(typo).startswith(
        "Error: --calendar: batch 1: overrides.youtube.titel: unknown field")
    with conn() as c:
        count = c.execute("SELECT count(*) AS n FROM campaigns WHERE user_id = %s",
                          (user,)).fetchone()
    assert count is not None and count["n"] == 0  # rolled back


def test_campaign_publish(env: dict[str, str], broker: Any, tmp_path: Path) -> None:
    user = new_user()
    cid = create_campaign(user, tmp_path)
    result = run("campaign", "publish", cid, "-p", "twitter,linkedin", "--no-wait")
    assert result.exit_code == 0, result.output
    assert "enqueued 2 post(s)" in result.stderr and "skipped 1 past" in result.stderr
    rows = [line.split() for line in result.stdout.splitlines()[1:]]
    assert [(r[0], r[-1]) for r in rows] == [("1", "yes"), ("2", "yes"), ("3", "past")]
    ids = [rows[0][1], rows[1][1]]
    # Both batches are recorded at once, from the calendar read once; only the one due
    # now has a message (a delivery), the later one waits in PostgreSQL for beat.
    with conn() as c:
        made = {str(r["id"]): r for r in c.execute(
            "SELECT id, status, content, batch_number, scheduled_for, media_urls "
            "FROM social_posts WHERE campaign_id = %s", (cid,)).fetchall()}
    assert set(made) == set(ids)
    assert [(made[i]["status"], made[i]["content"], made[i]["batch_number"]) for i in ids] == [
        ("queued", "Teaser", 1), ("scheduled", "Launch", 2)]
    assert made[ids[0]]["media_urls"] == ["https://cdn.example.com/t.jpg"]
    assert made[ids[1]]["scheduled_for"] == LATER
    sent = queued_messages(broker)
    assert [(m["task"], m["args"]) for m in sent] == [("social.deliver", [ids[0]])]

    # the worker's part, then a re-run (same ids: harmless) follows them to the summary
    settle(ids[0], {"twitter": "posted", "linkedin": "posted"})
    with conn() as c:  # as beat's release would, once its time has come
        c.execute("UPDATE social_posts SET status = 'queued' WHERE id = %s", (ids[1],))
    settle(ids[1], {"twitter": "posted", "linkedin": "failed"})
    followed = run("campaign", "publish", cid, "-p", "linkedin", "-p", "twitter")
    assert followed.exit_code == 1
    summary = [line.split() for line in followed.stdout.splitlines()]
    assert summary[0] == ["BATCH", "POST", "ID", "STATUS", "TARGETS", "ERROR"]
    assert summary[1][:5] == ["1", ids[0], "posted", "twitter:posted", "linkedin:posted"]
    assert summary[2][:5] == ["2", ids[1], "partial", "twitter:posted", "linkedin:failed"]
    assert followed.stderr.strip().splitlines()[-1] == (
        "Error: 1 of 2 post(s) did not post everywhere"
    )

    missing = run("campaign", "publish", str(uuid.uuid4()), "-p", "twitter")
    assert missing.exit_code == 1 and "no campaign" in one_error_line(missing)


# -- accounts and OAuth, against the sandbox ------------------------------------------

def test_accounts_lists_every_credential_of_the_chain(
    env: dict[str, str], sandbox: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    user, key = new_user(), "user-pfm-" + uuid.uuid4().hex
    mine = {a["platform"]: a for a in sandbox.register_key("postforme", key,
                                                           ["twitter", "linkedin"])}
    save_key(user, "postforme", key)
    monkeypatch.setenv("LATE_API_KEY", "global-late-" + uuid.uuid4().hex)
    sandbox.register_key("late", os.environ["LATE_API_KEY"], ["bluesky"])
    # Another user's account on the global key (in their own profile) is never shown.
    sandbox.add_account("late", os.environ["LATE_API_KEY"], "threads", profile=new_user())

    result = run("accounts", "--user", user)
    assert result.exit_code == 0, result.output
    rows = [line.split() for line in result.stdout.splitlines()]
    assert rows[0] == ["PLATFORM", "USERNAME", "ID", "PROVIDER", "SOURCE", "OWNER"]
    assert [(r[0], r[3], r[4], r[5]) for r in rows[1:]] == [
        ("linkedin", "postforme", "user", "user"), ("twitter", "postforme", "user", "user"),
        ("bluesky", "late", "global", "shared")]
    assert rows[2][1:3] == [mine["twitter"]["username"], mine["twitter"]["id"]]

    data = json.loads(run("accounts", "--user", user, "--json").stdout)
    assert data["user_id"] == user and data["errors"] == []
    assert {(a["platform"], a["source"]) for a in data["accounts"]} == {
        ("twitter", "user"), ("linkedin", "user"), ("bluesky", "global")}
    assert key not in result.output

    sandbox.revoke_key("postforme", key)
    revoked = run("accounts", "--user", user)
    assert revoked.exit_code == 1
    assert "bluesky" in revoked.stdout and "twitter" not in revoked.stdout
    assert revoked.stderr.splitlines() == [
        "warning: postforme (user): credential_rejected: HTTP 401: Invalid or missing API key",
        "Error: could not list accounts for postforme (user)",
    ]


def test_accounts_without_any_credential(env: dict[str, str], sandbox: Any) -> None:
    result = run("accounts", "--user", new_user())
    assert result.exit_code == 1
    assert "no stored credentials" in one_error_line(result)


def test_oauth_url(env: dict[str, str], sandbox: Any) -> None:
    user, key = new_user(), "user-late-" + uuid.uuid4().hex
    sandbox.register_key("late", key, ["twitter"])
    save_key(user, "late", key)
    result = run("oauth-url", "--user", user, "-p", "linkedin", "--redirect",
                 "https://app.example/cb")
    assert result.exit_code == 0, result.output
    url = result.stdout.strip()
    assert url.startswith("http://127.0.0.1:") and "/oauth/linkedin" in url
    assert "redirect_url=https%3A%2F%2Fapp.example%2Fcb" in url
    assert "connect URL from LATE (user)" in result.stderr

    none = run("oauth-url", "--user", user, "-p", "linkedin", "--redirect",
               "https://app.example/cb", "--provider", "postforme")
    assert none.exit_code == 1 and "no credential matching" in one_error_line(none)
    bad = run("oauth-url", "--user", user, "-p", "myspace", "--redirect", "https://a.b/c")
    assert bad.exit_code == 2 and "--platform" in one_error_line(bad)
    sandbox.revoke_key("late", key)
    refused = run("oauth-url", "--user", user, "-p", "linkedin", "--redirect",
                  "https://app.example/cb")
    assert refused.exit_code == 1
    assert one_error_line(refused).startswith("Error: no connect URL for linkedin: LATE (user):")


# -- worker, beat, flower ------------------------------------------------------------------

def test_process_commands_build_the_celery_command(env: dict[str, str], tmp_path: Path) -> None:
    prefix = f"{sys.executable} -m celery -A worker"
    worker = run("worker", "-c", "4", "-Q", "social.publish", "--dry-run", "--",
                 "--max-tasks-per-child", "100")
    assert worker.stdout.strip() == (
        f"{prefix} worker --loglevel INFO --concurrency 4 --queues social.publish "
        "--max-tasks-per-child 100"
    )
    bad = run("worker", "-c", "many")
    assert bad.exit_code == 2 and "--concurrency" in one_error_line(bad)

    beat = run("beat", "--dry-run")
    schedule = tmp_path / "state" / "celerybeat-schedule"
    assert beat.stdout.strip() == f"{prefix} beat --loglevel INFO --schedule {schedule}"
    assert schedule.parent.is_dir()


def test_flower_requires_auth_unless_told_otherwise(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    refused = run("flower", "--dry-run")
    assert refused.exit_code == 1
    line = one_error_line(refused)
    assert "--basic-auth" in line and "--no-auth" in line

    ok = run("flower", "--basic-auth", "ops:s3cret", "--port", "5601", "--dry-run")
    assert ok.exit_code == 0
    assert ok.stdout.strip() == (
        f"FLOWER_BASIC_AUTH='***' {sys.executable} -m celery -A worker flower --port=5601"
    )
    assert "s3cret" not in ok.output
    bad = run("flower", "--basic-auth", "nopassword", "--dry-run")
    assert bad.exit_code == 2 and "nopassword" not in bad.output

    open_ = run("flower", "--no-auth", "--dry-run")
    assert open_.exit_code == 0 and "without authentication" in open_.stderr
    monkeypatch.setenv("FLOWER_BASIC_AUTH", "ops:s3cret")
    assert run("flower", "--dry-run").exit_code == 0
    assert run("flower", "--no-auth", "--dry-run").exit_code == 2


def test_worker_execs_celery(env: dict[str, str], tmp_path: Path) -> None:
    """The process becomes celery itself: its help answers, through our exec."""
    result = sp(["worker", "--", "--help"], env, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Usage: python -m celery worker" in result.stdout
    assert "--concurrency" in result.stdout
