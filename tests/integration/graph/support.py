"""The Graph client wired to a Graph emulator of the test module's own (own clock, faults and
request counts), plus helpers for the emulator's control API."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator

import pytest
import requests

from graph.auth import AppTokenProvider, Credential, forget_shared_apps
from graph.client import GraphClient
from graph.concurrency import MailboxLimiter
from graph.config import GraphConfig
from graph.retry import Backoff
from tests.support.emulator_fixture import EmulatorTenant, new_tenant, start_emulator
from tests.support.recording_sleeper import RecordingSleeper

GRAPH_SCOPE = "https://graph.microsoft.com/.default"


class Control:
    """The emulator's control API over HTTPS."""

    def __init__(self, server) -> None:
        self.base = server.base_url
        self.ca = server.ca_path

    def call(self, method: str, path: str, body: Any = None, expect: int | tuple[int, ...] = (200, 201, 202, 204),
             **params: Any) -> Any:
        response = requests.request(method, self.base + path, json=body, params=params or None,
                                    verify=self.ca, timeout=30)
        expected = (expect,) if isinstance(expect, int) else expect
        assert response.status_code in expected, f"{method} {path}: {response.status_code} {response.text}"
        return response.json() if response.content else None

    def add_fault(self, **rule: Any) -> dict:
        return self.call("POST", "/_control/faults", rule, expect=201)

    def fault(self, rule_id: str) -> dict:
        return self.call("GET", f"/_control/faults/{rule_id}")

    def clear_faults(self) -> None:
        self.call("DELETE", "/_control/faults")


@dataclass
class GraphEnv:
    server: Any
    control: Control

    def tenant(self, **kwargs: Any) -> EmulatorTenant:
        return new_tenant(self.server, **kwargs)

    def config(self, **overrides: Any) -> GraphConfig:
        values = dict(authority_host=self.server.base_url, api_base=self.server.api_base,
                      ca_bundle=self.server.ca_path, timeout=(5.0, 30.0), max_retry_wait=30.0,
                      scope=GRAPH_SCOPE)
        values.update(overrides)
        return GraphConfig(**values)

    def provider(self, tenant: EmulatorTenant, *, secret: str | None = None, client_id: str | None = None,
                 tenant_id: str | None = None, credential: Credential | None = None,
                 **config: Any) -> AppTokenProvider:
        return AppTokenProvider(self.config(**config), tenant_id or tenant.tenant_id,
                                client_id or tenant.client_id,
                                credential or Credential(secret or tenant.client_secret))

    def client(self, tenant: EmulatorTenant, *, sleeper: Any = None, limiter: MailboxLimiter | None = None,
               **config: Any) -> GraphClient:
        provider = self.provider(tenant, **config)
        return GraphClient(provider.config, provider, sleep=sleeper or RecordingSleeper(),
                           clock=self.server.world.clock.now,
                           backoff=Backoff(base=0.2, cap=2.0),
                           limiter=limiter or MailboxLimiter())


@pytest.fixture(scope="module")
def graph_env(tmp_path_factory) -> Iterator[GraphEnv]:
    """An emulator of this module's own; MSAL apps cached by earlier modules are dropped."""
    forget_shared_apps()
    with start_emulator(cert_dir=str(tmp_path_factory.mktemp("graph-tls"))) as server:
        yield GraphEnv(server, Control(server))
    forget_shared_apps()


class WebhookReceiver:
    """A notification endpoint on loopback that passes Graph's validation handshake (echoes the
    decoded validationToken as text/plain) and accepts notifications with 202."""

    def __init__(self) -> None:
        import threading

        from werkzeug.serving import make_server
        from werkzeug.wrappers import Request, Response

        self.notifications: list[Any] = []

        @Request.application
        def app(request: Request) -> Response:
            token = request.args.get("validationToken")
            if token is not None:
                return Response(token, status=200, mimetype="text/plain")
            self.notifications.append(request.get_json(silent=True))
            return Response(status=202)

        self._server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.socket.getsockname()[1]}/notify"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture(scope="module")
def webhook_receiver() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver()
    yield receiver
    receiver.stop()
