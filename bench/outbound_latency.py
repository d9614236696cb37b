"""Benchmark: reservation -> Outlook latency through the local Functions host.

    .venv/bin/python -m bench.outbound_latency [--reservations 200] [--rate 5]

Runs Azurite (in memory), the Graph emulator in a child process, and the app in the local host
with 2 s queue polling (the host's default), connects a tenant through the API, then POSTs
reservations at a steady rate (distinct rooms and times, so none conflicts) and measures, for
each, the time from sending the POST to the reservation being `synced`: the meeting exists in
the booker's calendar, the room has answered, and the event id is stored. Prints p50, p95 and
max, and the Graph requests per reservation (the emulator's counts, token requests included).

Goal on the development machine: p95 <= 3 s. Not a test: it prints figures.
"""
from __future__ import annotations

import argparse
import base64
import importlib
import json
import multiprocessing
import statistics
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

FUNCTION_KEY = "bench-outbound-function-key"


def serve_emulator(people: int, rooms: int, connection, cert_dir: str) -> None:
    """Child process: a seeded emulator that serves until the parent says stop."""
    from devtools.graph_emulator import seed
    from devtools.graph_emulator.server import EmulatorServer

    server = EmulatorServer(cert_dir=cert_dir).start()
    world = server.world
    tenant = seed.create_tenant(world, "bench-outbound.example")
    app = seed.add_app(world, tenant)
    users = seed.add_users(world, tenant, people, seed=7)
    made = [seed.add_room(world, tenant, alias=f"room-{n}", time_zone="Europe/Amsterdam") for n in range(rooms)]
    connection.send({"base_url": server.base_url, "api_base": server.api_base, "authority_host": server.authority_host,
                     "ca_path": server.ca_path, "tenant_id": tenant.id, "client_id": app.client_id,
                     "secret": app.secrets[0].value, "domain": tenant.domains[0],
                     "people": [u.mail for u in users], "rooms": [(r.email, r.display_name) for r in made]})
    connection.recv()
    server.stop()


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(round(share * len(ordered) + 0.5)) - 1))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reservations", type=int, default=200)
    parser.add_argument("--rate", type=float, default=5.0, help="POSTs per second")
    parser.add_argument("--poll", type=float, default=2.0, help="queue polling interval of the host (s)")
    args = parser.parse_args(argv)

    import os

    import requests

    from bench.figures import Recorder
    from devtools.azurite import Azurite
    from devtools.localhost import LocalHost
    from functions import context
    from sync.booking_model import Asset, Subscription
    from sync.settings import SETTING_NAMES
    from sync.store import Store, StorageLocation, table_service
    from sync.store.assets_repo import AssetsRepo, new_asset_id
    from sync.store.reservations_repo import ReservationsRepo

    spawn = multiprocessing.get_context("spawn")
    parent_end, child_end = spawn.Pipe()
    with tempfile.TemporaryDirectory(prefix="roomsync-bench-") as cert_dir, Azurite() as azurite:
        child = spawn.Process(target=serve_emulator, args=(20, 10, child_end, cert_dir), daemon=True)
        child.start()
        try:
            details = parent_end.recv()
            settings = {
                "AzureWebJobsStorage": azurite.connection_string, "PUBLIC_BASE_URL": "http://127.0.0.1:7071",
                "SECRET_ENCRYPTION_KEY": base64.b64encode(os.urandom(32)).decode(),
                "GRAPH_AUTHORITY_HOST": details["authority_host"], "GRAPH_API_BASE": details["api_base"],
                "GRAPH_CA_BUNDLE": details["ca_path"], "USER_SYNC_SCHEDULE": "0 0 2 * * *",
                "SUBSCRIPTION_RENEWAL_SCHEDULE": "0 */30 * * * *", "RECURRENCE_SCHEDULE": "0 30 1 * * *",
                "LOG_LEVEL": "WARNING",
            }
            for name in SETTING_NAMES:
                os.environ.pop(name, None)
            os.environ.update(settings)
            context.reset()
            app = importlib.import_module("function_app").app
            host = LocalHost(app, 0, host_config=ROOT / "host.json",
                             settings={**settings, "LOCAL_FUNCTION_KEY": FUNCTION_KEY}, queue_poll_seconds=args.poll)
            key = {"x-functions-key": FUNCTION_KEY}
            with host:
                api = f"{host.base_url}/api"
                created = requests.post(f"{api}/integrations", headers=key, timeout=60, json={
                    "domain": details["domain"], "tenant_id": details["tenant_id"], "client_id": details["client_id"],
                    "client_secret": details["secret"]})
                created.raise_for_status()
                integration_id = created.json()["id"]
                deadline = time.monotonic() + 60
                while len(requests.get(f"{api}/users", params={"integration_id": integration_id}, headers=key,
                                        timeout=30).json()["value"]) < 20:
                    if time.monotonic() > deadline:
                        raise SystemExit("the first user sync did not finish")
                    time.sleep(0.2)
                store = Store(table_service(StorageLocation(connection_string=azurite.connection_string)))
                now = datetime.now(timezone.utc)
                assets = [AssetsRepo(store).insert(Asset(
                    id=new_asset_id(), integration_id=integration_id, name=name, category="room", mailbox=email.lower(),
                    time_zone="Europe/Amsterdam", capacity=8, max_duration_minutes=None, subscription=Subscription(),
                    created_at=now, updated_at=now)) for email, name in details["rooms"]]
                repo = ReservationsRepo(store)
                requests.post(f"{details['base_url']}/_control/requests/reset", verify=details["ca_path"], timeout=30)

                sent: dict[str, tuple[str, float]] = {}
                done: dict[str, float] = {}
                lock = threading.Lock()
                stop = threading.Event()

                def watch() -> None:
                    while not stop.is_set():
                        with lock:
                            waiting = [(rid, asset_id) for rid, (asset_id, _) in sent.items() if rid not in done]
                        for rid, asset_id in waiting:
                            row = repo.get(integration_id, asset_id, rid)
                            if row is not None and row.sync_status != "pending":
                                with lock:
                                    done[rid] = time.perf_counter()
                        time.sleep(0.02)

                watcher = threading.Thread(target=watch, daemon=True)
                watcher.start()
                base = (now + timedelta(days=2)).replace(minute=0, second=0, microsecond=0)
                session = requests.Session()
                for n in range(args.reservations):
                    asset = assets[n % len(assets)]
                    start = base + timedelta(hours=n // len(assets))
                    began = time.perf_counter()
                    answer = session.post(f"{api}/reservations", headers=key, timeout=30, json={
                        "asset_id": asset.id, "booker": details["people"][n % len(details["people"])],
                        "start": start.isoformat(), "end": (start + timedelta(minutes=30)).isoformat(),
                        "subject": f"Bench {n}"})
                    if answer.status_code != 201:
                        raise SystemExit(f"POST failed: {answer.status_code} {answer.text}")
                    with lock:
                        sent[answer.json()["id"]] = (asset.id, began)
                    time.sleep(max(0.0, 1 / args.rate - (time.perf_counter() - began)))
                deadline = time.monotonic() + 120
                while len(done) < len(sent) and time.monotonic() < deadline:
                    time.sleep(0.1)
                stop.set()
                watcher.join()
                counts = requests.get(f"{details['base_url']}/_control/requests", verify=details["ca_path"],
                                      timeout=30).json()["counts"]
                graph = {name: n for name, n in counts.items() if not name.startswith("control.")}
                latencies = [done[rid] - began for rid, (_, began) in sent.items() if rid in done]
                statuses = {}
                for rid, (asset_id, _) in sent.items():
                    status = repo.get(integration_id, asset_id, rid).sync_status
                    statuses[status] = statuses.get(status, 0) + 1
                figures = {
                    "reservations": len(sent), "synced_within_deadline": len(latencies), "sync_statuses": statuses,
                    "queue_poll_seconds": args.poll, "post_rate_per_second": args.rate,
                    "latency_p50_seconds": round(statistics.median(latencies), 3),
                    "latency_p95_seconds": round(percentile(latencies, 0.95), 3),
                    "latency_max_seconds": round(max(latencies), 3),
                    "graph_requests": sum(graph.values()),
                    "graph_requests_per_reservation": round(sum(graph.values()) / max(1, len(sent)), 2),
                    "graph_requests_by_endpoint": graph,
                    "goal_p95_at_most_3_seconds": percentile(latencies, 0.95) <= 3.0,
                }
                print(json.dumps(figures, indent=2), flush=True)
                recorder = Recorder("outbound_latency")
                for name in ("reservations", "rate", "poll"):
                    recorder.parameter(name, getattr(args, name))
                recorder.figure("reservation -> Outlook p50", figures["latency_p50_seconds"], "s")
                recorder.figure("reservation -> Outlook p95", figures["latency_p95_seconds"], "s", goal="<= 3 s",
                                passed=figures["goal_p95_at_most_3_seconds"],
                                note=f"{len(latencies)} of {len(sent)} synced; queue polling {args.poll:g} s")
                recorder.figure("reservation -> Outlook max", figures["latency_max_seconds"], "s")
                recorder.figure("Graph requests per reservation", figures["graph_requests_per_reservation"], "",
                                note="emulator's counts, token requests included")
                recorder.sample("reservation -> Outlook", latencies, "s")
                recorder.save()
            context.reset()
        finally:
            parent_end.send("stop")
            child.join(timeout=30)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
