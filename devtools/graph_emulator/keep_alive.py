"""A request handler that keeps HTTP/1.1 connections open between answers, as Graph's front door
does, so a client's connection pool is exercised (stale sockets, reuse after errors, bodies
left unread) instead of every answer ending with `Connection: close`.

werkzeug's own handler closes after every answer because it cannot tell where a request body
ends once the app has read part of it. This one reads the whole body before the app runs and
buffers the whole answer, so it always knows both lengths: every answer carries
`Content-Length` and the connection stays usable. The emulator's answers are small JSON, so
buffering costs nothing that matters.
"""
from __future__ import annotations

import io
import logging
import socket
import threading

from werkzeug.serving import WSGIRequestHandler

log = logging.getLogger("graph_emulator.access")

# A connection with no new request for this long is closed (Graph's front door also drops idle
# connections; the exact figure is not documented).
IDLE_TIMEOUT_SECONDS = 60
_NO_BODY_STATUSES = {204, 304}
_HOP_BY_HOP = {"connection", "content-length", "transfer-encoding", "keep-alive"}


class OpenConnections:
    """The sockets of live connections, so stopping the server also ends idle kept-alive ones
    (otherwise a pooled client would still get answers from a stopped emulator)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self.opened = 0  # connections accepted so far (tests tell reuse from reconnects by it)

    def add(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.add(sock)
            self.opened += 1

    def discard(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.discard(sock)

    def close_all(self) -> None:
        with self._lock:
            sockets, self._sockets = list(self._sockets), set()
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class KeepAliveHandler(WSGIRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = IDLE_TIMEOUT_SECONDS

    def setup(self) -> None:
        super().setup()
        tracked = getattr(self.server, "open_connections", None)
        if tracked is not None:
            tracked.add(self.connection)

    def finish(self) -> None:
        tracked = getattr(self.server, "open_connections", None)
        if tracked is not None:
            tracked.discard(self.connection)
        super().finish()

    def log_request(self, code="-", size="-"):
        log.debug("%s %s %s", self.command, self.path.split("?")[0], code)

    def run_wsgi(self) -> None:
        if self.headers.get("Expect", "").strip().lower() == "100-continue":
            self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        self.environ = environ = self.make_environ()
        body = self._read_body(environ)
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        environ.pop("HTTP_TRANSFER_ENCODING", None)
        environ["wsgi.input_terminated"] = False
        status, headers, payload = self._call_app(environ)
        self._send(status, headers, payload)

    def _read_body(self, environ) -> bytes:
        if environ.get("wsgi.input_terminated"):  # chunked: werkzeug's reader stops at the last chunk
            return environ["wsgi.input"].read()
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = -1
        if length < 0:  # the body's end is unknown, so the next request's start is too
            self.close_connection = True
            return b""
        return self.rfile.read(length) if length else b""

    def _call_app(self, environ) -> tuple[str, list[tuple[str, str]], bytes]:
        started: dict = {}

        def start_response(status, headers, exc_info=None):
            started["status"], started["headers"] = status, headers
            return chunks.append

        chunks: list[bytes] = []
        try:
            result = self.server.app(environ, start_response)
            try:
                chunks.extend(result)
            finally:
                if hasattr(result, "close"):
                    result.close()
            return started["status"], started["headers"], b"".join(chunks)
        except Exception:  # noqa: BLE001 - answer like a server would, then drop the connection
            log.exception("emulator request failed")
            self.close_connection = True
            return "500 INTERNAL SERVER ERROR", [("Content-Type", "text/plain")], b"Internal Server Error"

    def _send(self, status: str, headers: list[tuple[str, str]], payload: bytes) -> None:
        code_text, _, reason = status.partition(" ")
        code = int(code_text)
        try:
            self.send_response(code, reason)
            for name, value in headers:
                if name.lower() not in _HOP_BY_HOP:
                    self.send_header(name, value)
            if code not in _NO_BODY_STATUSES:
                self.send_header("Content-Length", str(len(payload)))
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            if payload and code not in _NO_BODY_STATUSES and self.command != "HEAD":
                self.wfile.write(payload)
            self.wfile.flush()
        except (ConnectionError, TimeoutError, OSError):
            # The client went away, or a fault closed the socket on purpose: nothing left to say.
            self.close_connection = True
