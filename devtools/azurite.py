"""Start and stop Azurite (Blob, Queue, Table) on free loopback ports, in memory.

Used by the test fixtures and by `make start`, so both run the same local storage.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from devtools.ports import free_port, wait_for_port

ROOT = Path(__file__).resolve().parent.parent
ACCOUNT = "devstoreaccount1"
# Azurite's well-known development key (public, documented by Azurite; not a secret).
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def azurite_binary() -> str:
    local = ROOT / "node_modules" / ".bin" / "azurite"
    if local.exists():
        return str(local)
    found = shutil.which("azurite")
    if found:
        return found
    raise FileNotFoundError("Azurite is not installed: run `npm ci` in the project root")


@dataclass
class Azurite:
    blob_port: int = 0
    queue_port: int = 0
    table_port: int = 0
    process: subprocess.Popen | None = field(default=None, repr=False)
    _workdir: str | None = field(default=None, repr=False)

    @property
    def connection_string(self) -> str:
        base = "http://127.0.0.1"
        return (
            f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};"
            f"BlobEndpoint={base}:{self.blob_port}/{ACCOUNT};"
            f"QueueEndpoint={base}:{self.queue_port}/{ACCOUNT};"
            f"TableEndpoint={base}:{self.table_port}/{ACCOUNT};"
        )

    def start(self, timeout: float = 60.0) -> "Azurite":
        self.blob_port = self.blob_port or free_port()
        self.queue_port = self.queue_port or free_port()
        self.table_port = self.table_port or free_port()
        # In-memory persistence keeps nothing on disk; the debug log goes to the temp dir.
        self._workdir = tempfile.mkdtemp(prefix="azurite-")
        cmd = [
            azurite_binary(),
            "--silent", "--inMemoryPersistence", "--disableTelemetry", "--skipApiVersionCheck",
            "--loose",
            "--blobHost", "127.0.0.1", "--blobPort", str(self.blob_port),
            "--queueHost", "127.0.0.1", "--queuePort", str(self.queue_port),
            "--tableHost", "127.0.0.1", "--tablePort", str(self.table_port),
        ]
        env = dict(os.environ, AZURITE_DISABLE_TELEMETRY="1")
        self.process = subprocess.Popen(
            cmd, cwd=self._workdir, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, start_new_session=True
        )
        alive = lambda: self.process.poll() is None  # noqa: E731
        try:
            for port in (self.blob_port, self.queue_port, self.table_port):
                wait_for_port(port, timeout=timeout, alive=alive)
        except Exception as exc:
            err = self.process.stderr.read().decode(errors="replace") if self.process.poll() is not None else ""
            self.stop()
            raise RuntimeError(f"Azurite did not start: {exc} {err.strip()[:500]}") from exc
        return self

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._workdir:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None

    def __enter__(self) -> "Azurite":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
