"""The demo `make start` ends with: the emulator's demo tenant connected, its rooms linked as
assets and subscribed, and two commands printed to try both directions. Everything goes
through the app's own REST API, as an admin would; running it again finds what is already
there (a restart with persisted storage) instead of failing."""
from __future__ import annotations

import shlex
import time
from datetime import datetime, timedelta, timezone
from typing import Callable

import requests

from devtools.graph_emulator.seed import (
    DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_DOMAIN, DEMO_ROOMS, DEMO_TENANT_ID,
)


class DemoFailed(RuntimeError):
    pass


def _check(answer: requests.Response, what: str) -> dict:
    if answer.status_code >= 400:
        raise DemoFailed(f"{what}: HTTP {answer.status_code} {answer.text[:300]}")
    return answer.json() if answer.content else {}


def _wait(condition: Callable[[], object], what: str, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.5)  # a start-up script polling the app it just started
    raise DemoFailed(f"timed out waiting for {what}")


def prepare(api: str, key: str) -> dict:
    """Connects the demo tenant, links and subscribes its rooms; returns what the demo needs."""
    session = requests.Session()
    session.headers["x-functions-key"] = key
    integrations = _check(session.get(f"{api}/integrations", timeout=30), "listing integrations")["value"]
    found = next((i for i in integrations if i["tenant_id"] == DEMO_TENANT_ID), None)
    if found is None:
        found = _check(session.post(f"{api}/integrations", timeout=60, json={
            "domains": [DEMO_DOMAIN], "tenant_id": DEMO_TENANT_ID, "client_id": DEMO_CLIENT_ID,
            "client_secret": DEMO_CLIENT_SECRET}), "connecting the demo tenant")
    integration_id = found["id"]
    _wait(lambda: _check(session.get(f"{api}/integrations/{integration_id}/status", timeout=30),
                         "reading the status")["user_sync"]["last_success_at"], "the first user sync")
    assets = {a["mailbox"]: a for a in _check(session.get(f"{api}/assets", params={"integration_id": integration_id},
                                                          timeout=30), "listing assets")["value"]}
    for alias, name, capacity, _building, _floor, zone in DEMO_ROOMS:
        mailbox = f"{alias}@{DEMO_DOMAIN}"
        if mailbox not in assets:
            assets[mailbox] = _check(session.post(f"{api}/assets", timeout=60, json={
                "integration_id": integration_id, "room": mailbox, "name": name, "capacity": capacity,
                "time_zone": zone}), f"linking {mailbox}")
        if assets[mailbox]["subscription"]["state"] != "subscribed":
            _check(session.post(f"{api}/assets/{assets[mailbox]['id']}/subscription", timeout=60),
                   f"subscribing {mailbox}")
    people = _check(session.get(f"{api}/users", params={"integration_id": integration_id, "active": "true"},
                                timeout=30), "listing people")["value"]
    person = next((p for p in people if p.get("email")), None)
    return {"integration_id": integration_id, "assets": assets, "person": person["email"] if person else None}


def commands(api: str, graph_base: str, ca_path: str, key: str, demo: dict) -> list[str]:
    """The two try-it commands: a meeting made in Outlook, and a booking made through the API."""
    tomorrow = (datetime.now(timezone.utc) + timedelta(days=1)).replace(hour=9, minute=0, second=0, microsecond=0)
    start, end = tomorrow.isoformat().replace("+00:00", "Z"), (tomorrow + timedelta(hours=1)).isoformat().replace(
        "+00:00", "Z")
    room = f"{DEMO_ROOMS[0][0]}@{DEMO_DOMAIN}"
    person = demo["person"] or f"someone@{DEMO_DOMAIN}"
    meeting = {"subject": "Demo meeting from Outlook", "start": start, "end": end, "rooms": [room]}
    root = graph_base.rsplit("/v1.0", 1)[0]
    outlook = (f"curl -s --cacert {shlex.quote(ca_path)} -X POST "
               f"{shlex.quote(f'{root}/_control/tenants/{DEMO_TENANT_ID}/mailboxes/{person}/meetings')} "
               f"-H 'content-type: application/json' -d {shlex.quote(_json(meeting))}")
    later = tomorrow + timedelta(hours=2)
    booking = {"asset_id": demo["assets"][f"{DEMO_ROOMS[1][0]}@{DEMO_DOMAIN}"]["id"], "booker": person,
               "start": later.isoformat().replace("+00:00", "Z"),
               "end": (later + timedelta(hours=1)).isoformat().replace("+00:00", "Z"), "subject": "Booked in the platform"}
    platform = (f"curl -s -X POST {shlex.quote(f'{api}/reservations')} -H 'x-functions-key: {key}' "
                f"-H 'content-type: application/json' -d {shlex.quote(_json(booking))}")
    return [outlook, platform]


def _json(value: dict) -> str:
    import json

    return json.dumps(value, separators=(",", ":"))
