"""Reading a large directory through `/users/delta`: our client against Microsoft's Python SDK.

Seeds N users (100,000 by default) in an in-process Graph emulator and reads them all with a
full delta round, once with `graph` (requests, `Prefer: odata.maxpagesize=999`) and once with
msgraph-sdk (httpx/kiota, azure-identity's ClientSecretCredential against the emulator's token
endpoint, the same page size). Each read runs in a forked child process, so its CPU time and
memory are the client's alone (the emulator keeps serving from the parent). Prints, per client:
Graph requests, wall time, CPU time, and peak resident memory growth of the child (VmHWM after
resetting it at the start); `--tracemalloc` also traces the Python heap (very slow for the SDK).

    .venv/bin/python -m bench.graph_users_delta [--users 100000] [--no-sdk] [--tracemalloc]

Wall time includes the emulator's page rendering, the same for both clients. The SDK's modules
are imported before forking, so import time is not counted. Not a test: nothing is asserted.
"""
from __future__ import annotations

import argparse
import asyncio
import gc
import math
import multiprocessing
import os
import ssl
import sys
import time
import tracemalloc
from dataclasses import dataclass
from typing import Callable

from bench.figures import Recorder
from devtools.graph_emulator import seed
from devtools.graph_emulator.server import EmulatorServer
from graph import users
from graph.auth import AppTokenProvider, Credential
from graph.client import GraphClient
from graph.config import GraphConfig

GRAPH_SCOPE = "https://graph.microsoft.com/.default"
SELECT = list(users.USER_FIELDS)


@dataclass
class Run:
    name: str
    users: int
    requests: int
    wall: float
    cpu: float
    rss_growth_mib: float
    heap_peak_mib: float | None = None


class Bench:
    def __init__(self, count: int) -> None:
        self.server = EmulatorServer().start()
        world = self.server.world
        self.tenant = seed.create_tenant(world, "bench.example.com")
        self.app = seed.add_app(world, self.tenant, roles={"User.Read.All"})
        started = time.perf_counter()
        seed.seed_many_users(world, self.tenant, count)
        self.count = count
        print(f"seeded {count:,} users in {time.perf_counter() - started:.1f} s")

    def stop(self) -> None:
        self.server.stop()

    def delta_requests(self) -> int:
        return self.server.world.request_counts["users.delta"]

    # ---- the two readers ---------------------------------------------------------------------

    def read_with_graph(self) -> int:
        config = GraphConfig(authority_host=self.server.authority_host, api_base=self.server.api_base,
                             ca_bundle=self.server.ca_path, scope=GRAPH_SCOPE)
        provider = AppTokenProvider(config, self.tenant.id, self.app.client_id,
                                    Credential(self.app.secrets[0].value))
        client = GraphClient(config, provider)
        try:
            round_ = users.delta_round(client, select=SELECT, page_size=999)
            return len({change["id"] for change in round_.changes})
        finally:
            client.close()

    def read_with_sdk(self) -> int:
        return asyncio.run(self._read_with_sdk())

    async def _read_with_sdk(self) -> int:
        import httpx
        from azure.identity import ClientSecretCredential
        from kiota_abstractions.base_request_configuration import RequestConfiguration
        from kiota_authentication_azure.azure_identity_authentication_provider import (
            AzureIdentityAuthenticationProvider,
        )
        from msgraph import GraphRequestAdapter, GraphServiceClient
        from msgraph.generated.users.delta.delta_request_builder import DeltaRequestBuilder
        from msgraph_core import GraphClientFactory

        host = self.server.authority_host.split("://", 1)[1]
        credential = ClientSecretCredential(
            self.tenant.id, self.app.client_id, self.app.secrets[0].value,
            authority=host, disable_instance_discovery=True, connection_verify=self.server.ca_path)
        auth = AzureIdentityAuthenticationProvider(credential, scopes=[GRAPH_SCOPE],
                                                   allowed_hosts=[host.split(":")[0]])

        async def plain_delta_segment(request: httpx.Request) -> None:
            # The SDK asks for `/users/delta()`; Graph accepts that form, the emulator only
            # routes `/users/delta` (reported as an emulator gap), so the first URL is rewritten.
            if request.url.path.endswith("/users/delta()"):
                request.url = request.url.copy_with(path=request.url.path[:-2])

        http = httpx.AsyncClient(verify=ssl.create_default_context(cafile=self.server.ca_path),
                                 timeout=60, event_hooks={"request": [plain_delta_segment]})
        http = GraphClientFactory.create_with_default_middleware(client=http)
        adapter = GraphRequestAdapter(auth, client=http)
        adapter.base_url = self.server.api_base
        graph = GraphServiceClient(request_adapter=adapter)

        query = DeltaRequestBuilder.DeltaRequestBuilderGetQueryParameters(select=SELECT)
        config = RequestConfiguration(query_parameters=query)
        config.headers.add("Prefer", "odata.maxpagesize=999")
        seen: set[str] = set()
        page = await graph.users.delta.get(request_configuration=config)
        while True:
            seen.update(user.id for user in page.value or [])
            if not page.odata_next_link:
                break
            next_config = RequestConfiguration()
            next_config.headers.add("Prefer", "odata.maxpagesize=999")
            page = await graph.users.delta.with_url(page.odata_next_link).get(request_configuration=next_config)
        await http.aclose()
        return len(seen)

    # ---- measuring ---------------------------------------------------------------------------

    def measure(self, name: str, read: Callable[[], int], traced: bool) -> Run:
        """Runs `read` in a forked child and collects its figures through a pipe."""
        before = self.delta_requests()
        fork = multiprocessing.get_context("fork")
        receiver, sender = fork.Pipe(duplex=False)
        child = fork.Process(target=_child, args=(read, traced, sender))
        child.start()
        sender.close()
        figures = receiver.recv()
        child.join()
        if "error" in figures:
            raise RuntimeError(f"{name}: {figures['error']}")
        run = Run(name, figures["users"], self.delta_requests() - before, figures["wall"], figures["cpu"],
                  figures["rss_growth_mib"], figures.get("heap_peak_mib"))
        print(f"  {name}: {run.users:,} users in {run.wall:.1f} s", flush=True)
        return run


def _child(read: Callable[[], int], traced: bool, sender) -> None:
    try:
        gc.collect()
        start_rss = _reset_peak_rss()
        if traced:
            tracemalloc.start()
        wall, cpu = time.perf_counter(), time.process_time()
        found = read()
        figures = {"users": found, "wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu,
                   "rss_growth_mib": (_status_kib("VmHWM") - start_rss) / 1024}
        if traced:
            figures["heap_peak_mib"] = tracemalloc.get_traced_memory()[1] / 2**20
        sender.send(figures)
    except Exception as error:  # noqa: BLE001 - reported by the parent
        sender.send({"error": repr(error)})
    finally:
        sender.close()
        os._exit(0)  # skip the parent's inherited exit handlers (the emulator lives there)


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def _reset_peak_rss() -> int:
    """Resets this process's peak RSS (clear_refs 5) and returns the current RSS in KiB."""
    with open("/proc/self/clear_refs", "w") as clear:
        clear.write("5")
    return _status_kib("VmRSS")


def _import_sdk() -> None:
    """Loads the SDK's modules once, before the children fork."""
    try:
        import msgraph.generated.models.user  # noqa: F401
        import msgraph.generated.users.delta.delta_request_builder  # noqa: F401
        from msgraph import GraphServiceClient  # noqa: F401
    except ImportError:
        pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--no-sdk", action="store_true", help="skip msgraph-sdk")
    parser.add_argument("--tracemalloc", action="store_true", help="add a traced run per client")
    args = parser.parse_args(argv)

    bench = Bench(args.users)
    if not args.no_sdk:
        _import_sdk()
    runs: list[Run] = []
    try:
        runs.append(bench.measure("graph (ours)", bench.read_with_graph, args.tracemalloc))
        if not args.no_sdk:
            try:
                runs.append(bench.measure("msgraph-sdk", bench.read_with_sdk, args.tracemalloc))
            except ImportError as missing:
                print(f"msgraph-sdk not installed ({missing.name}); pip install -r requirements-bench.txt")
    finally:
        bench.stop()

    pages = math.ceil(args.users / 999)
    print(f"\n{args.users:,} users via /users/delta, $select of {len(SELECT)} properties, "
          f"odata.maxpagesize=999 (minimum: {pages} requests, {pages + 1} if the last page is empty)")
    print(f"{'client':<14}{'users':>9}{'requests':>10}{'wall s':>9}{'cpu s':>8}{'RSS +MiB':>10}{'heap MiB':>10}")
    for run in runs:
        heap = f"{run.heap_peak_mib:.1f}" if run.heap_peak_mib is not None else "-"
        print(f"{run.name:<14}{run.users:>9,}{run.requests:>10}{run.wall:>9.2f}{run.cpu:>8.2f}"
              f"{run.rss_growth_mib:>10.1f}{heap:>10}")
    if len(runs) == 2:
        ours, sdk = runs

        def ratio(a: float | None, b: float | None) -> str:
            return f"{a / b:.2f}x" if a is not None and b else "-"

        print(f"sdk / ours: wall {ratio(sdk.wall, ours.wall)}, cpu {ratio(sdk.cpu, ours.cpu)}, "
              f"RSS growth {ratio(sdk.rss_growth_mib, ours.rss_growth_mib)}, "
              f"heap peak {ratio(sdk.heap_peak_mib, ours.heap_peak_mib)}, "
              f"requests {ratio(sdk.requests, ours.requests)}")
    recorder = Recorder("graph_users_delta")
    recorder.parameter("users", args.users)
    for run in runs:
        recorder.figure(f"{run.name}: wall time", round(run.wall, 2), "s", note=f"{run.requests} requests")
        recorder.figure(f"{run.name}: CPU time", round(run.cpu, 2), "s")
        recorder.figure(f"{run.name}: resident memory growth", round(run.rss_growth_mib, 1), "MiB")
    recorder.save()
    return 0


if __name__ == "__main__":
    sys.exit(main())
