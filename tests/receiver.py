"""A real webhook receiver for tests and bench/events.py: an HTTP server in a thread on
127.0.0.1 that keeps every request it answered 2xx (headers and raw body) and can answer
500 every other time (`flaky`) or be down (stopped, then started again on its port)."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Delivery:
    """One request the receiver took (answered 2xx)."""

    headers: dict[str, str]
    body: bytes
    at: float  # time.time() when it arrived

    @property
    def id(self) -> str:
        return self.headers["webhook-id"]

    @property
    def event(self) -> dict[str, Any]:
        return dict(json.loads(self.body))


@dataclass
class Receiver:
    port: int = 0
    flaky: bool = False  # answer 500 to every other request
    trickle: float = 0.0  # > 0: answer 200 with a body of one byte every `trickle` s
    got: list[Delivery] = field(default_factory=list)
    refused: int = 0  # requests answered 500
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _count: int = 0

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as real receivers do

            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                with receiver._lock:
                    receiver._count += 1
                    fail = receiver.flaky and receiver._count % 2 == 1
                    if fail:
                        receiver.refused += 1
                    else:
                        receiver.got.append(Delivery(
                            {k.lower(): v for k, v in self.headers.items()}, body, time.time()))
                if receiver.trickle > 0 and not fail:
                    self._trickle()
                    return
                self.send_response(500 if fail else 204)
                if fail:
                    self.send_header("content-length", "0")
                self.end_headers()

            def _trickle(self) -> None:
                """A receiver that answers at once, then sends its body a byte at a time
                (each read on our side gets something before its timeout)."""
                self.send_response(200)
                self.send_header("content-length", "1000")
                self.end_headers()
                try:
                    for _ in range(1000):
                        self.wfile.write(b".")
                        self.wfile.flush()
                        time.sleep(receiver.trickle)
                except OSError:  # the sender gave up and closed: what we want
                    pass

            def log_message(self, *_: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        server.daemon_threads = True
        self.port = server.server_address[1]
        self._server = server
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    def snapshot(self) -> list[Delivery]:
        with self._lock:
            return list(self.got)

    def by_id(self) -> dict[str, Delivery]:
        """What arrived, one per webhook-id (a receiver dedupes on it)."""
        return {d.id: d for d in self.snapshot()}


def main() -> None:
    """Run a receiver in a process of its own (bench/events.py: a receiver is another
    machine's, not a thread beside the sandbox): prints its port, then one line
    `<webhook-id> <arrival time>` per request taken, flushed as they come."""
    import sys

    receiver = Receiver(port=int(sys.argv[1]) if len(sys.argv) > 1 else 0).start()
    print(receiver.port, flush=True)
    seen = 0
    while True:
        time.sleep(0.1)
        got = receiver.snapshot()
        for d in got[seen:]:
            print(d.id, d.at, flush=True)
        seen = len(got)


if __name__ == "__main__":
    main()
