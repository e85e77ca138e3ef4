"""The sandbox's HTTP/1.1 side: a threaded server and the request handler.

The handler parses request heads itself (the stdlib's parser was too slow for the
benchmark), routes by path prefix to the PostForMe, LATE or control API, records every
provider request, and sends each answer in a single write (TCP_NODELAY) so keep-alive
clients never wait on delayed ACKs. A "hang" answer holds the connection until the
sandbox wakes it, then closes it unanswered; a delayed answer waits the same way, then
goes out.
"""

from __future__ import annotations

import socket
import socketserver
import sys
import threading
import time
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from providers.sandbox import late_api, postforme_api
from providers.sandbox.control import PREFIX as CONTROL_PREFIX
from providers.sandbox.rate_limits import Arrival
from providers.sandbox.state import key_hint
from providers.sandbox.wire import Request, Response, json_response

if TYPE_CHECKING:
    from providers.sandbox.server import SandboxServer

_REASONS = {code: phrase for code, (phrase, _) in BaseHTTPRequestHandler.responses.items()}


class SandboxHTTPServer(ThreadingHTTPServer):
    """Threaded (a thread per connection), quiet about clients that give up. It tracks
    its open connections so stopping it (or an outage) can drop keep-alive clients.
    `provider` set: a provider's own port, serving only its API and public media routes."""

    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 512

    sandbox: SandboxServer
    provider: str | None = None

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]) -> None:
        self._conn_lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        super().__init__(address, handler)

    def track(self, conn: socket.socket, alive: bool) -> None:
        with self._conn_lock:
            if alive:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)

    def drop_connections(self) -> None:
        """Shut every open connection down; their handler threads then end."""
        with self._conn_lock:
            connections = list(self._connections)
            self._connections.clear()
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients that give up (timeouts during injected latency) are normal here."""
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the FQDN, which stalls on machines without DNS.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)


class _Headers(dict[str, str]):
    """Request headers with case-insensitive lookup (keys stored lower-case)."""

    def get(self, name: str, default: Any = None) -> Any:
        return dict.get(self, name.lower(), default)

    def __getitem__(self, name: str) -> str:
        return dict.__getitem__(self, name.lower())

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and dict.__contains__(self, name.lower())


MAX_LINE = 65536
MAX_HEADERS = 100


class Handler(BaseHTTPRequestHandler):
    """One keep-alive connection: parse each request, dispatch it by prefix to the
    provider or control API, log provider requests, write the answer in one piece."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server_version = "social-posting-sandbox/1"
    server: SandboxHTTPServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        """Quiet: the sandbox keeps its own request log."""

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.track(self.connection, False)

    def handle_one_request(self) -> None:
        """Parse the request head ourselves: the stdlib's email-based header parser was
        ~40% of the per-request CPU, and the benchmark needs that headroom."""
        self.command = "GET"  # until the request line says otherwise (for error answers)
        line = self.rfile.readline(MAX_LINE + 1)
        if not line:
            self.close_connection = True
            return
        if len(line) > MAX_LINE:
            self._fail(414, "request line too long")
            return
        parts = line.decode("latin-1").split()
        if len(parts) != 3 or not parts[2].startswith("HTTP/"):
            self._fail(400, "bad request line")
            return
        self.raw_requestline = line
        self.command, self.path, self.request_version = parts
        headers = _Headers()
        for _ in range(MAX_HEADERS + 1):
            raw = self.rfile.readline(MAX_LINE + 1)
            if raw in (b"\r\n", b"\n", b""):
                break
            name, sep, value = raw.decode("latin-1").partition(":")
            if not sep:
                self._fail(400, "bad header line")
                return
            key = name.strip().lower()
            value = value.strip()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        else:
            self._fail(431, "too many headers")
            return
        self.headers = headers  # type: ignore[assignment]
        connection = headers.get("connection", "").lower()
        if self.request_version == "HTTP/1.0":
            self.close_connection = "keep-alive" not in connection
        else:
            self.close_connection = "close" in connection
        if headers.get("expect", "").lower() == "100-continue":
            self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        self._dispatch()

    def _fail(self, status: int, message: str) -> None:
        self.close_connection = True
        self._write(json_response(status, {"error": message}))

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _dispatch(self) -> None:
        at, at_monotonic = time.time(), time.monotonic()
        box = self.server.sandbox
        split = urlsplit(self.path)
        path = split.path
        query = parse_qs(split.query, keep_blank_values=True) if split.query else {}
        body = self._read_body()
        host = self.headers.get("Host")
        base_url = f"http://{host}" if host else box.url
        provider: str | None = None
        handler: Any
        if path.startswith(postforme_api.PREFIX):
            provider, prefix, handler = "postforme", postforme_api.PREFIX, box._postforme
        elif path.startswith(late_api.PREFIX):
            provider, prefix, handler = "late", late_api.PREFIX, box._late
        elif path.startswith(CONTROL_PREFIX):
            prefix, handler = CONTROL_PREFIX, box._control
        else:
            prefix, handler = "", None
        misrouted = _misrouted(self.server.provider, box.separate_ports, provider, path)
        if misrouted:
            provider, prefix, handler = None, "", None
        req = Request(
            method=self.command,
            path=path[len(prefix) :],
            full_path=path,
            query=query,
            headers=self.headers,  # type: ignore[arg-type]
            body=body,
            base_url=base_url,
            received_at=at,
            received_monotonic=at_monotonic,
        )
        try:
            if handler is None:
                message = misrouted or f"no route {self.command} {path}"
                resp = json_response(404, {"error": message})
            else:
                resp = handler.handle(req)
        except Exception:  # a sandbox bug must answer 500, not drop the connection
            traceback.print_exc(file=sys.stderr)
            resp = json_response(500, {"error": "sandbox internal error", "code": 500})
        if provider is not None:
            entry: dict[str, Any] = {
                "provider": provider,
                "method": self.command,
                "path": path,
                "status": None if resp.hang_seconds is not None else resp.status,
                "at": at,
                "auth_key_hint": key_hint(req.bearer()),
            }
            if provider == "postforme":
                # our key, as the request named it: refused creates are logged by it too
                entry["external_id"] = _external_id(req) if self.command == "POST" else None
            else:
                entry["request_id"] = self.headers.get("x-request-id")
            entry.update(resp.log)
            if resp.hang_seconds is not None:
                entry["hung"] = True
            box._recorder.record(entry, resp.create_request)
            box._limits.record(
                Arrival(
                    provider=provider,
                    time=at_monotonic,
                    wall_time=at,
                    method=self.command,
                    path=path,
                    status=entry["status"],
                    key_label=entry["auth_key_hint"],
                    rate_limited=bool(resp.log.get("rate_limited")),
                ),
                req.bearer(),
            )
        if resp.hang_seconds is not None:
            box._wake.wait(resp.hang_seconds)
            self.close_connection = True
            return
        if resp.delay_seconds:  # a slow create: the post exists, the answer is late
            box._wake.wait(resp.delay_seconds)
        self._write(resp)

    def _write(self, resp: Response) -> None:
        length = resp.content_length if resp.stream is not None else len(resp.body)
        lines = [
            f"HTTP/1.1 {resp.status} {_REASONS.get(resp.status, 'Unknown')}",
            f"Server: {self.server_version}",
            f"Content-Type: {resp.content_type}",
            f"Content-Length: {length}",
        ]
        lines.extend(f"{name}: {value}" for name, value in resp.headers)
        if self.close_connection:
            lines.append("Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        if self.command == "HEAD":
            self.wfile.write(head)
        elif resp.stream is not None:
            self.wfile.write(head)
            for chunk in resp.stream:
                self.wfile.write(chunk)
        else:
            self.wfile.write(head + resp.body)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _dispatch


PUBLIC_CONTROL = ("sample", "upload", "media", "oauth")  # URLs built from a provider's base


def _misrouted(listener: str | None, separate: bool, provider: str | None, path: str) -> str:
    """Why this listener does not serve `path` ('' when it does): a provider's own port
    serves its API and the media/OAuth routes its answers link to; with separate ports
    the main port serves no provider API (a client must meet the outage it is set up for)."""
    if listener is None:
        if separate and provider is not None:
            return f"{provider} is served on its own port (separate_ports)"
        return ""
    if provider == listener:
        return ""
    route = path[len(CONTROL_PREFIX) + 1 :].split("/", 1)[0]
    if provider is None and path.startswith(CONTROL_PREFIX + "/") and route in PUBLIC_CONTROL:
        return ""
    return f"this port serves only {listener}; the control API is on the main port"


def _external_id(req: Request) -> str | None:
    """The `external_id` a PostForMe create asked for, if its body is readable."""
    try:
        body = req.json()
    except Exception:
        return None
    value = body.get("external_id") if isinstance(body, dict) else None
    return value if isinstance(value, str) else None
