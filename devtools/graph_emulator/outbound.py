"""Calls from the emulator to notification endpoints (validation handshakes, notifications,
lifecycle events): URL rules, TLS trust, timing, and log-safe URLs.

Graph only calls https endpoints. The emulator also calls plain http on loopback hosts while
`allow_insecure_loopback` is on, because the local Functions host serves http; that is a
deliberate, documented deviation.
"""
from __future__ import annotations

import ipaddress
import time
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import requests

from devtools.graph_emulator.errors import GraphError
from devtools.graph_emulator.notification_settings import NotificationSettings

USER_AGENT = "Microsoft-Graph-Change-Notifications-Emulator/1.0"


@dataclass(frozen=True)
class Attempt:
    """One HTTP call's outcome. `status` is None when no response came back at all."""
    status: int | None
    body: str
    content_type: str
    duration: float
    error: str | None = None
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300 and not self.timed_out


def is_loopback_host(host: str | None) -> bool:
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_endpoint_url(url: object, field_name: str, settings: NotificationSettings) -> str:
    """400 unless the URL is absolute https (or loopback http when allowed)."""
    if not isinstance(url, str) or not url.strip():
        raise GraphError(400, "InvalidRequest", f"'{field_name}' is a required property for subscription creation.")
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    if not parts.hostname or scheme not in ("https", "http") or parts.netloc.startswith("/"):
        raise GraphError(400, "InvalidRequest", f"Invalid notification url='{url}'.")
    if scheme == "http" and not (settings.allow_insecure_loopback and is_loopback_host(parts.hostname)):
        raise GraphError(400, "InvalidRequest",
                         f"Invalid notification url='{url}'. The {field_name} must use the https scheme.")
    return url.strip()


def with_query(url: str, name: str, encoded_value: str) -> str:
    """Appends `name=<already encoded value>` and keeps the URL's own query string."""
    parts = urlsplit(url)
    query = f"{parts.query}&{name}={encoded_value}" if parts.query else f"{name}={encoded_value}"
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


def redact(url: str) -> str:
    """Hides Azure Functions keys (`code=`) before a URL reaches the delivery log."""
    parts = urlsplit(url)
    if not parts.query:
        return url
    pairs = [(k, "REDACTED" if k.lower() == "code" else v) for k, v in parse_qsl(parts.query, keep_blank_values=True)]
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(pairs), parts.fragment))


def post(url: str, data: bytes, content_type: str, timeout: float, settings: NotificationSettings) -> Attempt:
    """POSTs without following redirects; a response slower than `timeout` counts as timed out
    even when it eventually arrived (Graph would have given up)."""
    parts = urlsplit(url)
    started = time.monotonic()
    with requests.Session() as session:
        # Environment proxies and CA bundles must not reroute loopback calls.
        session.trust_env = not is_loopback_host(parts.hostname)
        verify: bool | str = settings.delivery_ca or True
        try:
            response = session.post(url, data=data, timeout=(timeout, timeout), allow_redirects=False,
                                    verify=verify, headers={"Content-Type": content_type, "User-Agent": USER_AGENT})
        except requests.Timeout as exc:
            return Attempt(None, "", "", time.monotonic() - started, error=f"timeout: {exc}", timed_out=True)
        except requests.RequestException as exc:
            return Attempt(None, "", "", time.monotonic() - started, error=f"{type(exc).__name__}: {exc}")
    duration = time.monotonic() - started
    return Attempt(response.status_code, response.content.decode("utf-8", errors="replace"), response.headers.get("Content-Type", ""), duration,
                   timed_out=duration > timeout)
