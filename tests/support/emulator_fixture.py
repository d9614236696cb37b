"""Graph emulator fixtures.

- `graph_emulator` (session): one HTTPS emulator in-process, stopped at the end. Its clock and
  request counts are shared by every test, so a test that moves the clock or resets counts
  must start its own server with `start_emulator()` (e.g. in a module-scoped fixture).
- `make_tenant` (function): a factory returning a fresh, isolated `EmulatorTenant` (own tenant,
  unique domain, app registration with a secret and granted roles, optional users and rooms).
- `graph_session(ca_path, token=None)`: a requests session that trusts the emulator's CA even
  when REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE are set (they silently override `Session.verify`).
"""
from __future__ import annotations

import contextlib
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Iterator

import pytest
import requests

from devtools.graph_emulator import seed
from devtools.graph_emulator.server import EmulatorServer
from devtools.graph_emulator.state import AppRegistration, Room, Tenant, User, World

GRAPH_SCOPE = "https://graph.microsoft.com/.default"


class CaSession(requests.Session):
    """Passes `verify=<ca>` on every request: the only form the CA environment variables cannot
    override. Also usable as MSAL's `http_client`."""

    def __init__(self, ca_path: str, token: str | None = None) -> None:
        super().__init__()
        self.ca_path = ca_path
        if token:
            self.headers["Authorization"] = f"Bearer {token}"

    def request(self, method, url, **kwargs):
        kwargs["verify"] = self.ca_path
        kwargs.setdefault("timeout", 30)
        return super().request(method, url, **kwargs)


def graph_session(ca_path: str, token: str | None = None) -> CaSession:
    return CaSession(ca_path, token)


def post_client_credentials(base_url: str, ca_path: str, tenant: str, client_id: str,
                            client_secret: str) -> requests.Response:
    """The emulator's answer to a client-credentials token request with a secret (not checked)."""
    return requests.post(f"{base_url}/{tenant}/oauth2/v2.0/token", verify=ca_path, timeout=30, data={
        "client_id": client_id, "client_secret": client_secret,
        "grant_type": "client_credentials", "scope": GRAPH_SCOPE,
    })


@contextlib.contextmanager
def start_emulator(world: World | None = None, cert_dir: str | None = None) -> Iterator[EmulatorServer]:
    """An emulator of one's own (own clock, own counts), stopped on exit."""
    server = EmulatorServer(world=world, cert_dir=cert_dir)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@dataclass
class EmulatorTenant:
    """Everything a test needs to talk to one fake tenant."""
    server: EmulatorServer
    tenant: Tenant
    app: AppRegistration
    domain: str
    client_secret: str
    users: list[User] = field(default_factory=list)
    rooms: list[Room] = field(default_factory=list)

    @property
    def world(self) -> World:
        return self.server.world

    @property
    def tenant_id(self) -> str:
        return self.tenant.id

    @property
    def client_id(self) -> str:
        return self.app.client_id

    @property
    def authority(self) -> str:
        return f"{self.server.base_url}/{self.tenant.id}"

    @property
    def token_url(self) -> str:
        return f"{self.authority}/oauth2/v2.0/token"

    @property
    def api_base(self) -> str:
        return self.server.api_base

    @property
    def base_url(self) -> str:
        return self.server.base_url

    @property
    def ca_path(self) -> str:
        return self.server.ca_path

    def token(self) -> str:
        """A fresh app-only access token (client credentials with the secret, no MSAL)."""
        response = post_client_credentials(self.base_url, self.ca_path, self.tenant_id, self.client_id,
                                           self.client_secret)
        response.raise_for_status()
        return response.json()["access_token"]

    def session(self) -> CaSession:
        """A session already carrying a bearer token for this tenant's app."""
        return graph_session(self.ca_path, self.token())

    def msal_app(self, **kwargs):
        """MSAL's ConfidentialClientApplication pointed at the emulator (as the product uses it)."""
        import msal
        kwargs.setdefault("instance_discovery", False)
        return msal.ConfidentialClientApplication(
            self.client_id, client_credential=kwargs.pop("client_credential", self.client_secret),
            authority=self.authority, http_client=graph_session(self.ca_path), **kwargs)


def new_tenant(server: EmulatorServer, roles=None, users: int = 0, rooms: int | list[dict] = 0,
               secret: str | None = None, secret_expires_at: datetime | None = None,
               domain: str | None = None) -> EmulatorTenant:
    """Seeds a tenant with a unique domain (`t<hex>.example.com`) on `server`.

    `roles` defaults to User.Read.All + Calendars.ReadWrite + Place.Read.All. `rooms` is a count
    (Europe/Amsterdam rooms named room-1...) or a list of `seed.add_room` keyword dicts.
    """
    world = server.world
    domain = domain or f"t{uuid.uuid4().hex[:12]}.example.com"
    tenant = seed.create_tenant(world, domain)
    app = seed.add_app(world, tenant, roles=roles, secret=secret, secret_expires_at=secret_expires_at)
    people = seed.add_users(world, tenant, users)
    room_specs = rooms if isinstance(rooms, list) else [
        {"alias": f"room-{n}", "capacity": 4 + 2 * n, "building": "HQ", "floor_number": n,
         "time_zone": "Europe/Amsterdam"} for n in range(1, rooms + 1)]
    made_rooms = [seed.add_room(world, tenant, **spec) for spec in room_specs]
    return EmulatorTenant(server=server, tenant=tenant, app=app, domain=domain,
                          client_secret=app.secrets[0].value, users=people, rooms=made_rooms)


@pytest.fixture(scope="session")
def graph_emulator(tmp_path_factory) -> Iterator[EmulatorServer]:
    with start_emulator(cert_dir=str(tmp_path_factory.mktemp("graph-emulator-tls"))) as server:
        yield server


@pytest.fixture
def make_tenant(graph_emulator):
    """Factory: `make_tenant(roles=None, users=0, rooms=0, secret=None, ...)` -> EmulatorTenant."""
    def make(**kwargs) -> EmulatorTenant:
        return new_tenant(graph_emulator, **kwargs)
    return make


@pytest.fixture
def emulator_tenant(make_tenant) -> EmulatorTenant:
    """A fresh tenant with default roles, three people and two rooms."""
    return make_tenant(users=3, rooms=2)
