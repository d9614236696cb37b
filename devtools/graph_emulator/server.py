"""Runs the emulator over HTTPS on loopback in a background thread (tests) or the foreground
(`python -m devtools.graph_emulator`)."""
from __future__ import annotations

import threading

from werkzeug.serving import BaseWSGIServer, make_server

from devtools.graph_emulator.areas import create_app
from devtools.graph_emulator.keep_alive import KeepAliveHandler, OpenConnections
from devtools.graph_emulator.state import World
from devtools.graph_emulator.tls import make_certificates, server_context


class EmulatorServer:
    def __init__(self, world: World | None = None, port: int = 0, host: str = "127.0.0.1",
                 cert_dir: str | None = None) -> None:
        self.world = world or World()
        self.app = create_app(self.world)
        self.ca_path, cert_path, key_path = make_certificates(cert_dir)
        self._server: BaseWSGIServer = make_server(
            host, port, self.app, threaded=True, request_handler=KeepAliveHandler,
            ssl_context=server_context(cert_path, key_path),
        )
        self._server.daemon_threads = True
        self._server.open_connections = OpenConnections()
        self.port = self._server.socket.getsockname()[1]
        self.base_url = f"https://{host}:{self.port}"
        self.world.base_url = self.base_url
        self._thread: threading.Thread | None = None

    @property
    def authority_host(self) -> str:
        return self.base_url

    @property
    def connections_opened(self) -> int:
        """TCP connections accepted so far: stays put while clients reuse kept-alive ones."""
        return self._server.open_connections.opened

    @property
    def api_base(self) -> str:
        return f"{self.base_url}/v1.0"

    def start(self) -> "EmulatorServer":
        self._thread = threading.Thread(target=self._server.serve_forever, name="graph-emulator", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self._server.serve_forever()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._server.open_connections.close_all()
        for hook in list(self.world.services.get("on_stop", [])):
            hook()
        if self._thread:
            self._thread.join(timeout=5)

    def __enter__(self) -> "EmulatorServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
