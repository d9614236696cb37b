"""`python -m devtools.localhost`: run the function app locally until Ctrl-C.

    python -m devtools.localhost [--port 7071] [--bind 127.0.0.1] [--app function_app]
                                 [--settings local.settings.json] [--host-json host.json]
                                 [--settings-check sync.settings:check_settings_or_exit]

Order of start: local.settings.json `Values` go into the environment (variables already set
win), the app's settings check runs (its one-line error ends the start with exit code 2),
the app is imported and served. Exit codes: 0 after Ctrl-C / SIGTERM, 2 when it cannot start.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import os
import signal
import sys
import threading
from pathlib import Path

from devtools.localhost.host import LocalHost, LocalHostError
from devtools.localhost.metadata import MetadataError, app_directory, find_app, import_app_module
from devtools.localhost.settings_file import SettingsFileError, apply_values, read_values

DEFAULT_SETTINGS_CHECK = "sync.settings:check_settings_or_exit"


class StartError(Exception):
    """Ends the start with one line on stderr and exit code 2."""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m devtools.localhost", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=7071, help="HTTP port (0 picks a free one; default 7071)")
    parser.add_argument("--bind", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--app", default="function_app",
                        help="module name or .py file of the FunctionApp (default function_app)")
    parser.add_argument("--settings", default=None,
                        help="local.settings.json to load (default: the one beside the app, if any)")
    parser.add_argument("--host-json", default=None, help="host.json to use (default: the one beside the app)")
    parser.add_argument("--settings-check", default=DEFAULT_SETTINGS_CHECK,
                        help="module:function run before the app is imported; '' to skip "
                             f"(default {DEFAULT_SETTINGS_CHECK}, skipped when that module does not exist)")
    return parser.parse_args(argv)


def load_settings_file(explicit: str | None, app_dir: Path) -> Path | None:
    path = Path(explicit) if explicit else app_dir / "local.settings.json"
    if not explicit and not path.is_file():
        return None
    try:
        apply_values(read_values(path))
    except SettingsFileError as exc:
        raise StartError(str(exc)) from None
    return path


def run_settings_check(spec: str) -> None:
    """Call the app's settings check; a missing check module is fine, a failing check is not."""
    if not spec:
        return
    module_name, _, function_name = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and (module_name == exc.name or module_name.startswith(exc.name + ".")):
            logging.getLogger("devtools.localhost").debug("no settings check: %s not found", module_name)
            return
        raise
    check = getattr(module, function_name or "check_settings_or_exit", None)
    if check is None:
        return
    try:
        check()
    except SystemExit as exc:
        if exc.code in (0, None):
            return
        raise StartError(exc.code if isinstance(exc.code, str) else "") from None
    except Exception as exc:
        raise StartError(str(exc).splitlines()[0] if str(exc) else type(exc).__name__) from None


def _wait_for_signal() -> None:
    stopping = threading.Event()

    def request_stop(signum, frame):
        stopping.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    while not stopping.wait(0.5):
        pass


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("azure").setLevel(logging.WARNING)
    app_dir = app_directory(args.app)
    try:
        settings_path = load_settings_file(args.settings, app_dir)
        if str(app_dir) not in sys.path:
            sys.path.insert(0, str(app_dir))
        run_settings_check(args.settings_check)
        app = find_app(import_app_module(args.app))
        host_json = Path(args.host_json) if args.host_json else app_dir / "host.json"
        if args.host_json and not host_json.is_file():
            raise StartError(f"host.json file {host_json} does not exist")
        host = LocalHost(app, args.port, bind=args.bind, host_config=host_json, settings=os.environ).start()
    except (StartError, LocalHostError, MetadataError, ValueError, OSError) as exc:
        message = str(exc)
        if message:
            print(f"error: {message}", file=sys.stderr, flush=True)
        return 2

    print(f"Local Functions host running at {host.base_url}", flush=True)
    if settings_path:
        print(f"Settings from {settings_path.name} (variables already set were kept)", flush=True)
    print("Functions:", flush=True)
    for line in host.describe():
        print(f"    {line}", flush=True)
    print("Press Ctrl-C to stop.", flush=True)
    try:
        _wait_for_signal()
    finally:
        host.stop()
    print("Stopped.", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
