"""One listening port of the sandbox, and what it does with connections.

Why: a provider can be down in two ways a client must survive, and they fail
differently. Dead ("refuse"): nothing listens, so connects fail at once with
ECONNREFUSED. Black-holed ("blackhole"): the connect never completes and the client's
connect timeout fires. The black hole is a socket listening with backlog 0 that is never
accepted from, whose accept queue we fill with our own dummy connections: the kernel
then drops further SYNs. "serve" is the HTTP server. Leaving "serve" also closes the
open keep-alive connections, so pooled sessions see the outage too. The port stays the
same across modes (SO_REUSEADDR), so a client configured once sees the provider recover.
"""

from __future__ import annotations

import select
import socket
import threading
from typing import TYPE_CHECKING

from providers.sandbox.handler import Handler, SandboxHTTPServer

if TYPE_CHECKING:
    from providers.sandbox.server import SandboxServer

MODES = ("serve", "refuse", "blackhole")
MAX_DUMMIES = 4
DUMMY_CONNECT_WAIT = 0.2  # seconds a dummy connect may take before the queue counts as full


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise ValueError(f"connection mode must be one of {', '.join(MODES)}, got {mode!r}")
    return mode


def _loopback(host: str) -> str:
    return "127.0.0.1" if host in ("", "0.0.0.0") else host


class Listener:
    """A port that serves the sandbox's HTTP (only `provider`'s API when given),
    refuses connections or black-holes them; `mode` can change while started."""

    def __init__(
        self, sandbox: SandboxServer, host: str, port: int, provider: str | None = None
    ) -> None:
        self.sandbox = sandbox
        self.host = host
        self.requested_port = port
        self.provider = provider
        self.mode = "serve"
        self.started = False
        self._lock = threading.Lock()
        self._port: int | None = None  # the bound port, kept across modes until stop()
        self._httpd: SandboxHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._hole: socket.socket | None = None
        self._dummies: list[socket.socket] = []

    @property
    def port(self) -> int:
        return self._port if self._port is not None else self.requested_port

    # -- lifecycle -----------------------------------------------------------------------
    def start(self) -> None:
        with self._lock:
            if self.started:
                return
            self._open(self.mode)
            self.started = True

    def stop(self) -> None:
        """Close everything; a later start() binds the requested port again."""
        with self._lock:
            self._close()
            self.started = False
            self._port = None

    def set_mode(self, mode: str) -> None:
        """Switch to `mode` (the current one is left first); kept for start() if stopped."""
        check_mode(mode)
        with self._lock:
            if mode == self.mode:
                return
            if self.started:
                self._close()
                self._open(mode)
            self.mode = mode

    # -- the three modes (under the lock) ------------------------------------------------
    def _open(self, mode: str) -> None:
        if mode == "serve":
            self._serve()
        elif mode == "blackhole":
            self._blackhole()
        elif self._port is None:  # refuse from the start: still learn our port
            probe = self._bound_socket()
            probe.close()

    def _close(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is not None:
            httpd.shutdown()
            httpd.server_close()
            httpd.drop_connections()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        hole, self._hole = self._hole, None
        if hole is not None:
            hole.close()
        for dummy in self._dummies:
            dummy.close()
        self._dummies = []

    def _serve(self) -> None:
        httpd = SandboxHTTPServer((self.host, self.port), Handler)
        httpd.sandbox = self.sandbox
        httpd.provider = self.provider
        self._port = int(httpd.server_address[1])
        self._httpd = httpd
        name = f"sandbox-http-{self.provider or 'main'}"
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.1}, name=name, daemon=True
        )
        self._thread.start()

    def _bound_socket(self) -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self.port))
        except OSError:
            sock.close()
            raise
        self._port = int(sock.getsockname()[1])
        return sock

    def _blackhole(self) -> None:
        """Listen with backlog 0, never accept, and connect dummies until one cannot
        complete: the accept queue is then full and the kernel drops every new SYN."""
        hole = self._bound_socket()
        hole.listen(0)
        self._hole = hole
        for _ in range(MAX_DUMMIES):
            dummy = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            dummy.setblocking(False)
            self._dummies.append(dummy)
            dummy.connect_ex((_loopback(self.host), self.port))
            _, writable, _ = select.select([], [dummy], [], DUMMY_CONNECT_WAIT)
            if not writable:
                return
