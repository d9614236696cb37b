"""Runs every benchmark and writes one report: `make bench`.

    .venv/bin/python -m bench.report [--only NAME ...] [--note TEXT] [--out bench/results]

Each script runs in its own process with BENCH_FIGURES naming a JSON file (bench/figures.py);
its output still goes to the terminal. The report, `report-<date>.md` plus the same text in
`latest.md`, holds the machine's facts, a table of every figure with its goal and result, a
histogram per latency series (PNG, under `<date>/`) and how each script ran. Exit status 1 when
a script failed (its own checks, or a crash); a figure missing its goal is reported, not fatal.

Some scripts run here with smaller inputs than their own defaults, so the whole run stays near a
quarter of an hour on a two-core machine; BENCHES says which and the report prints the arguments.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"

# (script, arguments) in running order.
BENCHES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("emulator_users", ()),
    ("graph_users_delta", ("--users", "10000")),  # msgraph-sdk needs over 15 min for 100,000
    ("msgraph_sdk_reads", ()),
    ("outbound_latency", ()),
    ("recurrence_nightly", ()),
    ("room_inbound", ()),
    ("table_transactions", ()),
    ("user_sync", ()),
    ("notification_burst", ()),
)


# ---- facts about the machine and the run -----------------------------------------------------------

def _first_match(path: str, pattern: str) -> str | None:
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    found = re.search(pattern, text, re.MULTILINE)
    return found.group(1).strip() if found else None


def machine_facts() -> dict[str, str]:
    """CPU, cores, memory, OS and Python: nothing that names the machine or its files."""
    memory_kib = _first_match("/proc/meminfo", r"^MemTotal:\s+(\d+)")
    system = _first_match("/etc/os-release", r'^PRETTY_NAME="?([^"\n]*)')
    kernel = ".".join(platform.release().split(".")[:2])  # major.minor: builds can carry local names
    return {
        "CPU": _first_match("/proc/cpuinfo", r"^model name\s*:\s*(.*)$") or platform.processor() or "unknown",
        "cores": str(os.cpu_count() or "unknown"),
        "memory": f"{int(memory_kib) / 2**20:.1f} GiB" if memory_kib else "unknown",
        "OS": f"{system or platform.system()} ({platform.system()} {kernel}, {platform.machine()})",
        "Python": f"{platform.python_implementation()} {platform.python_version()}",
    }


def cpu_ticks() -> tuple[int, int]:
    """(busy, total) clock ticks of the whole machine since boot."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return sum(fields) - idle, sum(fields)


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


# ---- running ---------------------------------------------------------------------------------------

def run_bench(name: str, arguments: tuple[str, ...], scratch: Path) -> dict[str, Any]:
    figures_file = scratch / f"{name}.json"
    environment = {**os.environ, "BENCH_FIGURES": str(figures_file), "MPLBACKEND": "Agg"}
    print(f"\n=== bench.{name} {' '.join(arguments)}".rstrip(), flush=True)
    started = time.perf_counter()
    status = subprocess.run([sys.executable, "-m", f"bench.{name}", *arguments], cwd=ROOT, env=environment).returncode
    seconds = time.perf_counter() - started
    document = json.loads(figures_file.read_text(encoding="utf-8")) if figures_file.exists() else None
    print(f"=== bench.{name}: exit {status} in {seconds:.0f} s", flush=True)
    return {"name": name, "args": list(arguments), "status": status, "seconds": round(seconds, 1),
            "document": document, "images": {}}


# ---- histograms ------------------------------------------------------------------------------------

def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def histogram(path: Path, title: str, values: list[float], unit: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from bench.figures import percentile

    figure, axes = plt.subplots(figsize=(8, 3.6), dpi=100)
    axes.hist(values, bins=min(60, max(10, len(values) // 8)), color="#4c72b0", edgecolor="white", linewidth=0.4)
    for share, style in ((0.50, "-"), (0.95, "--"), (0.99, ":")):
        mark = percentile(values, share)
        axes.axvline(mark, color="#c44e52", linestyle=style, linewidth=1.2,
                     label=f"p{round(share * 100)} {mark:.3g} {unit}")
    axes.set_title(f"{title} (n={len(values)})", fontsize=10)
    axes.set_xlabel(unit)
    axes.set_ylabel("count")
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def draw_histograms(runs: list[dict[str, Any]], folder: Path, relative_to: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for run in runs:
        samples = (run["document"] or {}).get("samples") or {}
        for name, series in samples.items():
            if not series.get("values"):
                continue
            path = folder / f"{slug(run['name'])}-{slug(name)}.png"
            histogram(path, f"{run['name']}: {name}", series["values"], series.get("unit", ""))
            run["images"][name] = path.relative_to(relative_to).as_posix()


# ---- rendering (pure) --------------------------------------------------------------------------------

def format_value(value: Any, unit: str) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        text = "yes" if value else "no"
    elif isinstance(value, int):
        text = f"{value:,}"
    elif isinstance(value, float):
        text = f"{value:,.2f}".rstrip("0").rstrip(".") or "0" if abs(value) < 1000 else f"{value:,.0f}"
    else:
        text = str(value)
    return f"{text} {unit}".strip() if unit else text


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _result(figure: dict[str, Any]) -> str:
    if figure.get("passed") is None:
        return ""
    return "pass" if figure["passed"] else "**FAIL**"


def render(report: dict[str, Any]) -> str:
    """The markdown of one run. `report`: date, started, seconds, machine, load, note, runs."""
    runs = report["runs"]
    lines = [f"# roomsync benchmarks, {report['date']}", ""]
    minutes, seconds = divmod(round(report["seconds"]), 60)
    lines.append(f"`make bench` started {report['started']} and took {minutes} min {seconds:02d} s. "
                 "Each script's docstring says what it measures and how.")
    if report.get("note"):
        lines += ["", f"Note: {report['note']}"]
    if report.get("load"):
        lines += ["", report["load"]]
    failed = [run["name"] for run in runs if run["status"] != 0]
    if failed:
        lines += ["", f"**Failed:** {', '.join(failed)} (non-zero exit status; see the runs table)."]

    lines += ["", "## Machine", "", "| | |", "|---|---|"]
    lines += [f"| {_cell(key)} | {_cell(value)} |" for key, value in report["machine"].items()]

    lines += ["", "## Figures", "", "| benchmark | figure | value | goal | result | note |", "|---|---|---|---|---|---|"]
    for run in runs:
        figures = (run["document"] or {}).get("figures") or []
        if not figures:
            lines.append(f"| {run['name']} | (no figures recorded) | - | | | exit status {run['status']} |")
        for figure in figures:
            lines.append("| " + " | ".join(_cell(part) for part in (
                run["name"], figure["name"], format_value(figure.get("value"), figure.get("unit") or ""),
                figure.get("goal") or "", _result(figure), figure.get("note") or "")) + " |")

    pictures = [(run, name, path) for run in runs for name, path in run.get("images", {}).items()]
    if pictures:
        lines += ["", "## Latency histograms", ""]
        for run, name, path in pictures:
            lines += [f"### {run['name']}: {name}", "", f"![{run['name']}: {name}]({path})", ""]
        lines.pop()

    lines += ["", "## Runs", "", "| benchmark | arguments | parameters | exit status | seconds |", "|---|---|---|---|---|"]
    for run in runs:
        parameters = (run["document"] or {}).get("parameters") or {}
        shown = ", ".join(f"{key}={value}" for key, value in parameters.items())
        lines.append("| " + " | ".join(_cell(part) for part in (
            f"bench.{run['name']}", " ".join(run["args"]) or "(defaults)", shown or "-", run["status"],
            f"{run['seconds']:.0f}")) + " |")
    return "\n".join(lines) + "\n"


# ---- main ------------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", metavar="NAME", help="run these scripts only")
    parser.add_argument("--note", default=os.environ.get("BENCH_NOTE", ""), help="a line for the report")
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder of the report")
    args = parser.parse_args(argv)
    chosen = [(name, arguments) for name, arguments in BENCHES if not args.only or name in args.only]
    unknown = set(args.only or ()) - {name for name, _ in BENCHES}
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")

    now = datetime.now(timezone.utc)
    busy_before, total_before = cpu_ticks()
    children_before = children_cpu_seconds()
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="roomsync-bench-figures-") as scratch:
        runs = [run_bench(name, arguments, Path(scratch)) for name, arguments in chosen]
    seconds = time.perf_counter() - began
    busy_after, total_after = cpu_ticks()
    ticks = os.sysconf("SC_CLK_TCK")
    machine_busy = (busy_after - busy_before) / ticks
    ours = children_cpu_seconds() - children_before
    others = max(0.0, machine_busy - ours)
    cores = os.cpu_count() or 1
    load = (f"CPU during the run: {machine_busy:,.0f} core-seconds busy of {seconds * cores:,.0f} available; "
            f"the benchmarks' own processes used about {ours:,.0f}, other work on the machine about {others:,.0f} "
            f"({100 * others / max(1.0, seconds * cores):.0f}% of its capacity). Figures measured while the "
            "machine is shared are noisier and slower.")

    date = now.strftime("%Y-%m-%d")
    args.out.mkdir(parents=True, exist_ok=True)
    images = args.out / date
    if images.exists():
        shutil.rmtree(images)
    draw_histograms(runs, images, args.out)
    if images.exists() and not any(images.iterdir()):
        images.rmdir()
    text = render({"date": date, "started": now.strftime("%Y-%m-%d %H:%M UTC"), "seconds": seconds,
                   "machine": machine_facts(), "load": load, "note": args.note, "runs": runs})
    (args.out / f"report-{date}.md").write_text(text, encoding="utf-8")
    (args.out / "latest.md").write_text(text, encoding="utf-8")
    print(f"\nreport: {(args.out / f'report-{date}.md').relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}"
          f" (and latest.md), {sum(len(r['images']) for r in runs)} histogram(s); {len(runs)} script(s) in "
          f"{seconds / 60:.1f} min", flush=True)
    return 1 if any(run["status"] != 0 for run in runs) else 0


if __name__ == "__main__":
    raise SystemExit(main())
