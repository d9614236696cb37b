"""`python -m devtools.graph_emulator --port 8443 --seed demo`: runs the emulator in the
foreground and prints `KEY=value` lines (authority host, API base, CA bundle and, for the demo,
the tenant and app credentials) that can be pasted into local settings. Stops cleanly on Ctrl-C
or SIGTERM.

`--notification-ca FILE` names the CA bundle (PEM) trusted when delivering notifications to https
receivers, so a receiver with a locally issued certificate can be reached without turning off
verification. A `delivery_ca` set through the control API's notification settings takes precedence."""
from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import signal
import sys
import threading

from devtools.graph_emulator.seed import seed_demo
from devtools.graph_emulator.server import EmulatorServer


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m devtools.graph_emulator",
                                     description="Local Microsoft Graph and Entra ID emulator (HTTPS).")
    parser.add_argument("--port", type=int, default=8443, help="port to listen on (0 = any free port)")
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to bind (default 127.0.0.1)")
    parser.add_argument("--seed", choices=("demo", "none"), default="demo",
                        help="demo: one tenant with an app, people and rooms; none: empty (use /_control/)")
    parser.add_argument("--cert-dir", help="where to write the generated CA and server certificate")
    parser.add_argument("--notification-ca", metavar="FILE",
                        help="CA bundle (PEM) to trust when delivering notifications to https receivers")
    parser.add_argument("--verbose", action="store_true", help="log every request")
    args = parser.parse_args(argv)
    if not _is_loopback(args.host):
        parser.error("--host must be a loopback address: the control API has no authentication")
    if args.notification_ca is not None:
        if not os.path.isfile(args.notification_ca):
            parser.error(f"--notification-ca: no such file: {args.notification_ca}")
        # Absolute, so deliveries do not depend on the working directory.
        args.notification_ca = os.path.abspath(args.notification_ca)
    return args


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    server = EmulatorServer(port=args.port, host=args.host, cert_dir=args.cert_dir)
    if args.notification_ca:
        server.world.services["delivery_ca"] = args.notification_ca
    lines = {
        "GRAPH_AUTHORITY_HOST": server.authority_host,
        "GRAPH_API_BASE": server.api_base,
        "GRAPH_CA_BUNDLE": server.ca_path,
    }
    if args.seed == "demo":
        lines.update(seed_demo(server.world))
    for key, value in lines.items():
        print(f"{key}={value}")
    sys.stdout.flush()

    stopping = threading.Event()

    def request_stop(signum, frame):  # noqa: ARG001 - signal handler signature
        stopping.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    server.start()
    try:
        stopping.wait()
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
