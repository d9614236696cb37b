"""The HTTP session shared by Graph calls and MSAL: trust store, timeouts, connection pool.

`requests` lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE from the environment replace a session's
`verify` setting, so a session-level CA would be silently ignored on machines that set them.
This session therefore passes `verify` and `timeout` on every single request.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
import threading
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import certifi
import requests
from requests.adapters import HTTPAdapter

from graph.config import GraphConfig

_bundle_lock = threading.Lock()
_bundles: dict[str, str] = {}


def trust_bundle(extra_ca: str | None) -> str | bool:
    """The `verify` value: True (default store) or a PEM file holding the default CAs plus
    the extra ones, so an extra CA adds trust instead of replacing the public roots.

    "Default" is what requests itself would use: the environment's bundle if set, else certifi."""
    if not extra_ca:
        return True
    defaults_path = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or certifi.where()
    if not os.path.isfile(defaults_path):
        defaults_path = certifi.where()
    stat = os.stat(extra_ca)
    key = f"{defaults_path}|{extra_ca}|{stat.st_mtime_ns}|{stat.st_size}"
    with _bundle_lock:
        cached = _bundles.get(key)
        if cached and os.path.exists(cached):
            return cached
        with open(defaults_path, "rb") as defaults, open(extra_ca, "rb") as extra:
            content = defaults.read().rstrip(b"\n") + b"\n" + extra.read()
        digest = hashlib.sha256(content).hexdigest()[:16]
        path = os.path.join(tempfile.gettempdir(), f"roomsync-graph-ca-{digest}.pem")
        if not os.path.exists(path):
            fd, partial = tempfile.mkstemp(prefix="roomsync-graph-ca-", suffix=".tmp")
            with os.fdopen(fd, "wb") as out:
                out.write(content)
            os.replace(partial, path)
        _bundles[key] = path
        return path


class GraphSession(requests.Session):
    """A requests session that applies our trust store and timeouts to every request.

    Also handed to MSAL as `http_client`, so token requests get the same treatment."""

    def __init__(self, config: GraphConfig) -> None:
        super().__init__()
        self._verify = trust_bundle(config.ca_bundle)
        self._timeout = config.timeout
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=config.pool_size, max_retries=0)
        self.mount("https://", adapter)
        self.mount("http://", adapter)

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        kwargs["verify"] = self._verify
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self._timeout
        return super().request(method, url, *args, **kwargs)


# ---- what may appear in logs ------------------------------------------------------------------

def loggable_url(url: str) -> str:
    """Path plus the NAMES of query parameters: values may hold delta/skip tokens or personal data."""
    parts = urlsplit(url)
    names = [name for name, _ in parse_qsl(parts.query, keep_blank_values=True)]
    query = "?" + "&".join(dict.fromkeys(names)) if names else ""
    return parts.path + query
