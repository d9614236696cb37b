"""The Graph HTTP client: auth header, retries, typed errors, logs without secrets.

Implements Graph's client guidance:
- throttling: honour Retry-After on 429/503/504, back off exponentially without it
  (https://learn.microsoft.com/en-us/graph/throttling);
- retry safety: a request that may have been applied is resent only when that is harmless
  (graph/retry.py `is_retry_safe`); otherwise the caller gets OutcomeUnknown and looks it up;
- errors: branch on status and `error.code`; keep request-id/client-request-id for support
  (https://learn.microsoft.com/en-us/graph/errors);
- paging: follow `@odata.nextLink` verbatim (https://learn.microsoft.com/en-us/graph/paging).
"""
from __future__ import annotations

import logging
import random
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Iterator, Mapping
from urllib.parse import urlsplit

import requests
import urllib3

from graph.auth import TokenSource
from graph.concurrency import MailboxLimiter, mailbox_key, shared_limiter
from graph.config import GraphConfig
from graph.errors import GraphError, OutcomeUnknown, ServiceUnavailable, error_from_response
from graph.http import GraphSession, loggable_url
from graph.paging import iter_items, iter_pages
from graph.paths import query_string
from graph.retry import (
    RETRYABLE_STATUSES, Backoff, RetryBudget, Sleeper, is_retry_safe, may_have_been_applied, next_wait,
    parse_retry_after, real_sleep,
)

log = logging.getLogger("roomsync.graph.http")

# A guard against a server that answers "retry after 0" forever.
MAX_ATTEMPTS = 50


@dataclass
class Reply:
    """A successful Graph answer."""
    status: int
    headers: Mapping[str, str]
    body: Any  # decoded JSON, or None for 202/204
    request_id: str | None

    def json(self) -> dict:
        return self.body if isinstance(self.body, dict) else {}


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


class GraphClient:
    """One pooled session for many threads. Pass `mailbox=` on Outlook calls so the per-mailbox
    concurrency limit applies."""

    def __init__(self, config: GraphConfig, tokens: TokenSource, *,
                 session: requests.Session | None = None,
                 sleep: Sleeper = real_sleep,
                 clock: Callable[[], datetime] = _utcnow,
                 backoff: Backoff | None = None,
                 limiter: MailboxLimiter = shared_limiter,
                 limiter_scope: str | None = None) -> None:
        self.config = config
        self.tokens = tokens
        self.session = session or GraphSession(config)
        self.sleep = sleep
        self.clock = clock
        self.backoff = backoff or Backoff(rng=random.random)
        self.limiter = limiter
        self.limiter_scope = limiter_scope or "{}|{}".format(
            getattr(tokens, "tenant_id", ""), getattr(tokens, "client_id", ""))
        api = urlsplit(config.api_base)
        self._api_origin = (api.scheme, api.netloc.lower())

    def __repr__(self) -> str:
        return f"GraphClient(api_base={self.config.api_base!r})"

    def close(self) -> None:
        self.session.close()

    # ---- URLs ---------------------------------------------------------------------------------

    def url(self, path_or_url: str) -> str:
        """An absolute URL. Links Graph handed out (nextLink, deltaLink) are used verbatim, but
        only on the configured Graph host, so the bearer token never goes anywhere else."""
        if path_or_url.startswith(("https://", "http://")):
            parts = urlsplit(path_or_url)
            if (parts.scheme, parts.netloc.lower()) != self._api_origin:
                raise GraphError(0, "ForeignLink", f"refusing to call {parts.scheme}://{parts.netloc}, "
                                 f"which is not the configured Graph host")
            return path_or_url
        if not path_or_url.startswith("/"):
            path_or_url = "/" + path_or_url
        return self.config.api_base + path_or_url

    def mailbox_key(self, mailbox: str) -> tuple[str, str]:
        return mailbox_key(self.limiter_scope, mailbox)

    # ---- requests -----------------------------------------------------------------------------

    def request(self, method: str, path_or_url: str, *, params: Mapping[str, Any] | None = None,
                json: Any = None, headers: Mapping[str, str] | None = None,
                mailbox: str | None = None, retry_safe: bool | None = None,
                max_retry_wait: float | None = None,
                mailbox_slots: Mapping[tuple[str, str], int] | None = None) -> Reply:
        """Sends one logical call, retrying transient failures within the wait budget.

        `retry_safe` says whether the request may be sent again after a failure that leaves open
        whether Graph applied it (a read timeout, a connection dropped after sending, a 5xx).
        By default GET/HEAD/OPTIONS/PUT/DELETE are safe, and PATCH/POST only with an If-Match
        header; pass True for a POST that Graph deduplicates (a transactionId in the body).
        An unsafe request that fails that way raises OutcomeUnknown instead of being resent;
        a 429 and a connection that was never made are retried for every request.
        `mailbox_slots` claims several mailbox slots at once (a $batch); slots are held only
        while the request is on the wire, never while waiting to retry.

        Raises a GraphError subclass for Graph's refusals and a TokenError subclass when Entra
        will not issue a token."""
        method = method.upper()
        url = self.url(path_or_url)
        if params:
            url += ("&" if "?" in url else "?") + query_string(params)
        safe = is_retry_safe(method, headers, retry_safe)
        budget = RetryBudget(self.config.max_retry_wait if max_retry_wait is None else max_retry_wait)
        client_request_id = str(uuid.uuid4())
        claim = dict(mailbox_slots or {})
        if mailbox:
            key = self.mailbox_key(mailbox)
            claim[key] = claim.get(key, 0) + 1
        path = loggable_url(url)
        call = f"{method} {path}"
        retries = 0
        refreshed = False
        for _ in range(MAX_ATTEMPTS):
            token = self.tokens.token()
            started = time.monotonic()
            try:
                with self.limiter.slots(claim):
                    response = self.session.request(method, url, json=json, headers={
                        "Accept": "application/json",
                        "client-request-id": client_request_id,
                        **(headers or {}),
                        "Authorization": f"Bearer {token}",
                    })
            except requests.exceptions.SSLError as exc:
                # A trust problem (wrong CA bundle, intercepted TLS) never heals by retrying.
                log.warning("%s TLS failure: %s", call, type(exc).__name__)
                raise GraphError(0, "TlsError", "the TLS connection to Graph failed; check the "
                                 "CA bundle setting", client_request_id=client_request_id) from None
            except (requests.ConnectionError, requests.Timeout) as exc:
                if not safe and not _never_sent(exc):
                    log.warning("%s no answer (%s); not resent, the outcome is unknown", call, type(exc).__name__)
                    raise OutcomeUnknown(method, path, f"no answer from Graph ({type(exc).__name__})",
                                         client_request_id=client_request_id) from None
                retries += 1
                wait = self.backoff.delay(retries)
                self._wait_or_raise(budget, wait, f"{call} failed: {type(exc).__name__}", lambda: ServiceUnavailable(
                    0, type(exc).__name__, "Graph could not be reached", retry_after=wait,
                    client_request_id=client_request_id))
                continue

            elapsed_ms = (time.monotonic() - started) * 1000
            request_id = response.headers.get("request-id")
            status = response.status_code
            if status < 400:
                log.debug("%s -> %d request-id=%s %.0f ms", call, status, request_id, elapsed_ms)
                return Reply(status, response.headers, _decode(response), request_id)
            body = _decode(response)
            outcome = f"{call} -> {status} request-id={request_id} {elapsed_ms:.0f} ms"
            if status == 401 and not refreshed:
                log.info("%s; refreshing the token once", outcome)
                self.tokens.invalidate(token)
                refreshed = True
                continue
            if not safe and may_have_been_applied(status):
                error = error_from_response(status, body, response.headers)
                log.warning("%s %s; not resent, the outcome is unknown", outcome, error.code)
                raise OutcomeUnknown(
                    method, path, f"Graph answered {status} {error.code}", status=status,
                    retry_after=parse_retry_after(response.headers.get("Retry-After"), self.clock()) or 0.0,
                    request_id=error.request_id, client_request_id=error.client_request_id or client_request_id)
            if status in RETRYABLE_STATUSES:
                retries += 1
                retry_after = parse_retry_after(response.headers.get("Retry-After"), self.clock())
                # "Retry-After: 0" is read as "no advice": a short backoff, not a busy loop.
                wait = next_wait(retries, retry_after or None, self.backoff)
                self._wait_or_raise(budget, wait, outcome, lambda: error_from_response(
                    status, body, response.headers, retry_after=wait))
                continue
            error = error_from_response(status, body, response.headers)
            log.info("%s %s", outcome, error.code)
            raise error
        raise ServiceUnavailable(0, "TooManyAttempts", f"gave up after {MAX_ATTEMPTS} attempts",
                                 retry_after=self.backoff.cap, client_request_id=client_request_id)

    def _wait_or_raise(self, budget: RetryBudget, wait: float, what: str,
                       give_up: Callable[[], GraphError]) -> None:
        """Sleeps `wait` if the call's budget allows it, else raises the give-up error (which
        carries `wait` as its retry_after)."""
        if not budget.allows(wait):
            log.warning("%s; retry budget spent (%.1f s waited), %.1f s more needed", what, budget.spent, wait)
            raise give_up() from None  # the transport error may quote the URL and its tokens
        log.info("%s; retrying in %.2f s", what, wait)
        budget.spend(wait)
        self.sleep(wait)

    def get(self, path_or_url: str, *, params: Mapping[str, Any] | None = None,
            headers: Mapping[str, str] | None = None, mailbox: str | None = None) -> dict:
        return self.request("GET", path_or_url, params=params, headers=headers, mailbox=mailbox).json()

    def post(self, path_or_url: str, json: Any = None, *, headers: Mapping[str, str] | None = None,
             mailbox: str | None = None, retry_safe: bool | None = None) -> Reply:
        return self.request("POST", path_or_url, json=json, headers=headers, mailbox=mailbox,
                            retry_safe=retry_safe)

    def patch(self, path_or_url: str, json: Any, *, headers: Mapping[str, str] | None = None,
              mailbox: str | None = None, retry_safe: bool | None = None) -> Reply:
        return self.request("PATCH", path_or_url, json=json, headers=headers, mailbox=mailbox,
                            retry_safe=retry_safe)

    def delete(self, path_or_url: str, *, headers: Mapping[str, str] | None = None,
               mailbox: str | None = None) -> Reply:
        return self.request("DELETE", path_or_url, headers=headers, mailbox=mailbox)

    # ---- collections --------------------------------------------------------------------------

    def pages(self, path_or_url: str, *, params: Mapping[str, Any] | None = None,
              headers: Mapping[str, str] | None = None, mailbox: str | None = None) -> Iterator[dict]:
        return iter_pages(self, path_or_url, params=params, headers=headers, mailbox=mailbox)

    def items(self, path_or_url: str, *, params: Mapping[str, Any] | None = None,
              headers: Mapping[str, str] | None = None, mailbox: str | None = None) -> Iterator[dict]:
        return iter_items(self, path_or_url, params=params, headers=headers, mailbox=mailbox)


def _never_sent(exc: Exception) -> bool:
    """True when the connection was never established, so Graph cannot have seen the request."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(reason, urllib3.exceptions.NewConnectionError)


def _decode(response: requests.Response) -> Any:
    if not response.content:
        return None
    content_type = response.headers.get("Content-Type", "")
    if "json" in content_type:
        try:
            return response.json()
        except ValueError:
            pass
    return response.text
