"""The small request/response model the fake APIs are written against.

Handlers return a Response value instead of writing to the socket, so the server can
send headers and body in one write (no Nagle/delayed-ACK stalls on keep-alive), add
provider headers in one place, and turn "hang" into silence.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

_MISSING = object()


class BadJson(ValueError):
    """The body is not the JSON object the route needs."""


@dataclass
class Request:
    method: str
    path: str  # below the provider prefix, no query string
    full_path: str
    query: dict[str, list[str]]
    headers: Mapping[str, str]
    body: bytes
    base_url: str
    received_at: float  # time.time()
    received_monotonic: float = field(default_factory=time.monotonic)  # the limiter's clock
    _json: Any = field(default=_MISSING, repr=False)

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default

    def args(self, name: str) -> list[str]:
        return self.query.get(name, [])

    def json(self) -> Any:
        """The decoded body (an empty body is an empty object)."""
        if self._json is _MISSING:
            if not self.body.strip():
                self._json = {}
            else:
                try:
                    self._json = json.loads(self.body)
                except (ValueError, UnicodeDecodeError) as exc:
                    raise BadJson(f"body is not valid JSON: {exc}") from exc
        return self._json

    def json_object(self) -> dict[str, Any]:
        data = self.json()
        if not isinstance(data, dict):
            raise BadJson("body must be a JSON object")
        return data

    def bearer(self) -> str | None:
        value = self.headers.get("Authorization") or ""
        scheme, _, token = value.partition(" ")
        if scheme.lower() != "bearer":
            return None
        return token.strip() or None


@dataclass
class Response:
    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: list[tuple[str, str]] = field(default_factory=list)
    stream: Iterator[bytes] | None = None  # body produced lazily (Content-Length still set)
    content_length: int | None = None
    hang_seconds: float | None = None  # answer nothing, wait, close the connection
    log: dict[str, Any] = field(default_factory=dict)  # extra fields for the request log
    create_request: bool = False
    stored: bool = False  # this request stored a new post (a replay or a refusal did not)
    delay_seconds: float | None = None  # send the answer this much later (the post exists)


def json_response(
    status: int, payload: Any, headers: list[tuple[str, str]] | None = None
) -> Response:
    body = json.dumps(payload, separators=(",", ":")).encode()
    return Response(status=status, body=body, headers=headers or [])


def now_iso() -> str:
    return iso(time.time())


def iso(ts: float) -> str:
    """UTC ISO-8601 with milliseconds and Z, as both real APIs print timestamps."""
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_when(value: Any) -> float:
    """An ISO-8601 timestamp as a Unix time; naive values are read as UTC."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError("must be an ISO-8601 date-time string")
    text = value.strip()
    if text.endswith(("z", "Z")):
        text = text[:-1] + "+00:00"
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def format_seconds(value: float) -> str:
    """Retry-After style: whole seconds print as integers, fractions as given."""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"
