"""Scripted stand-ins for the HTTP session, the token source and the sleeper, so retry,
paging and batch logic run without a network or real waiting."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Callable
from urllib.parse import parse_qs, urlsplit

import requests
from requests.structures import CaseInsensitiveDict

from graph.client import GraphClient
from graph.concurrency import MailboxLimiter
from graph.config import GraphConfig
from graph.retry import Backoff
from tests.support.recording_sleeper import RecordingSleeper

API = "https://graph.test/v1.0"


def response(status: int, body: Any = None, headers: dict[str, str] | None = None) -> requests.Response:
    reply = requests.Response()
    reply.status_code = status
    reply.headers = CaseInsensitiveDict(headers or {})
    if body is not None:
        reply._content = json.dumps(body).encode()
        reply.headers.setdefault("Content-Type", "application/json")
    else:
        reply._content = b""
    reply.headers.setdefault("request-id", f"rid-{status}")
    return reply


def graph_error(status: int, code: str, message: str = "msg", headers: dict[str, str] | None = None) -> requests.Response:
    body = {"error": {"code": code, "message": message,
                      "innerError": {"date": "2024-01-01T00:00:00", "request-id": "inner-rid",
                                     "client-request-id": "inner-crid"}}}
    return response(status, body, headers)


@dataclass
class Sent:
    method: str
    url: str
    headers: dict[str, str]
    json: Any

    @property
    def path(self) -> str:
        return urlsplit(self.url).path

    @property
    def query(self) -> dict[str, list[str]]:
        return parse_qs(urlsplit(self.url).query)


class ScriptedSession:
    """Answers requests from a list of responses/exceptions, or from a handler function."""

    def __init__(self, script: list[Any] | None = None,
                 handler: Callable[[Sent], requests.Response] | None = None) -> None:
        self.script = list(script or [])
        self.handler = handler
        self.sent: list[Sent] = []

    def request(self, method: str, url: str, json: Any = None, headers: dict | None = None, **_: Any):
        sent = Sent(method, url, dict(headers or {}), json)
        self.sent.append(sent)
        if self.handler is not None:
            return self.handler(sent)
        item = self.script.pop(0)
        if isinstance(item, BaseException):
            raise item
        return item

    def close(self) -> None:
        pass


@dataclass
class FakeTokens:
    tokens: list[str] = field(default_factory=lambda: ["token-1", "token-2", "token-3"])
    invalidated: list[str] = field(default_factory=list)
    tenant_id: str = "tenant"
    client_id: str = "app"

    def token(self) -> str:
        return self.tokens[0]

    def invalidate(self, token: str) -> None:
        self.invalidated.append(token)
        if self.tokens and self.tokens[0] == token:
            self.tokens.pop(0)


def make_client(session: ScriptedSession, *, max_retry_wait: float = 30.0, tokens: FakeTokens | None = None,
                limiter: MailboxLimiter | None = None, **kwargs: Any) -> tuple[GraphClient, RecordingSleeper]:
    sleeper = RecordingSleeper()
    config = GraphConfig(authority_host="https://login.test", api_base=API, max_retry_wait=max_retry_wait)
    client = GraphClient(config, tokens or FakeTokens(), session=session, sleep=sleeper,
                         backoff=Backoff(base=0.5, cap=8.0, rng=lambda: 0.5),
                         limiter=limiter or MailboxLimiter(), **kwargs)
    return client, sleeper
