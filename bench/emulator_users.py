"""How fast the Graph emulator serves a large directory: seeds N users (default 100,000) into an
in-process emulator, then reads them over HTTPS with requests, following every nextLink, via
`/users?$top=999` and via `/users/delta` (Prefer: odata.maxpagesize=999), and prints pages,
seconds and users per second for each (figures only, no goal).

    python -m bench.emulator_users [--users 100000]
"""
from __future__ import annotations

import argparse
import time

import requests

from bench.figures import Recorder
from devtools.graph_emulator import seed
from devtools.graph_emulator.server import EmulatorServer


def read_all(session: requests.Session, ca_path: str, url: str, headers: dict[str, str]) -> tuple[int, int, str]:
    """(pages, users, final link) after following nextLinks to the end."""
    pages = users = 0
    while True:
        response = session.get(url, headers=headers, verify=ca_path, timeout=120)
        response.raise_for_status()
        body = response.json()
        pages += 1
        users += len(body["value"])
        if "@odata.nextLink" not in body:
            return pages, users, body.get("@odata.deltaLink", "")
        url = body["@odata.nextLink"]


def report(label: str, pages: int, users: int, seconds: float, recorder: Recorder | None = None) -> None:
    print(f"{label:<28} pages={pages:<5} users={users:<7} seconds={seconds:6.2f} users/s={users / seconds:,.0f}")
    if recorder is not None:
        recorder.figure(f"{label}: users per second", round(users / seconds), "users/s",
                        note=f"{pages} pages, {seconds:.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000)
    args = parser.parse_args()
    recorder = Recorder("emulator_users")
    recorder.parameter("users", args.users)
    with EmulatorServer() as server:
        world = server.world
        started = time.perf_counter()
        tenant = seed.create_tenant(world, "bench.example")
        app = seed.add_app(world, tenant)
        seed.seed_many_users(world, tenant, args.users)
        print(f"seeded {args.users:,} users in {time.perf_counter() - started:.2f}s")

        session = requests.Session()
        token = session.post(f"{server.base_url}/{tenant.id}/oauth2/v2.0/token", verify=server.ca_path, data={
            "client_id": app.client_id, "client_secret": app.secrets[0].value,
            "grant_type": "client_credentials", "scope": "https://graph.microsoft.com/.default",
        }).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}

        started = time.perf_counter()
        pages, users, _ = read_all(session, server.ca_path, f"{server.api_base}/users?$top=999", headers)
        report("GET /users?$top=999", pages, users, time.perf_counter() - started, recorder)

        delta_headers = {**headers, "Prefer": "odata.maxpagesize=999"}
        started = time.perf_counter()
        pages, users, delta_link = read_all(session, server.ca_path,
                                            f"{server.api_base}/users/delta?$select=displayName,mail,accountEnabled",
                                            delta_headers)
        report("GET /users/delta (initial)", pages, users, time.perf_counter() - started, recorder)

        started = time.perf_counter()
        pages, users, _ = read_all(session, server.ca_path, delta_link, delta_headers)
        seconds = time.perf_counter() - started
        report("GET deltaLink (no changes)", pages, users, seconds)
        recorder.figure("GET deltaLink (no changes): time", round(seconds, 3), "s", note=f"{pages} page(s)")
        recorder.save()


if __name__ == "__main__":
    main()
