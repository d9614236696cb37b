"""JSON batching: many Graph requests in few round trips.

https://learn.microsoft.com/en-us/graph/json-batching
- at most 20 requests per `POST /$batch`; answers come in any order, matched by `id`;
- `dependsOn` chains run in order and must travel in the same batch, so chunks never split one,
  and a batch is either fully parallel or one sequential chain (Graph refuses mixtures);
- a batch-level 200 says nothing about the items: each carries its own status, and throttled
  items (429 with their own Retry-After) must be retried by the client — SDK retry handlers do
  not. We retry them (and the items that failed only because they depended on them) after the
  longest Retry-After, within the call's wait budget.

Retry safety (graph/retry.py) applies per item and to the batch as a whole: an item answered
503/504 is resent only if it is safe to send twice, and any other 5xx of an unsafe item becomes
OutcomeUnknown. The `POST /$batch` itself is resent after a failure that may have been applied
only when every item in it is safe; otherwise its unsafe items come back as OutcomeUnknown
(and its safe items as ServiceUnavailable, to be sent again later).
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Mapping, Sequence
from urllib.parse import unquote

from graph.errors import (
    GraphError, OutcomeUnknown, ServiceUnavailable, Throttled, error_from_response, header_value,
)
from graph.http import loggable_url
from graph.retry import (
    NOT_APPLIED_STATUSES, RETRYABLE_STATUSES, RetryBudget, is_retry_safe, may_have_been_applied,
    parse_retry_after,
)

if TYPE_CHECKING:
    from graph.client import GraphClient

log = logging.getLogger("roomsync.graph.batch")

MAX_BATCH_SIZE = 20

# Path segments after /users/{mailbox}/ that are served by Outlook (per-mailbox limits apply).
_OUTLOOK_SEGMENTS = frozenset(s.lower() for s in (
    "events", "calendar", "calendars", "calendarView", "calendarGroups", "messages", "mailFolders",
    "contacts", "contactFolders", "mailboxSettings", "findMeetingTimes", "reminderView",
    "translateExchangeIds", "outlook", "inferenceClassification",
))
_USER_PATH = re.compile(r"^/?(?:users|Users)/([^/?]+)/([^/?(]+)")


@dataclass(frozen=True)
class BatchRequest:
    """One request in a batch. `url` is relative to the API version, e.g. "/users/{id}/events".

    `retry_safe` as for GraphClient.request: None decides by method and If-Match, True for a
    POST that carries a transactionId."""
    method: str
    url: str
    body: Any = None
    headers: Mapping[str, str] | None = None
    depends_on: str | None = None
    id: str | None = None
    retry_safe: bool | None = None

    @property
    def safe_to_resend(self) -> bool:
        return is_retry_safe(self.method, self.headers, self.retry_safe)


@dataclass
class BatchResult:
    id: str
    request: BatchRequest
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None
    error: GraphError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def value(self) -> Any:
        """The item's body, or its typed error raised."""
        if self.error is not None:
            raise self.error
        return self.body


def outlook_mailbox(url: str) -> str | None:
    """The mailbox a batch item's URL targets when Outlook serves it, else None."""
    match = _USER_PATH.match(url)
    if not match or match.group(2).lower() not in _OUTLOOK_SEGMENTS:
        return None
    return unquote(match.group(1))


# ---- planning --------------------------------------------------------------------------------

def assign_ids(requests: Sequence[BatchRequest]) -> list[str]:
    ids = [r.id if r.id is not None else str(index + 1) for index, r in enumerate(requests)]
    seen: set[str] = set()
    for item_id in ids:
        if item_id.lower() in seen:  # Graph compares batch ids case-insensitively
            raise ValueError(f"duplicate batch request id {item_id!r}")
        seen.add(item_id.lower())
    position = {item_id.lower(): index for index, item_id in enumerate(ids)}
    for index, request in enumerate(requests):
        if request.depends_on is None:
            continue
        target = position.get(request.depends_on.lower())
        if target is None:
            raise ValueError(f"dependsOn {request.depends_on!r} names no request of the batch")
        if target >= index:
            # A sequential batch runs in request order: a dependency must come first.
            raise ValueError(f"request {ids[index]!r} depends on {request.depends_on!r}, which is not "
                             "an earlier request")
    return ids


def chains(ids: Sequence[str], requests: Sequence[BatchRequest]) -> list[list[int]]:
    """Groups request indexes linked by dependsOn (in either direction), each group in request
    order, groups ordered by their first request."""
    index_of = {item_id.lower(): i for i, item_id in enumerate(ids)}
    parent = list(range(len(ids)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, request in enumerate(requests):
        target = index_of.get(request.depends_on.lower()) if request.depends_on is not None else None
        if target is not None:
            a, b = root(i), root(target)
            if a != b:
                parent[max(a, b)] = min(a, b)
    groups: dict[int, list[int]] = {}
    for i in range(len(ids)):
        groups.setdefault(root(i), []).append(i)
    return sorted(groups.values(), key=lambda g: g[0])


def plan_chunks(groups: Sequence[Sequence[int]], size: int = MAX_BATCH_SIZE) -> list[list[int]]:
    """Packs groups into batches of at most `size`.

    Graph refuses a batch that mixes independent requests with dependsOn chains ("Batch should
    be either fully sequential or fully parallel"), and a second chain in the same batch would
    start without a dependency. So independent requests share parallel batches, and every chain
    travels alone in a sequential batch."""
    chunks: list[list[int]] = []
    parallel: list[int] = []
    for group in groups:
        if len(group) > size:
            raise ValueError(f"a dependsOn chain of {len(group)} requests does not fit one batch "
                             f"of {size}")
        if len(group) > 1:
            chunks.append(sorted(group))
            continue
        parallel.extend(group)
        if len(parallel) == size:
            chunks.append(parallel)
            parallel = []
    if parallel:
        chunks.append(parallel)
    return sorted(chunks, key=lambda chunk: chunk[0])


# ---- running ---------------------------------------------------------------------------------

def _wire(item_id: str, request: BatchRequest, depends_on: str | None) -> dict:
    entry: dict[str, Any] = {"id": item_id, "method": request.method.upper(), "url": request.url}
    headers = dict(request.headers or {})
    if request.body is not None:
        entry["body"] = request.body
        if not any(k.lower() == "content-type" for k in headers):
            headers["Content-Type"] = "application/json"  # required whenever a body is present
    if headers:
        entry["headers"] = headers
    if depends_on is not None:
        entry["dependsOn"] = [depends_on]
    return entry


class BatchRunner:
    """Runs a list of requests as batches and returns one result per request, in request order."""

    def __init__(self, client: "GraphClient", max_retry_wait: float | None = None) -> None:
        self.client = client
        self.max_retry_wait = client.config.max_retry_wait if max_retry_wait is None else max_retry_wait
        self.batches_sent = 0

    def run(self, requests: Sequence[BatchRequest]) -> list[BatchResult]:
        ids = assign_ids(requests)
        results: dict[int, BatchResult] = {}
        pending = list(range(len(requests)))
        budget = RetryBudget(self.max_retry_wait)
        rounds = 0
        while pending:
            rounds += 1
            self._send_round(ids, requests, pending, results)
            retry = self._to_retry(ids, requests, pending, results)
            if not retry:
                break
            retry_afters = [parse_retry_after(header_value(results[i].headers, "Retry-After"), self.client.clock())
                            for i in retry if results[i].status in RETRYABLE_STATUSES]
            known = [value for value in retry_afters if value]
            wait = max(known) if known else self.client.backoff.delay(rounds)
            if not budget.allows(wait):
                log.warning("batch: %d items still throttled after %d rounds; retry budget spent",
                            len(retry), rounds)
                for i in retry:
                    error = results[i].error
                    if isinstance(error, Throttled):
                        error.retry_after = max(error.retry_after, wait)
                    else:  # a 424 whose dependency is still throttled: it is throttled too
                        results[i].error = Throttled(results[i].status, "FailedDependency",
                                                     "depends on a request that is still throttled",
                                                     retry_after=wait)
                break
            log.info("batch: retrying %d throttled items in %.2f s (round %d)", len(retry), wait, rounds + 1)
            budget.spend(wait)
            self.client.sleep(wait)
            pending = retry
        return [results[i] for i in range(len(requests))]

    def _send_round(self, ids: Sequence[str], requests: Sequence[BatchRequest], pending: Sequence[int],
                    results: dict[int, BatchResult]) -> None:
        pending_set = set(pending)
        index_of = {item_id.lower(): i for i, item_id in enumerate(ids)}
        sub_requests = [requests[i] for i in pending]
        sub_ids = [ids[i] for i in pending]
        groups = chains(sub_ids, sub_requests)
        chain_of = {pending[k]: g for g, group in enumerate(groups) for k in group}
        for chunk in plan_chunks(groups):
            members = [pending[k] for k in chunk]
            wire = []
            for i in members:
                request = requests[i]
                depends = request.depends_on
                # A dependency that already succeeded in an earlier round is not resent.
                if depends is not None and index_of[depends.lower()] not in pending_set:
                    depends = None
                wire.append(_wire(ids[i], request, depends))
            self._send_chunk(ids, requests, members, wire, results, chain_of)

    def _send_chunk(self, ids: Sequence[str], requests: Sequence[BatchRequest], members: list[int],
                    wire: list[dict], results: dict[int, BatchResult], chain_of: Mapping[int, int]) -> None:
        # Graph runs at most 4 items of a batch against Outlook at once and a dependsOn chain one
        # item at a time, so a chunk needs one slot per chain touching a mailbox (the limiter
        # clips that to the mailbox limit).
        chains_per_mailbox: dict[tuple[str, str], set[int]] = {}
        for i in members:
            mailbox = outlook_mailbox(requests[i].url)
            if mailbox:
                chains_per_mailbox.setdefault(self.client.mailbox_key(mailbox), set()).add(chain_of[i])
        claim = {key: len(found) for key, found in chains_per_mailbox.items()}
        whole_batch_safe = all(requests[i].safe_to_resend for i in members)
        self.batches_sent += 1
        try:
            reply = self.client.request("POST", "/$batch", json={"requests": wire}, mailbox_slots=claim,
                                        retry_safe=whole_batch_safe)
        except OutcomeUnknown as unknown:
            log.warning("batch: a batch of %d requests may or may not have been applied (%s)", len(members),
                        unknown.cause)
            for i in members:
                results[i] = BatchResult(ids[i], requests[i], unknown.status, error=_unanswered(requests[i], unknown))
            return
        answers = {str(a.get("id", "")).lower(): a for a in (reply.json().get("responses") or [])
                   if isinstance(a, dict)}
        for i in members:
            answer = answers.get(ids[i].lower())
            if answer is None:
                results[i] = BatchResult(ids[i], requests[i], 0, error=GraphError(
                    0, "MissingBatchResponse", "the batch answer has no response for this request"))
                continue
            status = int(answer.get("status") or 0)
            headers = {str(k): str(v) for k, v in (answer.get("headers") or {}).items()}
            body = answer.get("body")
            error = None
            if status >= 400 or status == 0:
                retry_after = parse_retry_after(header_value(headers, "Retry-After"), self.client.clock())
                error = error_from_response(status, body, headers, retry_after=retry_after)
                if may_have_been_applied(status) and not requests[i].safe_to_resend:
                    error = OutcomeUnknown(requests[i].method.upper(), loggable_url(requests[i].url),
                                           f"Graph answered {status} {error.code}", status=status,
                                           retry_after=retry_after or 0.0, request_id=error.request_id,
                                           client_request_id=error.client_request_id)
            results[i] = BatchResult(ids[i], requests[i], status, headers, body, error)

    @staticmethod
    def _to_retry(ids: Sequence[str], requests: Sequence[BatchRequest], pending: Sequence[int],
                  results: dict[int, BatchResult]) -> list[int]:
        """Throttled items and 503/504 items that are safe to resend, plus items that failed with
        424 because something they depend on is being retried."""
        index_of = {item_id.lower(): i for i, item_id in enumerate(ids)}
        retry = {i for i in pending if results[i].status in NOT_APPLIED_STATUSES or (
            results[i].status in RETRYABLE_STATUSES and requests[i].safe_to_resend) or _batch_unanswered(results[i])}
        changed = True
        while changed:
            changed = False
            for i in pending:
                depends = requests[i].depends_on
                if (i not in retry and results[i].status == 424 and depends is not None
                        and index_of[depends.lower()] in retry):
                    retry.add(i)
                    changed = True
        return sorted(retry)


_UNANSWERED = "BatchOutcomeUnknown"


def _batch_unanswered(result: BatchResult) -> bool:
    return isinstance(result.error, ServiceUnavailable) and result.error.code == _UNANSWERED


def _unanswered(request: BatchRequest, unknown: OutcomeUnknown) -> GraphError:
    """The result of an item whose whole batch may or may not have been applied."""
    if request.safe_to_resend:
        return ServiceUnavailable(unknown.status, _UNANSWERED, "the batch it travelled in got no "
                                  "usable answer; send it again", retry_after=unknown.retry_after,
                                  client_request_id=unknown.client_request_id)
    return OutcomeUnknown(request.method.upper(), loggable_url(request.url),
                          f"its $batch request failed ({unknown.cause})", status=unknown.status,
                          retry_after=unknown.retry_after, request_id=unknown.request_id,
                          client_request_id=unknown.client_request_id)


def run_batch(client: "GraphClient", requests: Sequence[BatchRequest],
              max_retry_wait: float | None = None) -> list[BatchResult]:
    """Sends `requests` in batches of up to 20 and returns their results in request order."""
    return BatchRunner(client, max_retry_wait).run(requests)
