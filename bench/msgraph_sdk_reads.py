"""Microsoft's own Python SDK (msgraph-sdk, kiota + httpx) reading the Graph emulator.

The emulator is written from Graph's documentation; the SDK is generated from Graph's metadata and
sends the URL spellings real clients send (`/users/delta()`, `/places/graph.room`,
`/calendarView/delta()`, `$count` segments) and parses answers with kiota's typed models. Running
one against the other finds the places where the emulator answers a shape Graph never would.

Seeds a tenant in an in-process emulator (people, rooms, a room list, meetings booked the way
Outlook books them, a recurring one) and reads, through the SDK only: users (paged, sorted and
searched), a users delta round, rooms through `places.graph_room` and its `$count`, the rooms of a
room list, events, a series' instances, a room's calendarView delta (and a replay of its
deltaLink after a change) and subscriptions (created through the SDK, so the validation
handshake runs against a small local receiver). Every read is checked against what was seeded;
the script prints one line per read and exits non-zero if any check failed.

    .venv/bin/python -m bench.msgraph_sdk_reads

Needs `pip install -r requirements-bench.txt`. tests/integration/emulator/test_msgraph_sdk.py
runs the same reads as a test when the SDK is installed.
"""
from __future__ import annotations

import asyncio
import ssl
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Awaitable, Callable
from urllib.parse import parse_qs, urlsplit

import requests

from bench.figures import Recorder
from devtools.graph_emulator import room_lists, seed
from devtools.graph_emulator.server import EmulatorServer
from devtools.graph_emulator.state import Room, Tenant, User

GRAPH_SCOPE = "https://graph.microsoft.com/.default"
PEOPLE = 6


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    seconds: float


@dataclass
class Seeded:
    """What the reads must find."""
    server: EmulatorServer
    tenant: Tenant
    client_id: str
    secret: str
    people: list[User]
    rooms: list[Room]
    room_list_email: str
    series_id: str
    series_occurrences: int
    organizer: User
    window: tuple[datetime, datetime]
    receiver_url: str
    meeting_ids: list[str] = field(default_factory=list)


# ---- a subscriber that passes the validation handshake --------------------------------------------------

class _Receiver(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        token = parse_qs(urlsplit(self.path).query).get("validationToken")
        body = token[0].encode() if token else b""
        self.send_response(200 if token else 202)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


def start_receiver() -> ThreadingHTTPServer:
    receiver = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    return receiver


# ---- seeding ---------------------------------------------------------------------------------------------

def _control(server: EmulatorServer, method: str, path: str, body: dict) -> dict:
    response = requests.request(method, f"{server.base_url}/_control{path}", json=body, verify=server.ca_path,
                                timeout=30)
    assert response.status_code in (200, 201, 204), f"{method} {path}: {response.status_code} {response.text}"
    return response.json() if response.content else {}


def seed_tenant(server: EmulatorServer, receiver_url: str) -> Seeded:
    world = server.world
    tenant = seed.create_tenant(world, "sdk.example.com")
    app = seed.add_app(world, tenant)
    people = seed.add_users(world, tenant, PEOPLE)
    rooms = [seed.add_room(world, tenant, f"room-{n}", capacity=4 + n, building="HQ", floor_number=n,
                           time_zone="Europe/Amsterdam") for n in (1, 2, 3)]
    with world.lock:
        room_lists.put_room_list(tenant, "hq-rooms@sdk.example.com", "HQ rooms", [r.email for r in rooms[:2]])
    organizer = people[0]
    now = world.clock.now().replace(minute=0, second=0, microsecond=0)
    start = now + timedelta(days=1, hours=1)
    window = (now, now + timedelta(days=8))
    meetings = f"/tenants/{tenant.id}/mailboxes/{organizer.mail}/meetings"
    made = []
    for n, placement in enumerate(("location", "attendee")):
        begins = start + timedelta(hours=2 * n)
        made.append(_control(server, "POST", meetings, {
            "subject": f"Meeting {n}", "start": begins.isoformat(), "end": (begins + timedelta(hours=1)).isoformat(),
            "rooms": [rooms[n].email], "attendees": [people[1].mail], "roomPlacement": placement})["event"]["id"])
    series_start = start + timedelta(hours=6)
    series = _control(server, "POST", meetings, {
        "subject": "Weekly", "start": series_start.isoformat(),
        "end": (series_start + timedelta(minutes=30)).isoformat(), "rooms": [rooms[2].email],
        "recurrence": {"pattern": {"type": "daily", "interval": 1},
                       "range": {"type": "numbered", "startDate": series_start.date().isoformat(),
                                 "numberOfOccurrences": 3}}})["event"]
    return Seeded(server=server, tenant=tenant, client_id=app.client_id, secret=app.secrets[0].value,
                  people=people, rooms=rooms, room_list_email="hq-rooms@sdk.example.com", series_id=series["id"],
                  series_occurrences=3, organizer=organizer, window=window, receiver_url=receiver_url,
                  meeting_ids=made)


# ---- the SDK ---------------------------------------------------------------------------------------------------

def sdk_client(seeded: Seeded):
    """GraphServiceClient with azure-identity's ClientSecretCredential against the emulator's
    token endpoint and the SDK's default middleware (retry, redirect, headers)."""
    import httpx
    from azure.identity import ClientSecretCredential
    from kiota_authentication_azure.azure_identity_authentication_provider import (
        AzureIdentityAuthenticationProvider,
    )
    from msgraph import GraphRequestAdapter, GraphServiceClient
    from msgraph_core import GraphClientFactory

    server = seeded.server
    host = server.authority_host.split("://", 1)[1]
    credential = ClientSecretCredential(seeded.tenant.id, seeded.client_id, seeded.secret, authority=host,
                                        disable_instance_discovery=True, connection_verify=server.ca_path)
    auth = AzureIdentityAuthenticationProvider(credential, scopes=[GRAPH_SCOPE], allowed_hosts=[host.split(":")[0]])
    http = httpx.AsyncClient(verify=ssl.create_default_context(cafile=server.ca_path), timeout=60)
    http = GraphClientFactory.create_with_default_middleware(client=http)
    adapter = GraphRequestAdapter(auth, client=http)
    adapter.base_url = server.api_base
    return GraphServiceClient(request_adapter=adapter), http, credential


def _config(query=None, **headers: str):
    from kiota_abstractions.base_request_configuration import RequestConfiguration
    config = RequestConfiguration(query_parameters=query)
    for name, value in headers.items():
        config.headers.add(name.replace("_", "-"), value)
    return config


async def _all_pages(first, builder_with_url: Callable[[str], Any]) -> list:
    """Follows `@odata.nextLink` with the SDK's own `with_url`, as its docs show."""
    page, items = first, []
    while True:
        items.extend(page.value or [])
        if not page.odata_next_link:
            return items
        page = await builder_with_url(page.odata_next_link).get()


async def read_everything(seeded: Seeded) -> list[Check]:
    from msgraph.generated.models.subscription import Subscription
    from msgraph.generated.places.graph_room.graph_room_request_builder import GraphRoomRequestBuilder
    from msgraph.generated.users.item.calendar_view.delta.delta_request_builder import (
        DeltaRequestBuilder as ViewDelta,
    )
    from msgraph.generated.users.item.events.item.instances.instances_request_builder import InstancesRequestBuilder
    from msgraph.generated.users.users_request_builder import UsersRequestBuilder

    graph, http, credential = sdk_client(seeded)
    checks: list[Check] = []
    everyone = seeded.people + [seeded.tenant.users[r.user_id] for r in seeded.rooms]
    start, end = (moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ") for moment in seeded.window)

    async def check(name: str, read: Callable[[], Awaitable[tuple[bool, str]]]) -> None:
        began = time.perf_counter()
        try:
            ok, detail = await read()
        except Exception as exc:  # noqa: BLE001 - a failed read is a finding, reported like one
            ok, detail = False, f"{type(exc).__name__}: {exc}"
        checks.append(Check(name, ok, detail, time.perf_counter() - began))

    async def users_paged():
        query = UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(top=2, select=["id", "displayName"])
        users = await _all_pages(await graph.users.get(_config(query)), graph.users.with_url)
        return {u.id for u in users} == {u.id for u in everyone}, f"{len(users)} users in pages of 2"

    async def users_sorted():
        query = UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(orderby=["displayName desc"])
        names = [u.display_name for u in (await graph.users.get(_config(query))).value]
        return names == sorted((u.display_name for u in everyone), key=str.lower, reverse=True), "$orderby desc"

    async def users_searched():
        target = seeded.people[2].display_name.split()[0]
        query = UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(search=f'"displayName:{target}"',
                                                                          count=True)
        page = await graph.users.get(_config(query, ConsistencyLevel="eventual"))
        names = [u.display_name for u in page.value]
        return target in " ".join(names) and page.odata_count == len(names), f"$search found {names}"

    async def users_delta():
        first = await graph.users.delta.get()
        page, seen = first, set()
        while True:
            seen.update(u.id for u in page.value or [])
            if page.odata_delta_link:
                break
            page = await graph.users.delta.with_url(page.odata_next_link).get()
        return seen == {u.id for u in everyone}, f"{len(seen)} users, deltaLink kept"

    async def rooms():
        query = GraphRoomRequestBuilder.GraphRoomRequestBuilderGetQueryParameters(top=2)
        found = await _all_pages(await graph.places.graph_room.get(_config(query)), graph.places.graph_room.with_url)
        count = await graph.places.graph_room.count.get()
        states = {str(r.teams_enabled_state.value) if r.teams_enabled_state else None for r in found}
        ok = sorted(r.email_address for r in found) == sorted(r.email for r in seeded.rooms) and count == len(found)
        return ok, f"{len(found)} rooms via /places/graph.room, $count {count}, teamsEnabledState {states}"

    async def room_list_rooms():
        lists = (await graph.places.graph_room_list.get()).value
        rooms_in = (await graph.places.by_place_id(seeded.room_list_email).graph_room_list.rooms.get()).value
        ok = [r.email_address for r in lists] == [seeded.room_list_email] and \
            sorted(r.email_address for r in rooms_in) == sorted(r.email for r in seeded.rooms[:2])
        return ok, f"{len(lists)} room list with {len(rooms_in)} rooms"

    async def events_with_rooms():
        events = (await graph.users.by_user_id(seeded.organizer.mail).events.get()).value
        by_id = {e.id: e for e in events}
        directory, typed = by_id[seeded.meeting_ids[0]].location, by_id[seeded.meeting_ids[1]].location
        resources = {a.email_address.address for e in events for a in e.attendees if a.type and a.type.value == "resource"}
        ok = (directory.unique_id == seeded.rooms[0].email and directory.unique_id_type.value == "directory"
              and directory.location_email_address is None and typed.unique_id_type.value == "private"
              and resources == {r.email for r in seeded.rooms})
        return ok, f"{len(events)} events; room location uniqueId {directory.unique_id} ({directory.unique_id_type.value})"

    async def instances():
        query = InstancesRequestBuilder.InstancesRequestBuilderGetQueryParameters(start_date_time=start,
                                                                                  end_date_time=end)
        found = (await graph.users.by_user_id(seeded.organizer.mail).events.by_event_id(seeded.series_id)
                 .instances.get(_config(query))).value
        return len(found) == seeded.series_occurrences and all(i.series_master_id == seeded.series_id
                                                               for i in found), f"{len(found)} occurrences"

    async def room_view_delta():
        room = seeded.rooms[2]
        query = ViewDelta.DeltaRequestBuilderGetQueryParameters(start_date_time=start, end_date_time=end)
        builder = graph.users.by_user_id(room.email).calendar_view.delta
        page, items = await builder.get(_config(query, Prefer="odata.maxpagesize=2")), []
        while True:
            items.extend(page.value or [])
            if page.odata_delta_link:
                break
            page = await builder.with_url(page.odata_next_link).get(_config(Prefer="odata.maxpagesize=2"))
        _control(seeded.server, "POST", f"/tenants/{seeded.tenant.id}/mailboxes/{seeded.organizer.mail}/meetings/"
                 f"{requests.utils.quote(seeded.series_id, safe='')}/cancel", {})
        replay = (await builder.with_url(page.odata_delta_link).get()).value
        ok = len(items) == seeded.series_occurrences and len(replay) >= 1
        return ok, f"{len(items)} items in pages of 2, {len(replay)} after the organizer cancelled"

    async def subscriptions():
        expiry = seeded.server.world.clock.now() + timedelta(hours=2)
        made = await graph.subscriptions.post(Subscription(
            change_type="created,updated,deleted", notification_url=seeded.receiver_url,
            resource=f"users/{seeded.rooms[0].email}/events", expiration_date_time=expiry, client_state="sdk"))
        listed = (await graph.subscriptions.get()).value
        again = await graph.subscriptions.by_subscription_id(made.id).get()
        return made.id in {s.id for s in listed} and again.client_state == "sdk", f"created {made.id[:8]}..., listed"

    for name, read in (("users (paged)", users_paged), ("users $orderby", users_sorted),
                       ("users $search", users_searched), ("users delta()", users_delta),
                       ("places graph.room + $count", rooms), ("room list rooms", room_list_rooms),
                       ("events with rooms", events_with_rooms), ("instances", instances),
                       ("room calendarView delta()", room_view_delta), ("subscriptions", subscriptions)):
        await check(name, read)
    await http.aclose()
    credential.close()
    return checks


def run_reads() -> list[Check]:
    """Starts an emulator and a receiver, seeds, reads everything through the SDK, stops both."""
    receiver = start_receiver()
    server = EmulatorServer().start()
    try:
        seeded = seed_tenant(server, f"http://127.0.0.1:{receiver.server_address[1]}/notify")
        return asyncio.run(read_everything(seeded))
    finally:
        server.stop()
        receiver.shutdown()
        receiver.server_close()


def main() -> int:
    try:
        import msgraph  # noqa: F401
    except ImportError:
        print("msgraph-sdk is not installed; pip install -r requirements-bench.txt")
        return 2
    checks = run_reads()
    for c in checks:
        print(f"{'ok  ' if c.ok else 'FAIL'} {c.name:<28} {c.seconds * 1000:7.1f} ms  {c.detail}")
    failed = [c for c in checks if not c.ok]
    print(f"{len(checks) - len(failed)}/{len(checks)} reads matched what was seeded")
    recorder = Recorder("msgraph_sdk_reads")
    recorder.figure("SDK reads matching what was seeded", f"{len(checks) - len(failed)}/{len(checks)}",
                    goal="all", passed=not failed,
                    note="; ".join(f"{c.name} failed" for c in failed) or None)
    recorder.save()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
