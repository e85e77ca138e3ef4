"""Shared HTTP plumbing for both providers: pooled sessions, deadlines, classification.

Why this exists: throughput needs connection reuse (one Session per thread per base URL,
requests.Session is not thread-safe); the worker's exactly-once logic needs every failure
told apart by whether the request may have reached the provider (TRANSIENT vs AMBIGUOUS);
and the worker owns retries, so nothing here ever retries (urllib3 retries are off).
"""

from __future__ import annotations

import email.utils
import json
import re
import socket
import ssl
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError
from urllib3.util import Retry, Timeout

from providers.outcomes import OutcomeKind, PublishOutcome
from providers.redact import clean_error, shorten

USER_AGENT = "social-posting/0.1 (+providers)"
MAX_API_BODY_BYTES = 10 * 1024 * 1024
_CHUNK = 64 * 1024

# Statuses after which the same request may simply be sent again.
TRANSIENT_STATUSES = frozenset({408, 425, 500, 502, 503, 504})
# A 403 refuses the key itself only when it says so; LATE answers 403 for plan limits and
# restricted features too, and marking a working key invalid would stop every post on it.
_BAD_KEY = re.compile(r"invalid|expired|revoked|api[ _-]?key|token|unauthori[sz]ed", re.I)
_NOT_THE_KEY = re.compile(r"plan|limit|quota|feature|upgrade|subscription", re.I)

_local = threading.local()
_URL_IN_ERROR = re.compile(r"with url: \S+")


def session_for(key: str) -> requests.Session:
    """The calling thread's Session for `key` (a base URL or an origin), created once."""
    sessions: dict[str, requests.Session] | None = getattr(_local, "sessions", None)
    if sessions is None:
        sessions = {}
        _local.sessions = sessions
    session = sessions.get(key)
    if session is None:
        session = requests.Session()
        # Proxy settings are read from the environment once, here, not on every request:
        # with trust_env requests rescans os.environ (and stats ~/.netrc) per call, which
        # cost more CPU per post than the rest of our client code together.
        session.proxies.update(requests.utils.get_environ_proxies(key))
        session.trust_env = False
        # No retries at all: a POST resent by urllib3 could publish twice.
        adapter = HTTPAdapter(
            pool_connections=4, pool_maxsize=8, max_retries=Retry(total=0, read=False)
        )
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        session.headers["User-Agent"] = USER_AGENT
        sessions[key] = session
    return session


def close_thread_sessions() -> None:
    """Close this thread's pooled sessions (for worker shutdown and tests)."""
    sessions: dict[str, requests.Session] = getattr(_local, "sessions", None) or {}
    for session in sessions.values():
        session.close()
    sessions.clear()


@dataclass
class HttpAnswer:
    """A complete HTTP answer (any status), its body parsed as JSON when it is JSON."""

    status: int
    headers: Mapping[str, str]
    body: Any
    text: str
    latency_ms: float

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


class TransportError(Exception):
    """No HTTP answer. `kind` says whether the request may have been received:
    TRANSIENT (nothing was sent), AMBIGUOUS (sent, answer lost), REJECTED (bad URL) or
    PACED (held back by our own pacing or an open circuit: nothing was sent)."""

    def __init__(self, kind: OutcomeKind, message: str, latency_ms: float,
                 retry_after: float | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.latency_ms = latency_ms
        self.retry_after = retry_after  # for PACED: when a permit may be had


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """Walk an exception, its args, urllib3 `reason`s and chained causes."""
    seen: set[int] = set()
    stack: list[BaseException] = [exc]
    while stack:
        cur = stack.pop()
        if id(cur) in seen:
            continue
        seen.add(id(cur))
        yield cur
        nxt: list[object] = [getattr(cur, "reason", None), cur.__cause__, cur.__context__]
        nxt.extend(cur.args)
        stack.extend(x for x in nxt if isinstance(x, BaseException))


def _not_sent(exc: BaseException) -> bool:
    """True when the failure happened while connecting, before any byte was sent."""
    return any(
        isinstance(c, NewConnectionError | ConnectTimeoutError | socket.gaierror)
        for c in _causes(exc)
    )


def classify_exception(
    exc: BaseException, read_timeout: float, secrets: Iterable[str | None] = ()
) -> tuple[OutcomeKind, str]:
    """Map a requests failure to (kind, redacted message)."""
    # Request paths and query strings may hold signed tokens: keep them out of errors.
    detail = _URL_IN_ERROR.sub("with url: (hidden)", clean_error(exc, secrets))[:200]
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return OutcomeKind.TRANSIENT, "connect timeout: nothing was sent"
    if isinstance(exc, requests.exceptions.ReadTimeout):
        return (
            OutcomeKind.AMBIGUOUS,
            f"read timeout after {read_timeout:g}s: the request was sent, the answer is unknown",
        )
    if isinstance(
        exc,
        requests.exceptions.InvalidURL
        | requests.exceptions.MissingSchema
        | requests.exceptions.InvalidSchema
        | requests.exceptions.InvalidHeader,
    ):
        return OutcomeKind.REJECTED, f"invalid request: {detail}"
    if isinstance(exc, requests.exceptions.SSLError):
        if any(isinstance(c, ssl.SSLCertVerificationError) for c in _causes(exc)):
            return OutcomeKind.TRANSIENT, f"TLS handshake refused, nothing was sent: {detail}"
        # Past the handshake the request may have gone out: a create must be looked up.
        return OutcomeKind.AMBIGUOUS, f"TLS error, the request may have been sent: {detail}"
    if isinstance(exc, requests.exceptions.ConnectionError) and _not_sent(exc):
        return OutcomeKind.TRANSIENT, f"connection failed, nothing was sent: {detail}"
    return (
        OutcomeKind.AMBIGUOUS,
        f"connection lost after the request was sent: {detail}",
    )


def _socket_of(resp: requests.Response) -> socket.socket | None:
    """The socket under a streamed response (private attributes, so best effort)."""
    raw: Any = resp.raw
    try:
        sock = raw._fp.fp.raw._sock
        if isinstance(sock, socket.socket):
            return sock
    except AttributeError:
        pass
    conn = getattr(raw, "_connection", None)
    sock = getattr(conn, "sock", None)
    return sock if isinstance(sock, socket.socket) else None


def peer_address(resp: requests.Response) -> str | None:
    """The IP the response actually came from, when it can be known."""
    sock = _socket_of(resp)
    if sock is None:
        return None
    try:
        peer = sock.getpeername()
    except OSError:
        return None
    return str(peer[0]) if isinstance(peer, tuple) else None


def read_body(
    resp: requests.Response, *, deadline: float, read_timeout: float, max_bytes: int
) -> bytes:
    """Read a streamed body within a total deadline and a size limit.

    Before each read the socket timeout is cut to the time left, so one slow trickle
    cannot stretch a call past the deadline. Raises TimeoutError or OverflowError."""
    sock = _socket_of(resp)
    chunks: list[bytes] = []
    size = 0
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("deadline passed while reading the answer")
        if sock is not None:
            try:
                sock.settimeout(max(0.01, min(read_timeout, left)))
            except OSError:
                pass
        chunk = resp.raw.read(_CHUNK, decode_content=True)
        if not chunk:
            break
        size += len(chunk)
        if size > max_bytes:
            raise OverflowError(f"answer larger than {max_bytes} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def send(
    method: str,
    url: str,
    *,
    session_key: str,
    connect_timeout: float,
    read_timeout: float,
    headers: Mapping[str, str] | None = None,
    params: Mapping[str, str] | None = None,
    json_body: Any = None,
    data: bytes | None = None,
    secrets: Iterable[str | None] = (),
    max_body: int = MAX_API_BODY_BYTES,
) -> HttpAnswer:
    """One HTTP call, no retries, no redirects, within connect + read seconds in total.

    Returns any HTTP answer (the caller classifies statuses); raises TransportError when
    there is none."""
    secrets = tuple(secrets)
    session = session_for(session_key)
    start = time.monotonic()
    deadline = start + connect_timeout + read_timeout
    timeout = Timeout(
        connect=connect_timeout, read=read_timeout, total=connect_timeout + read_timeout
    )
    try:
        resp = session.request(
            method,
            url,
            headers=dict(headers or {}),
            params=dict(params) if params else None,
            json=json_body,
            data=data,
            timeout=timeout,  # type: ignore[arg-type]  # requests accepts urllib3 Timeout
            stream=True,
            allow_redirects=False,
        )
    except requests.exceptions.RequestException as exc:
        kind, message = classify_exception(exc, read_timeout, secrets)
        raise TransportError(kind, message, _ms(start)) from None
    try:
        raw = read_body(resp, deadline=deadline, read_timeout=read_timeout, max_bytes=max_body)
    except (requests.exceptions.RequestException, OSError, TimeoutError) as exc:
        resp.close()
        # The status line arrived, so the request was received: the outcome is unknown.
        message = (
            f"answer lost while reading (HTTP {resp.status_code}): "
            + clean_error(exc, secrets)[:200]
        )
        raise TransportError(OutcomeKind.AMBIGUOUS, message, _ms(start)) from None
    except OverflowError as exc:
        resp.close()
        raise TransportError(OutcomeKind.AMBIGUOUS, str(exc), _ms(start)) from None
    except Exception as exc:  # urllib3 errors that requests did not wrap
        resp.close()
        message = "answer lost while reading: " + clean_error(exc, secrets)[:200]
        raise TransportError(OutcomeKind.AMBIGUOUS, message, _ms(start)) from None
    resp.raw.release_conn()  # fully read: the connection goes back to the pool for reuse
    text = raw.decode(resp.encoding or "utf-8", errors="replace")
    body: Any = None
    if text.strip():
        try:
            body = json.loads(text)
        except ValueError:
            body = None
    return HttpAnswer(resp.status_code, resp.headers, body, text, _ms(start))


def _ms(start: float) -> float:
    return round((time.monotonic() - start) * 1000.0, 1)


def retry_after_seconds(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds to wait from Retry-After (seconds or HTTP date), else from
    X-Rate-Limit-Reset / X-RateLimit-Reset (a value > 10^9 is a Unix time, else seconds)."""
    now = time.time() if now is None else now
    value = header(headers, "Retry-After")
    if value:
        try:
            return max(0.0, float(value))
        except ValueError:
            pass
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            when = None
        if when is not None:
            if when.tzinfo is None:
                when = when.replace(tzinfo=UTC)
            return max(0.0, when.timestamp() - now)
    for name in ("X-Rate-Limit-Reset", "X-RateLimit-Reset"):
        value = header(headers, name)
        if not value:
            continue
        try:
            number = float(value)
        except ValueError:
            continue
        return max(0.0, number - now) if number > 1e9 else max(0.0, number)
    return None


def header(headers: Mapping[str, str], name: str) -> str | None:
    """A header's value, stripped, whatever the case of its name (plain dicts too)."""
    value = headers.get(name)
    if value is None:  # plain dicts are case-sensitive
        lower = name.lower()
        value = next((v for k, v in headers.items() if k.lower() == lower), None)
    return value.strip() if isinstance(value, str) else None


def _message_of(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "; ".join(filter(None, (_message_of(v) for v in value)))
    if isinstance(value, dict):
        for key in ("message", "error", "detail", "msg"):
            if key in value:
                return _message_of(value[key])
    return ""


def error_message(body: Any, text: str) -> str:
    """The human part of an error answer, from either provider's error shape
    (PostForMe/NestJS: message + errors, "error" being the reason phrase; LATE: error)."""
    if isinstance(body, dict):
        parts: list[str] = []
        for key in ("message", "error", "detail", "error_description"):
            msg = _message_of(body.get(key))
            if msg:
                parts.append(msg)
                break
        errors = _message_of(body.get("errors"))
        if errors and errors not in parts:
            parts.append(errors)
        if parts:
            return ": ".join(parts)
    return shorten(text.strip(), 300) if text.strip() else "(empty answer)"


def http_error(status: int, body: Any, text: str, secrets: Iterable[str | None] = ()) -> str:
    """The seed's error form, "HTTP 503: <message>", redacted and short."""
    return clean_error(f"HTTP {status}: {error_message(body, text)}", secrets)


def _refuses_the_key(status: int, message: str) -> bool:
    if status == 401:
        return True
    return status == 403 and bool(_BAD_KEY.search(message)) and not _NOT_THE_KEY.search(message)


def classify_answer(
    answer: HttpAnswer, provider: str, secrets: Iterable[str | None] = (), *,
    create: bool = False,
) -> PublishOutcome:
    """Outcome for a non-2xx answer (the caller handles 2xx and provider-specific 409).

    For a create (`create=True`), a 5xx, 408 or 425 is no proof that nothing was made: a
    load balancer's 502/504 or a 500 after the row was written mean the post may exist, so
    it is AMBIGUOUS (looked up by our id before anything else); for other calls, asking
    again is harmless and it is TRANSIENT."""
    status = answer.status
    message = error_message(answer.body, answer.text)
    server_side = status in TRANSIENT_STATUSES or (
        500 <= status < 600 and status not in (501, 505))
    if status == 429:
        kind = OutcomeKind.RATE_LIMITED
    elif _refuses_the_key(status, message):
        kind = OutcomeKind.CREDENTIAL_REJECTED
    elif server_side:
        kind = OutcomeKind.AMBIGUOUS if create else OutcomeKind.TRANSIENT
    else:
        kind = OutcomeKind.REJECTED
    retry_after = retry_after_seconds(answer.headers)
    return PublishOutcome(
        kind=kind,
        provider=provider,
        http_status=status,
        error=http_error(status, answer.body, answer.text, secrets),
        retry_after=retry_after
        if kind in (OutcomeKind.RATE_LIMITED, OutcomeKind.TRANSIENT)
        else None,
        latency_ms=answer.latency_ms,
    )


def parse_time(value: object) -> datetime | None:
    """An ISO 8601 time from a provider's answer (a trailing Z included), None if absent
    or unreadable; a time without zone is taken as UTC."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        when = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def utc_iso(when: datetime) -> str:
    """ISO 8601 in UTC; a naive datetime is taken as UTC (the seed's examples are naive)."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).isoformat(timespec="seconds")
