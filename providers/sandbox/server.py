"""SandboxServer: one stdlib HTTP/1.1 keep-alive server speaking PostForMe and LATE.

A thread per connection (ThreadingHTTPServer) keeps hangs and latency from blocking
other clients; each answer goes out in a single write with TCP_NODELAY so keep-alive
clients never wait on delayed ACKs; locks are held only around dict updates.
"""

from __future__ import annotations

import socket
import socketserver
import sys
import threading
import time
import traceback
from collections.abc import Iterable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

from providers.sandbox import late_api, postforme_api
from providers.sandbox.common import Context
from providers.sandbox.control import PREFIX as CONTROL_PREFIX
from providers.sandbox.control import ControlApi
from providers.sandbox.faults import Faults, FaultSpec, check_provider
from providers.sandbox.late_api import LateApi
from providers.sandbox.media import MediaStore
from providers.sandbox.postforme_api import PostForMeApi
from providers.sandbox.state import KeyRegistry, Recorder, key_hint
from providers.sandbox.wire import Request, Response, json_response

_REASONS = {code: phrase for code, (phrase, _) in BaseHTTPRequestHandler.responses.items()}


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 512

    sandbox: SandboxServer

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


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server_version = "social-posting-sandbox/1"
    server: _HTTPServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        """Quiet: the sandbox keeps its own request log."""

    def setup(self) -> None:
        super().setup()
        self.server.sandbox._track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.sandbox._track(self.connection, False)

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
        at = time.time()
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
        req = Request(
            method=self.command,
            path=path[len(prefix) :],
            full_path=path,
            query=query,
            headers=self.headers,  # type: ignore[arg-type]
            body=body,
            base_url=base_url,
            received_at=at,
        )
        try:
            if handler is None:
                resp = json_response(404, {"error": f"no route {self.command} {path}"})
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
                entry["external_id"] = None
            else:
                entry["request_id"] = self.headers.get("x-request-id")
            entry.update(resp.log)
            if resp.hang_seconds is not None:
                entry["hung"] = True
            box._recorder.record(entry, resp.create_request)
        if resp.hang_seconds is not None:
            box._wake.wait(resp.hang_seconds)
            self.close_connection = True
            return
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


class SandboxServer:
    """A local PostForMe (/postforme/v1) and LATE (/late/api/v1) with fault injection.

    Start it, register keys, optionally set faults, and point the real clients at
    `postforme_url` / `late_url`. State lives in memory; `reset()` forgets it all.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        accept_any_key: bool = False,
        duplicate_window_seconds: float = 86400.0,
        seed: int | None = None,
    ) -> None:
        self.host = host
        self._requested_port = port
        self._keys = KeyRegistry(accept_any_key=accept_any_key)
        self._faults = Faults(seed)
        self._recorder = Recorder()
        self.media = MediaStore()
        self._ctx = Context(
            keys=self._keys,
            faults=self._faults,
            recorder=self._recorder,
            media=self.media,
            duplicate_window_seconds=duplicate_window_seconds,
        )
        self._postforme = PostForMeApi(self._ctx)
        self._late = LateApi(self._ctx)
        self._control = ControlApi(self)
        self._wake = threading.Event()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._conn_lock = threading.Lock()
        self._connections: set[socket.socket] = set()

    # -- lifecycle ---------------------------------------------------------------------
    def start(self) -> SandboxServer:
        """Bind, listen and serve in a daemon thread; returns once connections are accepted."""
        if self._httpd is not None:
            return self
        self._wake = threading.Event()
        httpd = _HTTPServer((self.host, self._requested_port), _Handler)
        httpd.sandbox = self
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="sandbox-http",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, wake hung handlers and drop open keep-alive connections."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        self._wake.set()
        httpd.shutdown()
        httpd.server_close()
        with self._conn_lock:
            connections = list(self._connections)
            self._connections.clear()
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _track(self, conn: socket.socket, alive: bool) -> None:
        with self._conn_lock:
            if alive:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)

    def reset(self) -> None:
        """Forget posts, keys, faults, pushed responses, stats, uploads and the log;
        connections left hanging by an earlier test are released."""
        old, self._wake = self._wake, threading.Event()
        old.set()
        self._keys.reset()
        self._faults.reset()
        self._recorder.reset()
        self.media.clear()
        self._postforme.reset()
        self._late.reset()

    # -- addresses ---------------------------------------------------------------------
    @property
    def port(self) -> int:
        if self._httpd is None:
            return self._requested_port
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("", "0.0.0.0") else self.host
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    @property
    def postforme_url(self) -> str:
        return self.url + postforme_api.PREFIX

    @property
    def late_url(self) -> str:
        return self.url + late_api.PREFIX

    # -- keys --------------------------------------------------------------------------
    def register_key(
        self, provider: str, key: str, platforms: Iterable[str] | None = None
    ) -> list[dict[str, Any]]:
        """Connect one account per platform (all nine when None) to `key`; returns the
        accounts as {id, platform, username, profile_id} (platform is the seed name)."""
        if isinstance(platforms, str):
            platforms = [p for p in platforms.split(",") if p.strip()]
        accounts = self._keys.register(provider, key, platforms)
        return [
            {"id": a.id, "platform": a.platform, "username": a.username, "profile_id": a.profile_id}
            for a in accounts
        ]

    def revoke_key(self, provider: str, key: str) -> None:
        """The key answers 401 from now on."""
        self._keys.revoke(provider, key)

    # -- faults ------------------------------------------------------------------------
    def set_faults(self, provider: str, **spec: Any) -> None:
        """Replace the provider's random faults (fields not given go back to healthy)."""
        self._faults.set(check_provider(provider), FaultSpec.from_mapping(spec))

    def get_faults(self) -> dict[str, Any]:
        """Both providers' fault specs plus how many pushed responses are pending."""
        return self._faults.snapshot()

    def push_responses(self, provider: str, responses: Iterable[Mapping[str, Any]]) -> int:
        """Queue scripted answers for the next create-post requests; returns the queue length."""
        return self._faults.push(provider, responses)

    def pending_responses(self, provider: str) -> int:
        return self._faults.pending(provider)

    def seed(self, seed: int | None) -> None:
        """Reseed the fault RNG (reset() restarts from the latest seed)."""
        self._faults.seed(seed)

    # -- observation -------------------------------------------------------------------
    def stats(self) -> dict[str, Any]:
        return self._recorder.stats()

    def created_targets(self) -> dict[str, list[tuple[str | None, str]]]:
        """Per provider, (idempotency key, platform) of every post it holds: one pair per
        account the post went to, so a caller can tell which platform got what."""
        return {
            "postforme": self._postforme.created_targets(),
            "late": self._late.created_targets(),
        }

    def requests(self, provider: str | None = None) -> list[dict[str, Any]]:
        """The last 20,000 API requests, oldest first (key hints only, never keys)."""
        if provider is not None:
            provider = check_provider(provider)
        return self._recorder.requests(provider)
