"""schemathesis against the served /openapi.json of a real `socialpost api` process, with
an admin token: no answer is a 5xx, and every answer (status, content type, headers,
body) is one the document declares. Bounded (a fixed seed, a few dozen examples per
operation) so CI spends well under a minute here."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.api_stack import Api, start_api, token
from tests.workers import _retire_leftovers

EXAMPLES = 25
CHECKS = ("not_a_server_error,status_code_conformance,content_type_conformance,"
          "response_headers_conformance,response_schema_conformance,negative_data_rejection,"
          "missing_required_header,unsupported_method,allow_header_conformance,ignored_auth")


@pytest.fixture(scope="module")
def api(database_url: str, redis_url: str, sandbox_server: Any,
        tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    with start_api(tmp_path_factory, database_url, redis_url, {}, workers=False) as served:
        yield served
    _retire_leftovers()  # what it accepted must not be sent by the next module's workers


def test_every_answer_matches_the_openapi_document(api: Api, tmp_path: Path) -> None:
    # One worker: with two threads, hypothesis parses lambdas' source at once, and
    # CPython 3.11's ast.parse is not safe across threads ("AST constructor recursion
    # depth mismatch", a crash of schemathesis seen once in CI). The run takes ~20 s.
    st = Path(sys.executable).with_name("st")
    run = subprocess.run(
        [str(st), "run", f"{api.url}/openapi.json",
         "-H", f"Authorization: Bearer {token(admin=True)}",
         "--checks", CHECKS, "--max-examples", str(EXAMPLES), "--seed", "14",
         "--workers", "1", "--request-timeout", "20", "--no-shrink",
         "--generation-database", "none", "--no-color",
         "--report", "junit", "--report-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=240)
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    selected = re.search(r"Selected: (\d+)/(\d+)", run.stdout)
    tested = re.search(r"Tested: (\d+)", run.stdout)
    assert selected and tested, run.stdout[-3000:]
    assert int(tested.group(1)) == int(selected.group(1)) == int(selected.group(2)) >= 13
