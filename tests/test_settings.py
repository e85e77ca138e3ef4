"""The settings module is the one source of truth for configuration: every variable the
code reads is declared there, documented in .env.example and the README, parsed once, and
a malformed value stops the processes at start-up with one line naming it."""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import settings
from settings import VARIABLES, SettingsError, load

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
ENV_EXAMPLE = (ROOT / ".env.example").read_text(encoding="utf-8")
# docker-compose's own variables: they configure containers, not our code
COMPOSE_ONLY = {"POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB", "FLOWER_PORT",
                "SANDBOX_PORT", "API_PORT", "SOCIALPOST_IMAGE_TAG", "COMPOSE_PROFILES"}
CODE_DIRS = ("api", "db", "providers", "tasks", "worker")
CODE_FILES = ("celeryconfig.py", "social_posting_service.py")
# Reading a setting; passing the environment on to a child ({**os.environ}) is not one.
ENV_READ = re.compile(r"os\.environ\.get\(|os\.getenv\(|os\.environ\[[^\]]+\](?!\s*=)")


def readme_table() -> dict[str, str]:
    """Variable -> the default column of the README's configuration table."""
    section = README.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `([A-Z][A-Z0-9_]*)`[^|]*\| ([^|]*) \|", section, re.M)
    assert rows, "the README lost its configuration table"
    return {name: default.strip() for name, default in rows}


def test_every_variable_is_documented_in_the_readme_and_env_example() -> None:
    table = readme_table()
    example = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=", ENV_EXAMPLE, re.M))
    declared = {v.env for v in VARIABLES}
    assert declared - set(table) == set(), "add these to the README's configuration table"
    assert declared - example == set(), "add these to .env.example"
    compose = re.findall(r"^\| `([A-Z][A-Z0-9_]*)` / ", README, re.M)
    assert set(table) - declared - COMPOSE_ONLY - set(compose) == set(), \
        "the README documents variables the code does not read"
    assert example - declared - COMPOSE_ONLY == set(), \
        ".env.example lists variables the code does not read"


def test_readme_defaults_match_the_code() -> None:
    table = readme_table()
    for var in VARIABLES:
        if isinstance(var.default, bool) or not isinstance(var.default, int | float):
            continue
        shown = table[var.env].strip("`")
        assert math.isclose(float(shown), float(var.default)), (var.env, shown, var.default)


def test_no_environment_reads_outside_the_settings_module() -> None:
    files = [ROOT / f for f in CODE_FILES]
    for d in CODE_DIRS:
        files += [p for p in (ROOT / d).rglob("*.py") if "sandbox" not in p.parts]
    readers = [f"{p.relative_to(ROOT)}:{n}" for p in files
               for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
               if ENV_READ.search(line) and not line.lstrip().startswith("#")]
    assert readers == [], "read these through settings.current()"


@pytest.mark.parametrize(("env", "value", "message"), [
    ("SOCIALPOST_MAX_TRANSIENT_ATTEMPTS", "abc",
     "SOCIALPOST_MAX_TRANSIENT_ATTEMPTS: must be a whole number, got 'abc'"),
    ("SOCIALPOST_MAX_TRANSIENT_ATTEMPTS", "0",
     "SOCIALPOST_MAX_TRANSIENT_ATTEMPTS: must be >= 1, got '0'"),
    ("SOCIALPOST_BACKOFF_CAP", "nan", "SOCIALPOST_BACKOFF_CAP: must be a finite number"),
    ("SOCIALPOST_STALL_SECONDS", "-3", "SOCIALPOST_STALL_SECONDS: must be >= 0, got '-3'"),
    ("SOCIALPOST_ALLOW_PRIVATE_URLS", "maybe", "SOCIALPOST_ALLOW_PRIVATE_URLS: must be 1 or 0"),
    ("LATE_BASE_URL", "getlate.dev", "LATE_BASE_URL: must be an http(s) URL"),
    ("SOCIALPOST_WORKER_METRICS_PORT", "70000",
     "SOCIALPOST_WORKER_METRICS_PORT: must be a port between 0 (off) and 65535"),
])
def test_a_malformed_value_is_refused_naming_the_variable_and_rule(
    env: str, value: str, message: str
) -> None:
    with pytest.raises(SettingsError) as info:
        load({env: value})
    assert str(info.value).startswith(message) and "\n" not in str(info.value)


def test_values_are_typed_and_blank_means_unset() -> None:
    s = load({"SOCIALPOST_MAX_TRANSIENT_ATTEMPTS": " 7 ", "SOCIALPOST_ALLOW_PRIVATE_URLS": "yes",
              "SOCIALPOST_BACKOFF_BASE": "", "LATE_BASE_URL": "http://127.0.0.1:9/api/"})
    assert s.max_transient_attempts == 7 and s.allow_private_urls is True
    assert s.backoff_base == 1.0 and s.late_base_url == "http://127.0.0.1:9/api"
    assert load({}).broker_url == load({}).redis_url
    with pytest.raises(SettingsError, match="SOCIALPOST_DB_POOL_MAX: must be >= "):
        load({"SOCIALPOST_DB_POOL_MIN": "5", "SOCIALPOST_DB_POOL_MAX": "2"})


def test_secrets_stay_out_of_reprs_and_errors() -> None:
    s = load({"POSTFORME_API_KEY": "pfm-very-secret", "ENCRYPTION_KEY": "k1",
              "DATABASE_URL": "postgresql://u:hunter2@h/db"})
    assert "pfm-very-secret" not in repr(s) and "hunter2" not in repr(s)
    assert s.global_keys() == {"postforme": "pfm-very-secret"}


def test_current_is_parsed_once_per_distinct_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    first = settings.current()
    assert settings.current() is first  # nothing changed: the same object, no parsing
    monkeypatch.setenv("SOCIALPOST_BACKOFF_CAP", "42")
    changed = settings.current()
    assert changed is not first and changed.backoff_cap == 42
    assert settings.current() is changed


@pytest.mark.parametrize("command", [["worker"], ["beat"], ["flower", "--no-auth"], ["demo"]])
def test_processes_refuse_to_start_with_a_malformed_setting(command: list[str]) -> None:
    env = {**os.environ, "SOCIALPOST_MAX_TRANSIENT_ATTEMPTS": "abc"}
    done = subprocess.run([sys.executable, "-m", "worker.cli", *command], env=env,
                          capture_output=True, text=True, timeout=30, cwd=ROOT)
    assert done.returncode != 0
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert lines == ["Error: SOCIALPOST_MAX_TRANSIENT_ATTEMPTS: must be a whole number, "
                     "got 'abc'"], done.stderr
