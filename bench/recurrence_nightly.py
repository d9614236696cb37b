"""Benchmark: the nightly recurrence job for 1,000 open weekly series.

    .venv/bin/python -m bench.recurrence_nightly [--series 1000] [--rooms 50] [--people 100]

Runs Azurite (in memory) and the Graph emulator (in a child process), connects a tenant, and
writes the series as the API would leave them a week before tonight: each materialised up to
the horizon minus seven days. Then runs the job three times and prints, for each, the Outlook
meetings created, the Graph HTTP requests the job sent (counted on its own sessions: a
`$batch` is one request; the emulator's per-operation counts are shown too), wall time and
the peak memory of the job:
1. tonight: a week to fill (one new occurrence per series);
2. the same night again: nothing to do, nothing created twice;
3. the next night (our clock moved a day): the series whose weekday entered the horizon.

Goal: at most one Graph request per 20 events created. The job creates; the rooms answer a
moment later, so their answers are read afterwards by the `answers` messages the job queued (20
per $batch): those requests are counted apart and in the total. Here the first look runs at once
instead of after 15 s. Not a test: it prints figures.
"""
from __future__ import annotations

import argparse
import base64
import json
import multiprocessing
import os
import resource
import sys
import tempfile
import time
import tracemalloc
import uuid
from datetime import datetime, time as wall, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday")


def serve_emulator(people: int, rooms: int, connection, cert_dir: str) -> None:
    from devtools.graph_emulator import seed
    from devtools.graph_emulator.server import EmulatorServer

    server = EmulatorServer(cert_dir=cert_dir).start()
    world = server.world
    tenant = seed.create_tenant(world, "bench-recurrence.example")
    app = seed.add_app(world, tenant)
    users = seed.add_users(world, tenant, people, seed=11)
    made = [seed.add_room(world, tenant, alias=f"room-{n}", time_zone="Europe/Amsterdam") for n in range(rooms)]
    connection.send({"base_url": server.base_url, "api_base": server.api_base, "authority_host": server.authority_host,
                     "ca_path": server.ca_path, "tenant_id": tenant.id, "client_id": app.client_id,
                     "secret": app.secrets[0].value, "domain": tenant.domains[0],
                     "people": [(u.id, u.mail, u.display_name) for u in users],
                     "rooms": [(r.email, r.display_name) for r in made]})
    connection.recv()
    server.stop()


class Clock:
    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(timezone.utc) + self.offset


def control(details: dict, method: str, path: str):
    import requests

    response = requests.request(method, f"{details['base_url']}/_control{path}", verify=details["ca_path"], timeout=60)
    response.raise_for_status()
    return response.json() if response.content else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=1000)
    parser.add_argument("--rooms", type=int, default=50)
    parser.add_argument("--people", type=int, default=100)
    parser.add_argument("--horizon-days", type=int, default=90)
    args = parser.parse_args(argv)
    if args.series > args.rooms * 20:
        raise SystemExit("at most 20 series per room (five weekdays, four hours) fit without conflicts")

    from zoneinfo import ZoneInfo

    from bench.figures import Recorder
    from devtools.azurite import Azurite
    from graph import GraphConfig
    from sync.booking_model import Asset, Subscription
    from sync.booking_queue import BookingChange, BookingQueue
    from sync.booking_settings import BookingSettings
    from sync.credentials import GraphAccess
    from sync.events_out import QueuePublisher, UserEventPublisher
    from sync.integrations import IntegrationService
    from sync.outbound import ANSWER_CHECKS_SECONDS, OutboundWorker
    from sync.recurrence import to_utc
    from sync.reservation_events import ReservationEventOutbox
    from sync.secret_box import SecretBox
    from sync.series import SeriesFiller
    from sync.store import Store, StorageLocation, queue_service, table_service
    from sync.store.assets_repo import AssetsRepo, new_asset_id
    from sync.store.integrations_repo import IntegrationsRepo
    from sync.store.reservations_repo import ReservationsRepo
    from sync.store.series_repo import OPEN, Series, SeriesRepo, new_series_id
    from sync.store.synclog_repo import SyncLog
    from sync.store.syncstate_repo import SyncStateRepo
    from sync.purge import PurgeRequester
    from sync.store.email_guard_repo import EmailGuard
    from sync.store.users_repo import UsersRepo
    from sync.users import SyncRequest, SyncRequester, UserSync

    spawn = multiprocessing.get_context("spawn")
    parent_end, child_end = spawn.Pipe()
    with tempfile.TemporaryDirectory(prefix="roomsync-bench-") as cert_dir, Azurite() as azurite:
        child = spawn.Process(target=serve_emulator, args=(args.people, args.rooms, child_end, cert_dir), daemon=True)
        child.start()
        try:
            details = parent_end.recv()
            location = StorageLocation(connection_string=azurite.connection_string)
            store, queues = Store(table_service(location)), queue_service(location)
            config = GraphConfig(authority_host=details["authority_host"], api_base=details["api_base"],
                                 ca_bundle=details["ca_path"])
            sent = {"requests": 0}

            class CountingAccess(GraphAccess):
                """Counts every HTTP request the job's Graph clients send (a $batch is one)."""

                def client_for(self, integration):
                    client = super().client_for(integration)
                    client.session.hooks["response"].append(lambda r, *a, **k: sent.__setitem__(
                        "requests", sent["requests"] + 1))
                    return client

            access = CountingAccess(config, SecretBox(os.urandom(32)))
            integrations, users = IntegrationsRepo(store), UsersRepo(store)
            created = IntegrationService(
                integrations=integrations, syncstate=SyncStateRepo(store), users=users, access=access,
                requester=SyncRequester(QueuePublisher(queues, "bench-user-sync")), default_max_share=0.2,
                purges=PurgeRequester(QueuePublisher(queues, "bench-integration-purge"))).create(
                {"domain": details["domain"], "tenant_id": details["tenant_id"], "client_id": details["client_id"],
                 "client_secret": details["secret"]})
            integration_id = created["id"]
            UserSync(integrations=integrations, users=users, syncstate=SyncStateRepo(store), access=access,
                     events=UserEventPublisher(QueuePublisher(queues, "bench-user-events")),
                     default_max_share=0.2, email_guard=EmailGuard(store)).run(SyncRequest(integration_id, str(uuid.uuid4()), "initial"))
            clock = Clock()
            now = clock()
            zone = ZoneInfo("Europe/Amsterdam")
            assets = [AssetsRepo(store).insert(Asset(
                id=new_asset_id(), integration_id=integration_id, name=name, category="room", mailbox=email.lower(),
                time_zone="Europe/Amsterdam", capacity=8, max_duration_minutes=None, subscription=Subscription(),
                created_at=now, updated_at=now)) for email, name in details["rooms"]]
            series_repo = SeriesRepo(store)
            today = now.astimezone(zone).date()
            for n in range(args.series):
                slot = n // args.rooms  # 0..19: weekday and hour
                weekday = slot % 5
                first_day = today + timedelta(days=(weekday - today.weekday()) % 7 or 7)
                first_local = datetime.combine(first_day, wall(8 + slot // 5))
                person_id, mail, name = details["people"][n % len(details["people"])]
                series_repo.insert(Series(
                    id=new_series_id(assets[n % args.rooms].id), integration_id=integration_id,
                    asset_id=assets[n % args.rooms].id, booker_user_id=person_id, booker_email=mail.lower(),
                    booker_name=name, subject=f"Weekly {n}", private=False, time_zone="Europe/Amsterdam",
                    first_local=first_local, duration_minutes=45,
                    recurrence={"pattern": {"type": "weekly", "interval": 1, "daysOfWeek": [DAYS[weekday]],
                                            "firstDayOfWeek": "monday"},
                                "range": {"type": "noEnd", "startDate": first_day.isoformat()}},
                    status=OPEN, materialized_until=max(to_utc(first_local, zone) - timedelta(seconds=1),
                                                         now + timedelta(days=args.horizon_days - 7)),
                    created_at=now, updated_at=now))
            reservations, synclog = ReservationsRepo(store), SyncLog(store)
            queue = BookingQueue(QueuePublisher(queues, "bench-booking-changes"))
            events = ReservationEventOutbox(reservations, QueuePublisher(queues, "bench-reservation-events"))
            worker = OutboundWorker(reservations=reservations, assets=AssetsRepo(store), integrations=integrations,
                                    access=access, queue=queue, events=events, synclog=synclog, clock=clock,
                                    answer_checks=(0.0,) + ANSWER_CHECKS_SECONDS[1:])
            answers_queue = queues.get_queue_client("bench-booking-changes")

            def read_answers() -> tuple[int, int]:
                """Runs the answers messages the job queued; returns (messages, reservations answered)."""
                ran = answered = 0
                while True:
                    got = list(answers_queue.receive_messages(messages_per_page=32, visibility_timeout=60,
                                                              max_messages=32))
                    if not got:
                        return ran, answered
                    for message in got:
                        change = BookingChange.from_message(json.loads(base64.b64decode(message.content)))
                        outcome = worker.handle(change)
                        answers_queue.delete_message(message)
                        ran += 1
                        answered += outcome.detail.get("answered", 0)
            filler = SeriesFiller(series=series_repo, reservations=reservations, assets=AssetsRepo(store),
                                  integrations=integrations, worker=worker, synclog=synclog,
                                  settings=BookingSettings(horizon_days=args.horizon_days), clock=clock)
            figures = []
            for label, advance in (("tonight: a week to fill", 0), ("the same night again", 0),
                                   ("the next night", 1)):
                clock.offset += timedelta(days=advance)
                control(details, "POST", "/requests/reset")
                store.stats.reset()
                sent["requests"] = 0
                tracemalloc.start()
                started = time.perf_counter()
                report = filler.nightly()
                elapsed = time.perf_counter() - started
                _, peak = tracemalloc.get_traced_memory()
                tracemalloc.stop()
                counts = control(details, "GET", "/requests")["counts"]
                graph = {name: n for name, n in counts.items() if not name.startswith("control.")}
                http = sent["requests"]
                sent["requests"] = 0
                answer_messages, answered = read_answers()
                answer_http = sent["requests"]
                row = {"run": label, "series": report.series, "occurrences_materialised": report.materialized,
                       "outlook_meetings_created": report.created, "declined": report.declined,
                       "conflicts": report.conflicts, "left_for_sweeper": report.left_for_sweeper,
                       "failed": len(report.failed), "graph_http_requests": http,
                       "graph_batches": report.batches, "graph_operations_by_endpoint": graph,
                       "events_per_graph_request": round(report.created / http, 1) if http else None,
                       "answers_messages": answer_messages, "answers_read": answered,
                       "answers_graph_http_requests": answer_http,
                       "events_per_graph_request_with_answers": (round(report.created / (http + answer_http), 1)
                                                                 if http + answer_http else None),
                       "wall_seconds": round(elapsed, 2), "job_peak_python_memory_mib": round(peak / 2**20, 1),
                       "process_peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                       "table_requests": store.stats.requests, "table_transactions": store.stats.transactions}
                figures.append(row)
                print(json.dumps(row, indent=2), flush=True)
            first = figures[0]
            goals = {
                "goal_at_most_one_graph_request_per_20_events": (first["graph_http_requests"] * 20
                                                                 <= max(1, first["outlook_meetings_created"])),
                "rerun_created_nothing": figures[1]["outlook_meetings_created"] == 0,
            }
            print(json.dumps(goals), flush=True)
            recorder = Recorder("recurrence_nightly")
            for name in ("series", "rooms", "people", "horizon_days"):
                recorder.parameter(name, getattr(args, name))
            recorder.figure("tonight: Outlook meetings created", first["outlook_meetings_created"], "")
            recorder.figure("tonight: Graph HTTP requests", first["graph_http_requests"], "",
                            note=f"{first['graph_batches']} $batch requests")
            recorder.figure("tonight: events per Graph request", first["events_per_graph_request"], "",
                            goal=">= 20 (at most one request per 20 events)",
                            passed=goals["goal_at_most_one_graph_request_per_20_events"])
            recorder.figure("tonight: rooms' answers read afterwards", first["answers_read"], "",
                            note=f"{first['answers_graph_http_requests']} Graph requests "
                                 f"({first['answers_messages']} answers messages)")
            recorder.figure("tonight: events per Graph request, answers included",
                            first["events_per_graph_request_with_answers"], "")
            recorder.figure("tonight: wall time", first["wall_seconds"], "s")
            recorder.figure("tonight: job peak Python memory", first["job_peak_python_memory_mib"], "MiB")
            recorder.figure("same night again: meetings created", figures[1]["outlook_meetings_created"], "",
                            goal="0", passed=goals["rerun_created_nothing"])
            recorder.figure("next night: meetings created", figures[2]["outlook_meetings_created"], "",
                            note=f"{figures[2]['graph_http_requests']} Graph requests")
            recorder.save()
            worker.close()
        finally:
            parent_end.send("stop")
            child.join(timeout=30)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
