"""Fixtures and helpers for test modules that run a Graph emulator of their own.

Such modules move the emulator's clock, reset its request counts or change its global settings
(faults, throttling, batch answer order), which the session-wide `graph_emulator` must not see.
They import the fixtures they use by name (`from tests.support.emulator_modules import
emulator, tenant`), or define their own `emulator` with `own_emulator()` when they add routes.

The mailbox probes are minimal Outlook-shaped endpoints, so tests of cross-cutting behaviour
(faults, throttling, JSON batching) do not depend on the events area.
"""
from __future__ import annotations

import contextlib
from typing import Any, Callable, Iterator

import pytest
import requests
from werkzeug.wrappers import Response

from devtools.graph_emulator.app import Ctx, json_response
from devtools.graph_emulator.errors import not_found
from devtools.graph_emulator.identity import CALENDAR_READ, CALENDAR_WRITE, authorize
from devtools.graph_emulator.server import EmulatorServer
from devtools.graph_emulator.state import User
from tests.support.emulator_fixture import EmulatorTenant, new_tenant, start_emulator

MAILBOX_PROBE_ROUTE = "/v1.0/users/<user>/calendar/probe/<item>"


@contextlib.contextmanager
def own_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorServer]:
    """An emulator server for one test module, with its TLS files in a fresh temporary folder."""
    with start_emulator(cert_dir=str(tmp_path_factory.mktemp("tls"))) as server:
        yield server


@pytest.fixture(scope="module")
def emulator(tmp_path_factory) -> Iterator[EmulatorServer]:
    """The importing module's own emulator (see the module docstring for why)."""
    with own_emulator(tmp_path_factory) as server:
        yield server


@pytest.fixture
def tenant(emulator) -> EmulatorTenant:
    """A fresh tenant with two people on the module's `emulator`."""
    return new_tenant(emulator, users=2)


def control(server: EmulatorServer, method: str, path: str, **kwargs: Any) -> requests.Response:
    """A request to `path` on the emulator (usually `/_control/...`) over HTTPS; the answer is not checked."""
    return requests.request(method, server.base_url + path, verify=server.ca_path, timeout=30, **kwargs)


def _probed_mailbox(ctx: Ctx, role: str) -> User:
    caller = authorize(ctx, role)
    with ctx.world.lock:
        user = caller.tenant.find_user(ctx.params["user"])
    if user is None:
        raise not_found("The mailbox was not found.")
    return user


def mailbox_probe(ctx: Ctx) -> Response:
    """Any method, with Calendars.Read: 200 `{"mailbox", "item"}`."""
    user = _probed_mailbox(ctx, CALENDAR_READ)
    return json_response({"mailbox": user.id, "item": ctx.params["item"]})


def echoing_mailbox_probe(ctx: Ctx) -> Response:
    """GET with Calendars.Read: 200 `{"mailbox", "item", "query"}`; POST with Calendars.ReadWrite:
    201 with the JSON body it received added as `received`."""
    posted = ctx.request.method == "POST"
    user = _probed_mailbox(ctx, CALENDAR_WRITE if posted else CALENDAR_READ)
    body = {"mailbox": user.id, "item": ctx.params["item"], "query": ctx.request.args.to_dict()}
    if posted:
        body["received"] = ctx.json()
        return json_response(body, status=201)
    return json_response(body)


def add_mailbox_probe(server: EmulatorServer, handler: Callable[[Ctx], Response] = mailbox_probe) -> None:
    """Serves `handler` for GET and POST at /v1.0/users/<user>/calendar/probe/<item>, counted
    as `test.mailbox_probe`."""
    server.app.route(MAILBOX_PROBE_ROUTE, ["GET", "POST"], handler, name="test.mailbox_probe")
