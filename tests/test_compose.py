"""docker-compose.yml, Dockerfile and .env.example agree with the code.

No Docker engine is needed: `docker-compose config` validates and interpolates the file
offline, PyYAML lets us check its structure, and the `socialpost <cmd>` lines are read from
the text itself. Nothing here skips: scripts/test installs Debian's docker-compose when
neither it nor Docker's compose plugin is there, and PyYAML comes with the dev extra.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
# Where the code reads its settings (tests and benchmarks set their own).
CODE = ["celeryconfig.py", "social_posting_service.py", "db", "providers", "tasks", "worker"]
ENV_NAME = re.compile(
    r"""["']((?:SOCIALPOST|POSTFORME|LATE|CELERY|DATABASE|REDIS|ENCRYPTION|FLOWER)_[A-Z0-9_]+)["']"""
)
# `command: ["socialpost", "worker", "--flag", ...]` (flow lists, one per line)
COMMAND_LINE = re.compile(r"""command:\s*\[\s*["']socialpost["']\s*,?(.*)\]""")
SECRETS = {
    "ENCRYPTION_KEY": "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
    "POSTGRES_PASSWORD": "compose-test",
    "FLOWER_BASIC_AUTH": "ops:compose-test",
}
LONG_RUNNING = {"postgres", "redis", "worker", "beat", "flower", "api", "sandbox"}


def _compose_commands() -> list[list[str]]:
    """Each `socialpost ...` argv the compose file runs, without the leading 'socialpost'."""
    found = []
    for line in COMPOSE.read_text().splitlines():
        match = COMMAND_LINE.search(line)
        if match:
            found.append(re.findall(r"""["']([^"']*)["']""", match.group(1)))
    return found


def _socialpost() -> str:
    """The venv's console script (beside the interpreter running the tests)."""
    here = Path(sys.executable).with_name("socialpost")
    found = str(here) if here.exists() else shutil.which("socialpost")
    assert found, "the socialpost console script is not installed (pip install -e '.[dev]')"
    return found


def _compose_binary() -> list[str] | None:
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=30)
        if probe.returncode == 0:
            return ["docker", "compose"]
    return None


def _run_config(tmp_path: Path, env_lines: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`docker-compose config -q` on a copy of the file, with .env made from .env.example
    and the given values, so a developer's own .env never leaks into the check."""
    binary = _compose_binary()
    assert binary is not None, (
        "neither docker-compose nor `docker compose` is installed: scripts/test installs "
        "Debian's docker-compose (apt-get install --no-install-recommends docker-compose)"
    )
    shutil.copy(COMPOSE, tmp_path / "docker-compose.yml")
    lines = []
    for line in ENV_EXAMPLE.read_text().splitlines():
        name = line.split("=", 1)[0]
        lines.append(f"{name}={env_lines[name]}" if name in env_lines else line)
    (tmp_path / ".env").write_text("\n".join(lines) + "\n")
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(tmp_path)}
    return subprocess.run(
        [*binary, "--project-directory", str(tmp_path), "-f", str(tmp_path / "docker-compose.yml"),
         "config", "-q"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
    )


def _load_yaml() -> dict[str, Any]:
    import yaml  # the dev extra's PyYAML

    data = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(data, dict)
    return data


def test_compose_runs_every_process_through_our_cli() -> None:
    names = [argv[0] for argv in _compose_commands()]
    assert sorted(names) == ["api", "beat", "flower", "migrate", "sandbox", "worker"]


@pytest.mark.parametrize("argv", _compose_commands(), ids=lambda argv: argv[0])
def test_each_compose_command_and_its_options_exist_in_the_cli(argv: list[str]) -> None:
    """A renamed command or option would only show up as a crash loop in a container."""
    from worker.cli import COMMANDS

    name = argv[0]
    assert name in COMMANDS, f"compose runs `socialpost {name}`, which the CLI lacks"
    shown = subprocess.run(
        [_socialpost(), name, "--help"], capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert shown.returncode == 0, shown.stderr
    for option in (a for a in argv[1:] if a.startswith("--")):
        assert option in shown.stdout, f"`socialpost {name}` has no option {option}"


def test_compose_config_is_valid(tmp_path: Path) -> None:
    done = _run_config(tmp_path, SECRETS)
    assert done.returncode == 0, done.stderr


def test_flower_refuses_to_start_without_basic_auth(tmp_path: Path) -> None:
    assert "${FLOWER_BASIC_AUTH:?" in COMPOSE.read_text()
    done = _run_config(tmp_path, {**SECRETS, "FLOWER_BASIC_AUTH": ""})
    assert done.returncode != 0
    assert "set FLOWER_BASIC_AUTH=user:password" in done.stderr


def test_services_have_healthchecks_and_ordered_start() -> None:
    services = _load_yaml()["services"]
    assert set(services) == LONG_RUNNING | {"migrate"}
    for name in LONG_RUNNING:
        assert "healthcheck" in services[name], f"{name} has no healthcheck"
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in ("worker", "beat", "flower", "api"):
        needs = services[name]["depends_on"]
        assert needs["postgres"]["condition"] == "service_healthy"
        assert needs["redis"]["condition"] == "service_healthy"
        assert needs["migrate"]["condition"] == "service_completed_successfully"
    assert "--appendonly" in services["redis"]["command"]
    assert services["worker"]["env_file"] == ".env"


def test_env_example_lists_every_variable_the_code_reads() -> None:
    documented = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=", ENV_EXAMPLE.read_text(), re.M))
    read: dict[str, str] = {}
    for entry in CODE:
        path = ROOT / entry
        files = [path] if path.is_file() else sorted(path.rglob("*.py")) if path.exists() else []
        for file in files:
            for name in ENV_NAME.findall(file.read_text(encoding="utf-8")):
                read.setdefault(name, str(file.relative_to(ROOT)))
    assert read, "found no environment variables in the code: has the layout changed?"
    missing = {name: where for name, where in read.items() if name not in documented}
    assert not missing, f"add these to .env.example: {missing}"
    # ...and everything compose interpolates is documented there too.
    interpolated = set(re.findall(r"(?<!\$)\$\{([A-Z][A-Z0-9_]*)", COMPOSE.read_text()))
    assert interpolated <= documented, interpolated - documented


def test_dockerfile_installs_the_package_on_python_311_slim() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim\b", text, re.M)
    assert "pip install /src" in text
