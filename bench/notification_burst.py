"""Benchmark: a burst of 10,000 Graph change notifications through the local host's webhook.

    .venv/bin/python -m bench.notification_burst [--notifications 10000] [--rooms 20] [--senders 4]

Runs Azurite (in memory), the Graph emulator in a child process and the app in the local host
(this process: HTTP server and queue workers, host.json polling), connects a tenant through the
API and links and subscribes its rooms. The emulator then books meetings on those rooms as
Outlook users with its deliveries held back, and hands over the notifications it would have
posted (created + updated per meeting, in its own shape and order). A second child process posts
them to `/api/microsoft_graph/notifications/notification_url` as fast as the webhook answers,
from several connections at once, in posts of 1 to 100 items (most under 50, as Graph batches
what is due together), while the workers drain the queue.

Prints: webhook answer time p50/p95/p99 (goal: p99 well inside Graph's 3-second budget), time
from the first post until every accepted notification was processed, throughput, Graph requests
and host CPU time per processed item, CPU time of each process, and the peak resident memory of
this process (host and workers; /proc sampled every 50 ms during the burst, and ru_maxrss).

Checks, exit status 1 when one fails: every post answered 202; every accepted notification
processed (one synclog row each); each meeting ends as exactly one confirmed reservation and
there is no other; graph-notifications and its poison queue end empty; no dead letters.
"""
from __future__ import annotations

import argparse
import math
import multiprocessing
import os
import random
import resource
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.figures import Recorder, percentile  # noqa: E402

GRAPH_BUDGET_MS = 3000.0
# Post sizes (items per post) and how often each range is drawn.
POST_SIZES = (((1, 1), 0.15), ((2, 10), 0.35), ((11, 50), 0.40), ((51, 100), 0.10))


# ---- the emulator, in its own process ----------------------------------------------------------------

def serve_emulator(people: int, rooms: int, connection, cert_dir: str) -> None:
    """Child: a seeded emulator; on request books meetings and returns the notifications they made."""
    from werkzeug.test import Client

    from devtools.graph_emulator import seed
    from devtools.graph_emulator.delivery import NOTIFICATION, delivery_service
    from devtools.graph_emulator.notification_settings import switch_board
    from devtools.graph_emulator.server import EmulatorServer

    server = EmulatorServer(cert_dir=cert_dir).start()
    world = server.world
    tenant = seed.create_tenant(world, "bench-burst.example")
    app = seed.add_app(world, tenant)
    users = seed.add_users(world, tenant, people, seed=5)
    made = [seed.add_room(world, tenant, alias=f"room-{n}", time_zone="Europe/Amsterdam") for n in range(rooms)]
    connection.send({"base_url": server.base_url, "api_base": server.api_base, "authority_host": server.authority_host,
                     "ca_path": server.ca_path, "tenant_id": tenant.id, "client_id": app.client_id,
                     "secret": app.secrets[0].value, "domain": tenant.domains[0],
                     "people": [u.mail for u in users], "rooms": [r.email for r in made]})
    control = Client(server.app)  # in process: the control API's own code path, without TLS
    while True:
        command = connection.recv()
        if command == "stop":
            break
        service = delivery_service(world)
        with world.lock:
            switch_board(world).update(tenant.id, {"pause": True})
        for organizer, body in command["meetings"]:
            answer = control.post(f"/_control/tenants/{tenant.id}/mailboxes/{organizer}/meetings", json=body)
            if answer.status_code != 201:
                raise RuntimeError(f"meeting not made: {answer.status_code} {answer.get_data(as_text=True)}")
        with world.lock:
            held = sorted((p for p in service.pending if p.tenant_id == tenant.id and p.kind == NOTIFICATION),
                          key=lambda p: p.seq)
            items = [dict(p.item) for p in held]
        service.discard(tenant.id)
        with world.lock:
            switch_board(world).update(tenant.id, {"pause": None})
        connection.send(items)
    server.stop()


# ---- the sender, in its own process ------------------------------------------------------------------

def send_posts(url: str, bodies: list[bytes], senders: int, connection) -> None:
    """Child: posts every body, `senders` at a time; returns (start offset s, ms, status) per post."""
    from concurrent.futures import ThreadPoolExecutor

    import requests

    local = threading.local()

    def post(body: bytes) -> tuple[float, float, int]:
        session = getattr(local, "session", None)
        if session is None:
            session = local.session = requests.Session()
        began = time.perf_counter()
        answer = session.post(url, data=body, headers={"content-type": "application/json"}, timeout=60)
        return began, (time.perf_counter() - began) * 1000, answer.status_code

    connection.recv()  # go
    origin = time.perf_counter()
    with ThreadPoolExecutor(max_workers=senders) as pool:
        results = list(pool.map(post, bodies))
    connection.send(([(began - origin, ms, status) for began, ms, status in results], time.process_time()))


# ---- CPU and memory ------------------------------------------------------------------------------------------

def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a live process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class RssSampler:
    """Samples this process's resident set (VmRSS) until stopped; keeps the peak."""

    def __init__(self, interval: float = 0.05) -> None:
        self.interval = interval
        self.peak_kib = 0
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    @staticmethod
    def current_kib() -> int:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def _run(self) -> None:
        origin = time.perf_counter()
        while not self._stop.is_set():
            value = self.current_kib()
            self.peak_kib = max(self.peak_kib, value)
            self.samples.append((time.perf_counter() - origin, value))
            self._stop.wait(self.interval)

    def __enter__(self) -> "RssSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


# ---- shaping the burst -------------------------------------------------------------------------------

def meeting_plan(count: int, people: list[str], rooms: list[str], start: datetime) -> list[tuple[str, dict]]:
    """`count` half-hour meetings spread over the rooms, one an hour per room: none conflicts."""
    plan = []
    for n in range(count):
        room = rooms[n % len(rooms)]
        begins = start + timedelta(hours=n // len(rooms))
        plan.append((people[n % len(people)], {
            "subject": f"Burst {n}", "rooms": [room],
            "start": begins.isoformat().replace("+00:00", "Z"),
            "end": (begins + timedelta(minutes=30)).isoformat().replace("+00:00", "Z")}))
    return plan


def post_sizes(total: int, draw: random.Random) -> list[int]:
    ranges, weights = zip(*POST_SIZES)
    sizes = []
    while sum(sizes) < total:
        low, high = draw.choices(ranges, weights)[0]
        sizes.append(min(draw.randint(low, high), total - sum(sizes)))
    return sizes


def event_id_of(item: dict) -> str:
    return item["resourceData"]["id"]


def accepted_in(post: list[dict]) -> int:
    """What the webhook queues of one post: one item per subscription and event (pairs fold)."""
    return len({(item["subscriptionId"], event_id_of(item)) for item in post})


# ---- the run -----------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notifications", type=int, default=10_000)
    parser.add_argument("--rooms", type=int, default=20)
    parser.add_argument("--people", type=int, default=50)
    parser.add_argument("--senders", type=int, default=4, help="concurrent connections posting")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds to wait for the drain")
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument("--log-level", default="WARNING", help="the app's LOG_LEVEL")
    args = parser.parse_args(argv)

    import json

    from devtools.azurite import Azurite
    from functions import context, room_context
    from sync.store.reservations_repo import ReservationsRepo
    from tests.support.room_host import connect, start_room_host

    recorder = Recorder("notification_burst")
    for name in ("notifications", "rooms", "people", "senders"):
        recorder.parameter(name, getattr(args, name))
    spawn = multiprocessing.get_context("spawn")
    emulator_end, emulator_child_end = spawn.Pipe()
    failures: list[str] = []
    with tempfile.TemporaryDirectory(prefix="roomsync-bench-") as cert_dir, Azurite() as azurite:
        emulator = spawn.Process(target=serve_emulator, args=(args.people, args.rooms, emulator_child_end, cert_dir),
                                 daemon=True)
        emulator.start()
        try:
            details = emulator_end.recv()
            graph = SimpleNamespace(authority_host=details["authority_host"], api_base=details["api_base"],
                                    ca_path=details["ca_path"])
            hosts = start_room_host(graph, azurite.connection_string, queue_poll_seconds=2.0,
                                    LOG_LEVEL=args.log_level)
            host = next(hosts)
            tenant = SimpleNamespace(domain=details["domain"], tenant_id=details["tenant_id"],
                                     client_id=details["client_id"], client_secret=details["secret"])
            world = connect(host, tenant, details["rooms"])
            print(f"connected: {len(details['people'])} people, {len(world.assets)} subscribed rooms", flush=True)

            # Meetings first, their notifications held back by the emulator and handed to us.
            made_at = time.perf_counter()
            meetings = math.ceil(args.notifications / 2)
            start = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0) + timedelta(days=1)
            emulator_end.send({"meetings": meeting_plan(meetings, details["people"], details["rooms"], start)})
            items = emulator_end.recv()
            per_meeting = len(items) / meetings
            if len(items) < args.notifications:  # fewer per meeting than two: book more
                extra = math.ceil((args.notifications - len(items)) / max(per_meeting, 1))
                emulator_end.send({"meetings": meeting_plan(extra, details["people"], details["rooms"],
                                                            start + timedelta(hours=meetings // args.rooms + 2))})
                items += emulator_end.recv()
            items = items[:args.notifications]
            events = {event_id_of(item) for item in items}
            print(f"{len(events)} meetings booked, {len(items)} notifications held "
                  f"({per_meeting:.1f} per meeting) in {time.perf_counter() - made_at:.0f} s", flush=True)

            draw = random.Random(args.seed)
            posts, at = [], 0
            for size in post_sizes(len(items), draw):
                posts.append(items[at:at + size])
                at += size
            expected = sum(accepted_in(post) for post in posts)
            bodies = [json.dumps({"value": post}).encode() for post in posts]
            print(f"{len(posts)} posts: mean {len(items) / len(posts):.1f} items, largest {max(map(len, posts))}, "
                  f"mean body {sum(map(len, bodies)) / len(bodies) / 1024:.1f} KiB; {expected} items to process "
                  f"after pairs within a post fold", flush=True)

            requests_before = graph_request_total(details)
            url = f"{host.base_url}/api/microsoft_graph/notifications/notification_url"
            sender_end, sender_child_end = spawn.Pipe()
            sender = spawn.Process(target=send_posts, args=(url, bodies, args.senders, sender_child_end), daemon=True)
            sender.start()
            queue = room_context.publisher(room_context.NOTIFICATIONS_QUEUE)._client
            poison = room_context.publisher(room_context.NOTIFICATIONS_QUEUE + "-poison")._client
            baseline_kib = RssSampler.current_kib()
            processes = {"host": os.getpid(), "emulator": emulator.pid, "Azurite": azurite.process.pid}
            cpu_before = {name: cpu_seconds(pid) for name, pid in processes.items()}
            with RssSampler() as sampler:
                began = time.perf_counter()
                sender_end.send("go")
                results, sender_cpu = sender_end.recv()
                posted = time.perf_counter() - began
                print(f"posted in {posted:.1f} s; waiting for the workers", flush=True)
                deadline = began + args.timeout
                while time.perf_counter() < deadline:
                    if not queue.get_queue_properties().approximate_message_count:
                        break
                    time.sleep(0.1)
                drained = time.perf_counter() - began
            cpu = {name: cpu_seconds(pid) - cpu_before[name] for name, pid in processes.items()}
            cpu["sender"] = sender_cpu
            sender.join(timeout=30)
            graph_requests = graph_request_total(details) - requests_before

            # What the run left behind.
            latencies = [ms for _, ms, _ in results]
            statuses = Counter(status for _, _, status in results)
            left = queue.get_queue_properties().approximate_message_count
            poisoned = poison.get_queue_properties().approximate_message_count
            letters = room_context.deadletters().count()
            log = room_context.synclog().read(world.integration_id, now=datetime.now(timezone.utc), days=2,
                                              limit=10 * len(items) + 100)
            processed = [entry for entry in log if entry.input.get("trigger") == "notification"]
            processed_items = len(processed)  # one row per item: a single meeting makes one decision
            decisions = Counter(entry.decision for entry in processed)
            by_event: Counter[str] = Counter()
            others = 0
            repo = ReservationsRepo(context.store())
            for asset in world.assets.values():
                continuation = None
                while True:
                    page, continuation = repo.in_range(world.integration_id, asset["id"], None, None,
                                                       continuation=continuation)
                    for reservation in page:
                        if reservation.status != "confirmed":
                            continue
                        if reservation.room_event_id in events:
                            by_event[reservation.room_event_id] += 1
                        else:
                            others += 1
                    if not continuation:
                        break
            missing = [e for e in events if by_event[e] == 0]
            doubled = [e for e, n in by_event.items() if n > 1]

            p50, p95, p99 = (percentile(latencies, share) for share in (0.50, 0.95, 0.99))
            throughput = len(items) / drained if drained else math.nan
            peak_mib = max(sampler.peak_kib, RssSampler.current_kib()) / 1024
            print(f"webhook answer: p50 {p50:.1f} ms  p95 {p95:.1f} ms  p99 {p99:.1f} ms  max {max(latencies):.1f} ms "
                  f"over {len(latencies)} posts ({args.senders} connections; Graph's budget {GRAPH_BUDGET_MS:.0f} ms)")
            print(f"intake: {len(items)} notifications in {posted:.1f} s ({len(items) / posted:.0f}/s)")
            print(f"drain: every notification processed {drained:.1f} s after the first post; "
                  f"throughput {throughput:.1f} notifications/s ({processed_items / drained:.1f} queued items/s)")
            print(f"processed {processed_items} of {expected} queued items: {dict(decisions)}; "
                  f"Graph requests {graph_requests} ({graph_requests / max(1, processed_items):.2f} per item)")
            print(f"reservations: {sum(by_event.values())} for {len(events)} meetings ({len(missing)} missing, "
                  f"{len(doubled)} doubled, {others} others); queue left {left}, poison {poisoned}, "
                  f"dead letters {letters}")
            print("CPU during the burst: " + ", ".join(f"{name} {value:.0f} s" for name, value in cpu.items())
                  + f"; host {1000 * cpu['host'] / max(1, processed_items):.1f} ms per processed item")
            print(f"peak RSS of the host process (HTTP server, workers): {peak_mib:.0f} MiB during the burst "
                  f"(from {baseline_kib / 1024:.0f} MiB before it; ru_maxrss "
                  f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB)", flush=True)

            if set(statuses) != {202}:
                failures.append(f"webhook answers {dict(statuses)}")
            if processed_items != expected:
                failures.append(f"{processed_items} of {expected} queued items processed")
            if missing or doubled or others:
                failures.append(f"reservations: {len(missing)} missing, {len(doubled)} doubled, {others} others")
            if left or poisoned:
                failures.append(f"queue left {left}, poison queue {poisoned}")
            if letters:
                failures.append(f"{letters} dead letter(s)")
            if drained >= args.timeout:
                failures.append(f"not drained within {args.timeout:.0f} s")

            recorder.parameter("posts", len(posts))
            recorder.parameter("mean_items_per_post", round(len(items) / len(posts), 1))
            recorder.parameter("meetings", len(events))
            budget_note = f"{len(posts)} posts of 1-100 items, {args.senders} connections"
            recorder.figure("webhook answer p50", round(p50, 1), "ms", note=budget_note)
            recorder.figure("webhook answer p95", round(p95, 1), "ms", note=budget_note)
            recorder.figure("webhook answer p99", round(p99, 1), "ms", goal="<= 3000 ms (Graph's budget)",
                            passed=p99 <= GRAPH_BUDGET_MS, note=budget_note)
            recorder.figure("time to drain", round(drained, 1), "s",
                            note=f"first post to {processed_items} items processed")
            recorder.figure("throughput", round(throughput, 1), "notifications/s",
                            note=f"{processed_items / drained:.1f} queued items/s")
            recorder.figure("host CPU per processed item", round(1000 * cpu["host"] / max(1, processed_items), 1), "ms",
                            note=", ".join(f"{name} {value:.0f} s" for name, value in cpu.items()) + " CPU in all")
            recorder.figure("Graph requests per processed item", round(graph_requests / max(1, processed_items), 2), "")
            recorder.figure("notifications lost", len(missing) + (expected - processed_items if
                                                                   processed_items < expected else 0), "",
                            goal="0 (each meeting one reservation, queues and dead letters empty)",
                            passed=not failures)
            recorder.figure("peak RSS of the host process", round(peak_mib), "MiB",
                            note=f"{baseline_kib / 1024:.0f} MiB before the burst")
            recorder.sample("webhook answer time", latencies, "ms")
            recorder.save()
            try:
                next(hosts)
            except StopIteration:
                pass
        finally:
            emulator_end.send("stop")
            emulator.join(timeout=30)
    for failure in failures:
        print(f"FAILED: {failure}")
    return 1 if failures else 0


def graph_request_total(details: dict) -> int:
    import requests

    answer = requests.get(f"{details['base_url']}/_control/requests", verify=details["ca_path"], timeout=30)
    counts = answer.json()["counts"]
    return sum(n for name, n in counts.items() if not name.startswith("control."))


if __name__ == "__main__":
    raise SystemExit(main())
