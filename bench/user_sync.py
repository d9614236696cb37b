"""Benchmark: user sync of a 100,000-person directory, then a delta run with 100 changes.

    .venv/bin/python bench/user_sync.py [--users 100000] [--changes 100]

Runs Azurite (in memory) and the Graph emulator (in a child process, so this process holds
only the app's work), connects the tenant through the integration service (credentials
tried as in production), and prints for each run: wall time, Graph requests (the emulator's
own request counts, token requests included), Table transactions and requests (the store's
counters), and this process's peak resident memory. Not a test: it prints figures.

Goals on the development machine: the first sync under 2 minutes; the delta run in at most
2 Graph requests.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def serve_emulator(people: int, connection, cert_dir: str) -> None:
    """Child process: a seeded emulator that serves until the parent says stop."""
    from devtools.graph_emulator import seed
    from devtools.graph_emulator.server import EmulatorServer

    server = EmulatorServer(cert_dir=cert_dir).start()
    world = server.world
    tenant = seed.create_tenant(world, "bench-contoso.example")
    app = seed.add_app(world, tenant)
    seed.seed_many_users(world, tenant, people)
    connection.send({"base_url": server.base_url, "api_base": server.api_base, "ca_path": server.ca_path,
                     "tenant_id": tenant.id, "client_id": app.client_id, "secret": app.secrets[0].value,
                     "domain": tenant.domains[0]})
    connection.recv()
    server.stop()


class Emulator:
    def __init__(self, details: dict) -> None:
        self.details = details

    def control(self, method: str, path: str, body: dict | None = None):
        import requests

        response = requests.request(method, f"{self.details['base_url']}/_control{path}", json=body,
                                    verify=self.details["ca_path"], timeout=60)
        response.raise_for_status()
        return response.json() if response.content else None

    def request_counts(self) -> dict:
        return self.control("GET", "/requests")

    def reset_counts(self) -> None:
        self.control("POST", "/requests/reset")


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def make_changes(emulator: Emulator, count: int, people: int) -> dict:
    """A realistic mix: profile edits, leavers (disabled and deleted), email changes, joiners."""
    tenant = emulator.details["tenant_id"]
    domain = emulator.details["domain"]
    mix = {"department": count * 3 // 10, "disable": count // 5, "soft-delete": count // 10,
           "email": count // 5}
    mix["join"] = count - sum(mix.values())
    number = 0
    for kind, amount in mix.items():
        for _ in range(amount):
            number += 1
            user = f"user{number * 997 % people:06d}@{domain}"
            if kind == "department":
                emulator.control("PATCH", f"/tenants/{tenant}/users/{user}", {"department": f"Dept {number}"})
            elif kind in ("disable", "soft-delete"):
                emulator.control("POST", f"/tenants/{tenant}/users/{user}/{kind}")
            elif kind == "email":
                address = f"renamed{number}@{domain}"
                emulator.control("PATCH", f"/tenants/{tenant}/users/{user}", {"mail": address, "userPrincipalName": address})
            else:
                emulator.control("POST", f"/tenants/{tenant}/users", {"users": [{"alias": f"joiner{number}"}]})
    return mix


def run_once(label: str, harness: dict, emulator: Emulator, trigger_run) -> dict:
    store = harness["store"]
    store.stats.reset()
    emulator.reset_counts()
    started = time.perf_counter()
    report = trigger_run()
    elapsed = time.perf_counter() - started
    counts = emulator.request_counts()["counts"]
    graph = {name: n for name, n in counts.items() if not name.startswith("control.")}
    figures = {
        "run": label,
        "outcome": report.outcome,
        "round": report.kind,
        "wall_seconds": round(elapsed, 2),
        "graph_requests": sum(graph.values()),
        "graph_requests_by_endpoint": graph,
        "table_transactions": store.stats.transactions,
        "table_requests": store.stats.requests,
        "table_rows_written": store.stats.operations,
        "peak_rss_mib": round(peak_rss_mib(), 1),
        "counts": report.counts.as_dict(),
    }
    print(json.dumps(figures, indent=2), flush=True)
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--changes", type=int, default=100)
    args = parser.parse_args(argv)

    from bench.figures import Recorder
    from devtools.azurite import Azurite
    from graph import GraphConfig
    from sync.credentials import GraphAccess
    from sync.events_out import USER_EVENTS_QUEUE, QueuePublisher, UserEventPublisher
    from sync.integrations import IntegrationService
    from sync.secret_box import SecretBox
    from sync.store import Store, StorageLocation, queue_service, table_service
    from sync.store.integrations_repo import IntegrationsRepo
    from sync.store.syncstate_repo import SyncStateRepo
    from sync.store.users_repo import UsersRepo
    from sync.purge import PURGE_QUEUE, PurgeRequester
    from sync.store.email_guard_repo import EmailGuard
    from sync.users import USER_SYNC_QUEUE, SyncRequest, SyncRequester, UserSync

    print(f"seeding an emulated tenant with {args.users} people...", flush=True)
    context = multiprocessing.get_context("spawn")
    parent_end, child_end = context.Pipe()
    with tempfile.TemporaryDirectory(prefix="roomsync-bench-") as cert_dir, Azurite() as azurite:
        child = context.Process(target=serve_emulator, args=(args.users, child_end, cert_dir), daemon=True)
        child.start()
        try:
            details = parent_end.recv()
            emulator = Emulator(details)
            location = StorageLocation(connection_string=azurite.connection_string)
            store = Store(table_service(location))
            queues = queue_service(location)
            config = GraphConfig(authority_host=details["base_url"], api_base=details["api_base"],
                                 ca_bundle=details["ca_path"])
            access = GraphAccess(config, SecretBox(os.urandom(32)))
            requester = SyncRequester(QueuePublisher(queues, USER_SYNC_QUEUE))
            service = IntegrationService(integrations=IntegrationsRepo(store), syncstate=SyncStateRepo(store),
                                         users=UsersRepo(store), access=access, requester=requester,
                                         default_max_share=0.2,
                                         purges=PurgeRequester(QueuePublisher(queues, PURGE_QUEUE)))
            sync = UserSync(integrations=IntegrationsRepo(store), users=UsersRepo(store),
                            syncstate=SyncStateRepo(store), access=access,
                            events=UserEventPublisher(QueuePublisher(queues, USER_EVENTS_QUEUE)),
                            default_max_share=0.2, email_guard=EmailGuard(store))
            harness = {"store": store}
            baseline = peak_rss_mib()
            print(f"baseline peak RSS of this process: {baseline:.1f} MiB", flush=True)
            created = service.create({"domain": details["domain"], "tenant_id": details["tenant_id"],
                                      "client_id": details["client_id"], "client_secret": details["secret"]})
            integration_id = created["id"]
            first = run_once("first sync", harness, emulator, lambda: sync.run(
                SyncRequest(integration_id, created["initial_user_sync"]["run_id"], "initial")))
            mix = make_changes(emulator, args.changes, args.users)
            print(f"directory changes made: {mix}", flush=True)
            delta = run_once("delta run", harness, emulator, lambda: sync.run(
                SyncRequest(integration_id, "bench-delta", "manual")))
            print(json.dumps({
                "first_sync_under_2_minutes": first["wall_seconds"] < 120,
                "delta_run_at_most_2_graph_requests": delta["graph_requests"] <= 2,
            }), flush=True)
            recorder = Recorder("user_sync")
            recorder.parameter("users", args.users)
            recorder.parameter("changes", args.changes)
            recorder.figure("first sync: wall time", first["wall_seconds"], "s", goal="< 120 s",
                            passed=first["wall_seconds"] < 120, note=f"outcome {first['outcome']}")
            recorder.figure("first sync: Graph requests", first["graph_requests"], "")
            recorder.figure("first sync: Table transactions", first["table_transactions"], "")
            recorder.figure("first sync: peak RSS", first["peak_rss_mib"], "MiB",
                            note=f"{baseline:.0f} MiB before the sync")
            recorder.figure("delta run: wall time", delta["wall_seconds"], "s")
            recorder.figure("delta run: Graph requests", delta["graph_requests"], "", goal="<= 2",
                            passed=delta["graph_requests"] <= 2, note=f"{args.changes} directory changes")
            recorder.save()
        finally:
            parent_end.send("stop")
            child.join(timeout=30)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
