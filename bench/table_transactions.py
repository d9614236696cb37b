"""Benchmark: CPU and wall time of a 100-operation upsert transaction against Azurite, sent by
azure-data-tables' `TableClient.submit_transaction` and by our `Table.transact` (which writes
the `$batch` body itself, see sync/store/batch_wire.py).

    .venv/bin/python -m bench.table_transactions [--transactions 200] [--operations 100]

Rows look like the user rows of a first sync (a dozen strings, booleans and datetimes) and are
written with upsert/replace into fresh rows, one partition per transaction. Each way runs a few
warm-up transactions first, then the measured ones; both share one Azurite, taking turns in
rounds so neither gets a quieter machine. CPU time is this process's (`time.process_time`), so
it leaves out Azurite's own work; wall time includes the round trip. Not a test: it prints figures.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def user_row(partition: str, number: int) -> dict:
    moment = datetime(2024, 1, 1, tzinfo=timezone.utc) + timedelta(minutes=number)
    return {
        "PartitionKey": partition,
        "RowKey": f"user!{uuid.UUID(int=number).hex}",
        "UserId": str(uuid.UUID(int=number)),
        "AccountEnabled": True,
        "Active": number % 7 != 0,
        "CreatedAt": moment,
        "UpdatedAt": moment,
        "Email": f"user{number:06d}@bench.example",
        "Mail": f"user{number:06d}@bench.example",
        "UserPrincipalName": f"user{number:06d}@bench.example",
        "DisplayName": f"User Number {number}",
        "GivenName": "User",
        "Surname": f"Number {number}",
        "Department": f"Department {number % 40}",
        "JobTitle": "Engineer",
        "OfficeLocation": f"Building {number % 9}",
        "UserType": "Member",
    }


def batch_of(run: str, index: int, operations: int, mode) -> list[tuple]:
    partition = f"{run}-{index:05d}"
    return [("upsert", user_row(partition, index * operations + n), {"mode": mode}) for n in range(operations)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transactions", type=int, default=200, help="measured transactions per way")
    parser.add_argument("--operations", type=int, default=100, help="operations per transaction (at most 100)")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=4, help="alternate the two ways this many times")
    args = parser.parse_args(argv)
    if not 1 <= args.operations <= 100:
        parser.error("--operations must be 1 to 100")

    from azure.data.tables import TableServiceClient, UpdateMode

    from bench.figures import Recorder
    from devtools.azurite import Azurite
    from sync.store import Table

    with Azurite() as azurite:
        service = TableServiceClient.from_connection_string(azurite.connection_string)
        name = f"bench{uuid.uuid4().hex[:12]}"
        table = Table(service, name).ensure()
        client = service.get_table_client(name)
        ways = {
            "sdk submit_transaction": lambda ops: client.submit_transaction(ops),
            "Table.transact": lambda ops: table.transact(ops),
        }
        totals = {label: {"cpu": 0.0, "wall": 0.0, "count": 0} for label in ways}
        counter = 0
        for label, send in ways.items():
            for _ in range(args.warmup):
                counter += 1
                send(batch_of("warm", counter, args.operations, UpdateMode.REPLACE))

        per_round = max(1, args.transactions // args.rounds)
        for round_number in range(args.rounds):
            for label, send in ways.items():
                work = []
                for _ in range(per_round):
                    counter += 1
                    work.append(batch_of(f"r{round_number}", counter, args.operations, UpdateMode.REPLACE))
                cpu, wall = time.process_time(), time.perf_counter()
                for operations in work:
                    send(operations)
                totals[label]["cpu"] += time.process_time() - cpu
                totals[label]["wall"] += time.perf_counter() - wall
                totals[label]["count"] += len(work)

        figures = {}
        for label, total in totals.items():
            figures[label] = {
                "transactions": total["count"],
                "operations_each": args.operations,
                "cpu_ms_per_transaction": round(1000 * total["cpu"] / total["count"], 2),
                "wall_ms_per_transaction": round(1000 * total["wall"] / total["count"], 2),
            }
            print(f"{label:<24} transactions={total['count']:<5} "
                  f"cpu ms/txn={figures[label]['cpu_ms_per_transaction']:7.2f}  "
                  f"wall ms/txn={figures[label]['wall_ms_per_transaction']:7.2f}", flush=True)
        sdk, ours = figures["sdk submit_transaction"], figures["Table.transact"]
        speedups = {"cpu_speedup": round(sdk["cpu_ms_per_transaction"] / ours["cpu_ms_per_transaction"], 2),
                    "wall_speedup": round(sdk["wall_ms_per_transaction"] / ours["wall_ms_per_transaction"], 2)}
        print(json.dumps({**speedups, "figures": figures}, indent=2), flush=True)
        recorder = Recorder("table_transactions")
        for name in ("transactions", "operations", "rounds"):
            recorder.parameter(name, getattr(args, name))
        for label, figure in figures.items():
            recorder.figure(f"{label}: CPU per transaction", figure["cpu_ms_per_transaction"], "ms")
            recorder.figure(f"{label}: wall per transaction", figure["wall_ms_per_transaction"], "ms")
        recorder.figure("CPU speed-up of Table.transact", speedups["cpu_speedup"], "x")
        recorder.figure("wall speed-up of Table.transact", speedups["wall_speedup"], "x")
        recorder.save()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
