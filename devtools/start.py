"""`make start`: the whole product on this machine, no Microsoft 365 tenant needed.

    python -m devtools.start [--port 7071] [--emulator-port 8443] [--app function_app] [--check]

Starts Azurite, then the Graph emulator with the demo tenant (reading the GRAPH_API_BASE,
GRAPH_AUTHORITY_HOST and GRAPH_CA_BUNDLE lines it prints once ready), then the app: `func start`
when Azure Functions Core Tools is on the PATH, else the local host (devtools.localhost).

The app's settings: the current environment, then local.settings.json (or, when there is none,
local.settings.example.json) for names the environment does not set; finally the local world's
own values replace what they must: AzureWebJobsStorage is Azurite's connection string (identity
settings `AzureWebJobsStorage__*` are dropped), every `KEY=value` the emulator printed (its URLs,
CA file and demo tenant) is set, and a loopback PUBLIC_BASE_URL gets the app's port.

Ctrl-C or SIGTERM stops every child. `--check` starts everything, asks /api/health once,
prints the answer and stops: exit 0 when it is 200.
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import requests

from devtools.azurite import Azurite
from devtools.localhost.host_config import load_host_config
from devtools.localhost.settings_file import SettingsFileError, read_values
from devtools.ports import free_port, port_is_free, wait_for_port

ROOT = Path(__file__).resolve().parent.parent
EMULATOR_MODULE = "devtools.graph_emulator"
EMULATOR_KEYS = ("GRAPH_API_BASE", "GRAPH_AUTHORITY_HOST", "GRAPH_CA_BUNDLE")
PREFERRED_EMULATOR_PORT = 8443
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
_KEY_VALUE = re.compile(r"^([A-Z][A-Z0-9_]*)=(.*)$")


class StartFailed(Exception):
    """Stops the start; the message is the one line shown to the user."""


# --- settings -------------------------------------------------------------------------------------

def settings_file(root: Path) -> Path | None:
    """local.settings.json when present, else the example the repository ships."""
    for name in ("local.settings.json", "local.settings.example.json"):
        if (root / name).is_file():
            return root / name
    return None


def effective_settings(file_values: dict[str, str], environ: dict[str, str], *, storage: str,
                       graph: dict[str, str], app_url: str) -> dict[str, str]:
    """The environment the app runs with (see the module docstring for the order)."""
    settings = dict(environ)
    for name, value in file_values.items():
        settings.setdefault(name, value)
    for name in [n for n in settings if n.startswith("AzureWebJobsStorage__")]:
        del settings[name]
    settings["AzureWebJobsStorage"] = storage
    settings.update(graph)
    public = settings.get("PUBLIC_BASE_URL", "")
    if "PUBLIC_BASE_URL" not in environ and (not public or (urlsplit(public).hostname or "") in LOOPBACK):
        settings["PUBLIC_BASE_URL"] = app_url
    return settings


# --- child processes ----------------------------------------------------------------------------

class Child:
    """A child process in its own process group, so stopping it also stops what it started."""

    def __init__(self, name: str, command: list[str], env: dict[str, str] | None = None, capture: bool = False):
        self.name = name
        self.process = subprocess.Popen(
            command, cwd=ROOT, env=env, start_new_session=True, text=True,
            stdout=subprocess.PIPE if capture else None,
        )

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout: float = 10.0) -> None:
        if not self.alive():
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


def read_ready_lines(child: Child, keys: tuple[str, ...], timeout: float) -> dict[str, str]:
    """Wait until the child has printed `KEY=value` for every key; returns every such line seen.

    Later `KEY=value` lines are kept too (never echoed: some carry credentials); other output
    is echoed with the child's name in front.
    """
    found: dict[str, str] = {}
    ready = threading.Event()

    def pump():
        for line in child.process.stdout:
            match = _KEY_VALUE.match(line.strip())
            if match:
                found[match.group(1)] = match.group(2)
                if all(k in found for k in keys):
                    ready.set()
            else:
                sys.stdout.write(f"[{child.name}] {line}")
                sys.stdout.flush()
        ready.set()  # output ended: the process is gone

    threading.Thread(target=pump, name=f"{child.name}-output", daemon=True).start()
    if not ready.wait(timeout):
        raise StartFailed(f"{child.name} printed no {', '.join(k for k in keys if k not in found)} within {timeout:.0f} s")
    missing = [k for k in keys if k not in found]
    if missing:
        code = child.process.wait()
        raise StartFailed(f"{child.name} exited with code {code} before printing {', '.join(missing)}")
    return found


def require_emulator(module: str) -> None:
    """Fail with one line when the emulator cannot be run with `python -m`."""
    try:
        found = importlib.util.find_spec(f"{module}.__main__") is not None
    except ModuleNotFoundError:
        found = False
    if not found:
        raise StartFailed(f"the Graph emulator is not available: {module.replace('.', '/')}/__main__.py does not exist")


def start_emulator(module: str, port: int | None, children: list[Child]) -> dict[str, str]:
    """Run the emulator with the demo tenant (added to `children`); returns the `KEY=value` lines it printed."""
    if port is None:
        port = PREFERRED_EMULATOR_PORT if port_is_free(PREFERRED_EMULATOR_PORT) else free_port()
    child = Child("graph", [sys.executable, "-m", module, "--port", str(port), "--seed", "demo"], capture=True)
    children.append(child)
    printed = read_ready_lines(child, EMULATOR_KEYS, timeout=60)
    listening = urlsplit(printed["GRAPH_API_BASE"]).port or port
    try:
        wait_for_port(listening, timeout=30, alive=child.alive)
    except (RuntimeError, TimeoutError) as exc:
        raise StartFailed(f"the Graph emulator is not answering: {exc}") from None
    return dict(printed)


def app_command(port: int, app: str, settings_path: Path | None) -> tuple[str, list[str]]:
    """`func start` when Core Tools is installed, else the local host."""
    func = shutil.which("func")
    if func:
        return "func", [func, "start", "--port", str(port)]
    command = [sys.executable, "-m", "devtools.localhost", "--port", str(port), "--app", app]
    if settings_path:
        command += ["--settings", str(settings_path)]
    return "local host", command


def ask_health(url: str, timeout: float = 30.0) -> int:
    try:
        response = requests.get(url, timeout=timeout)
    except requests.RequestException as exc:
        print(f"health: no answer from {url}: {type(exc).__name__}", flush=True)
        return 0
    print(f"health: {response.status_code} {response.text.strip()[:500]}", flush=True)
    return response.status_code


# --- main ---------------------------------------------------------------------------------------

def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m devtools.start", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=7071, help="the app's HTTP port (default 7071)")
    parser.add_argument("--emulator-port", type=int, default=None,
                        help=f"the Graph emulator's port (default {PREFERRED_EMULATOR_PORT} when free, else any)")
    parser.add_argument("--app", default="function_app", help="the app module (default function_app)")
    parser.add_argument("--emulator-module", default=EMULATOR_MODULE, help=argparse.SUPPRESS)
    parser.add_argument("--check", action="store_true",
                        help="start everything, GET /api/health once, print it and stop (exit 0 on 200)")
    parser.add_argument("--no-demo", action="store_true",
                        help="do not connect the demo tenant and subscribe its rooms after start-up")
    return parser.parse_args(argv)


def show_demo(api: str, graph: dict[str, str], env: dict[str, str]) -> None:
    """Connects the demo tenant through the app's API and prints how to try both directions."""
    from devtools import demo

    key = (env.get("LOCAL_FUNCTION_KEY") or "").split(",")[0].strip()
    print("Connecting the demo tenant and subscribing its rooms ...", flush=True)
    try:
        ready = demo.prepare(api, key)
    except (demo.DemoFailed, OSError) as exc:
        print(f"demo: not ready ({exc}); the app still runs", flush=True)
        return
    print(f"  console   {api}/console (function key: {key})", flush=True)
    print(f"  demo      integration {ready['integration_id']}, {len(ready['assets'])} rooms subscribed", flush=True)
    outlook, platform = demo.commands(api, graph["GRAPH_API_BASE"], graph["GRAPH_CA_BUNDLE"], key, ready)
    print("Make a meeting in Outlook as a demo person (a reservation appears within seconds):", flush=True)
    print(f"  {outlook}", flush=True)
    print("Book through the platform's API (the meeting appears in the emulator):", flush=True)
    print(f"  {platform}", flush=True)


def _stop_on_signal(signum, frame):
    """Ctrl-C / SIGTERM: leave whatever is going on (even a start-up wait) and clean up once."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise KeyboardInterrupt


def run(args: argparse.Namespace) -> int:
    azurite = None
    children: list[Child] = []
    try:
        require_emulator(args.emulator_module)
        path = settings_file(ROOT)
        try:
            file_values = read_values(path) if path else {}
        except SettingsFileError as exc:
            raise StartFailed(str(exc)) from None

        if not port_is_free(args.port):
            raise StartFailed(f"port {args.port} is already in use; stop what uses it or pass --port")

        print("Starting Azurite ...", flush=True)
        azurite = Azurite()
        azurite.start()
        print("Starting the Graph emulator (demo tenant) ...", flush=True)
        graph = start_emulator(args.emulator_module, args.emulator_port, children)

        app_url = f"http://127.0.0.1:{args.port}"
        env = effective_settings(file_values, dict(os.environ), storage=azurite.connection_string,
                                 graph=graph, app_url=app_url)
        runner, command = app_command(args.port, args.app, path)
        print(f"Starting the app with the {runner} ...", flush=True)
        children.append(app := Child("app", command, env=env))
        try:
            wait_for_port(args.port, timeout=90, alive=app.alive)
        except (RuntimeError, TimeoutError):
            code = app.process.poll()
            raise StartFailed(f"the app did not start (exit code {code}); see its message above") from None

        prefix = load_host_config(ROOT / "host.json").route_prefix
        api = f"{app_url}/{prefix}" if prefix else app_url
        print("", flush=True)
        print(f"  app       {api}", flush=True)
        print(f"  health    {api}/health", flush=True)
        print(f"  Graph     {graph['GRAPH_API_BASE']} (sign-in {graph['GRAPH_AUTHORITY_HOST']})", flush=True)
        print(f"  Azurite   queues http://127.0.0.1:{azurite.queue_port}  tables http://127.0.0.1:{azurite.table_port}",
              flush=True)
        tenant = graph.get("GRAPH_TENANT_DOMAIN")
        if tenant:
            print(f"  tenant    {tenant} (app id {graph.get('GRAPH_CLIENT_ID', '?')}; the emulator's demo credentials "
                  "are in the app's environment)", flush=True)
        print(f"  settings  {path.name if path else 'environment only'}", flush=True)

        if args.check:
            return 0 if ask_health(f"{api}/health") == 200 else 1

        if not args.no_demo and tenant:
            show_demo(api, graph, env)

        print("Ctrl-C stops everything.", flush=True)
        while True:
            gone = next((c for c in children if not c.alive()), None)
            if gone is not None:
                print(f"{gone.name} exited with code {gone.process.returncode}; stopping", flush=True)
                return 1
            time.sleep(0.5)
    except KeyboardInterrupt:
        print("\nStopping ...", flush=True)
        return 0
    except (StartFailed, RuntimeError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 1
    finally:
        for child in reversed(children):
            child.stop()
        if azurite is not None:
            azurite.stop()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGINT, _stop_on_signal)
    signal.signal(signal.SIGTERM, _stop_on_signal)
    code = run(args)
    print("Everything stopped.", flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
