"""Typed errors for Graph calls and Entra token requests.

Callers branch on the exception type, never on message text: Graph asks clients to code against
`error.code` and the HTTP status (https://learn.microsoft.com/en-us/graph/errors). Messages
never carry a secret, an access token or a delta/skip token.
"""
from __future__ import annotations

from typing import Any, Mapping

# Codes Graph uses when a delta token can no longer be used; a full resync is needed
# (https://learn.microsoft.com/en-us/graph/delta-query-overview).
DELTA_RESET_CODES = frozenset({"syncstatenotfound", "resyncrequired", "syncstateinvalid"})


class GraphError(Exception):
    """A Graph call failed. `status` is 0 when no HTTP answer was received."""

    def __init__(self, status: int, code: str, message: str, *, request_id: str | None = None,
                 client_request_id: str | None = None, body: Any = None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.request_id = request_id
        self.client_request_id = client_request_id
        self.body = body

    def __str__(self) -> str:
        ids = f" (request-id {self.request_id})" if self.request_id else ""
        return f"{self.status} {self.code}: {self.message}{ids}"


class BadRequest(GraphError):
    """400: the request itself is wrong; retrying the same request never helps."""


class Unauthorized(GraphError):
    """401 even after one token refresh: the token is rejected (InvalidAuthenticationToken)."""


class Forbidden(GraphError):
    """403: a permission is missing (Authorization_RequestDenied, ErrorAccessDenied), an
    application access policy blocks the mailbox, or a quota is exhausted."""


class NotFound(GraphError):
    """404: the item, user or subscription does not exist (any more)."""


class Conflict(GraphError):
    """409 (or 412 for a failed If-Match): the resource changed or already exists."""


class DeltaExpired(GraphError):
    """The delta or sync token is no longer valid: start a full round again.

    Graph answers 410 Gone with a `Location` to restart from, or a 40x with code
    syncStateNotFound / resyncRequired."""

    def __init__(self, *args: Any, location: str | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.location = location


class Throttled(GraphError):
    """Graph kept saying "later" (429, 503, 504, no connection) for longer than the retry budget.

    `retry_after` is the wait in seconds Graph asked for (or our backoff estimate), so a queue
    worker can re-enqueue the message with that delay instead of failing it."""

    def __init__(self, *args: Any, retry_after: float = 0.0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.retry_after = max(0.0, float(retry_after))


class ServiceUnavailable(Throttled):
    """503/504 or a connection failure outlasted the retry budget (a kind of Throttled, so
    workers that re-enqueue on Throttled handle it too)."""


class FailedDependency(GraphError):
    """424 in a JSON batch: the item was skipped because the item it depends on failed."""


class OutcomeUnknown(GraphError):
    """A request that is not safe to send twice failed in a way that leaves open whether Graph
    applied it (no answer after it was sent, the connection dropped, a 5xx), so it was not resent.

    The caller resolves it with a look-up (say, find the event by its extended property or the
    subscription by its notification URL) before deciding to send it again. Carries the method,
    the path (query parameter names only, as in the logs) and a short cause; never the token or
    the body. `retry_after` is Graph's advice when it gave one (a 503's Retry-After), else 0."""

    def __init__(self, method: str, path: str, cause: str, *, status: int = 0, retry_after: float = 0.0,
                 request_id: str | None = None, client_request_id: str | None = None) -> None:
        super().__init__(status, "OutcomeUnknown", f"{method} {path}: {cause}; it may or may not have been "
                         "applied, so it was not resent (look it up before sending it again)",
                         request_id=request_id, client_request_id=client_request_id)
        self.method = method
        self.path = path
        self.cause = cause
        self.retry_after = max(0.0, float(retry_after or 0.0))


_BY_STATUS: dict[int, type[GraphError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    410: DeltaExpired,
    412: Conflict,
    424: FailedDependency,
    429: Throttled,
    503: ServiceUnavailable,
    504: ServiceUnavailable,
}


def _error_codes(error: Mapping[str, Any]) -> list[str]:
    """The top-level code and every nested innerError code (most specific last)."""
    codes: list[str] = []
    node: Any = error
    depth = 0
    while isinstance(node, Mapping) and depth < 8:
        code = node.get("code")
        if isinstance(code, str):
            codes.append(code)
        node = node.get("innerError") or node.get("innererror")
        depth += 1
    return codes


def error_from_response(status: int, body: Any, headers: Mapping[str, str] | None = None,
                        retry_after: float | None = None) -> GraphError:
    """Builds the typed error for a non-2xx Graph answer (a top-level response or a $batch item).

    `body` is the decoded JSON (or text); `headers` is any case-insensitive mapping."""
    headers = headers or {}
    error = body.get("error") if isinstance(body, Mapping) else None
    if not isinstance(error, Mapping):
        error = {}
    codes = _error_codes(error)
    code = codes[0] if codes else f"HTTP{status}"
    message = error.get("message")
    if not isinstance(message, str) or not message:
        message = body.strip()[:300] if isinstance(body, str) and body.strip() else "no error message"
    inner = error.get("innerError") or error.get("innererror") or {}
    if not isinstance(inner, Mapping):
        inner = {}
    request_id = header_value(headers, "request-id") or inner.get("request-id") or inner.get("requestId")
    client_request_id = header_value(headers, "client-request-id") or inner.get("client-request-id")
    common = dict(request_id=request_id, client_request_id=client_request_id, body=body)

    if status == 410 or any(c.lower() in DELTA_RESET_CODES for c in codes):
        return DeltaExpired(status, code, message, location=header_value(headers, "Location"), **common)
    kind = _BY_STATUS.get(status)
    if kind is None:
        kind = ServiceUnavailable if status in (502,) else GraphError
    if issubclass(kind, Throttled):
        return kind(status, code, message, retry_after=retry_after or 0.0, **common)
    return kind(status, code, message, **common)


def header_value(headers: Mapping[str, str], name: str) -> str | None:
    """A header from any mapping, looked up case-insensitively (a $batch item's headers are a
    plain dict)."""
    value = headers.get(name)
    if value is None:
        lowered = name.lower()
        for key, candidate in headers.items():
            if key.lower() == lowered:
                return candidate
    return value


# ---- Entra token errors -----------------------------------------------------------------------

class TokenError(Exception):
    """Entra refused to issue an app-only token. `hint` tells an admin what to do.

    `aadsts` is Entra's numeric error code (e.g. 7000215), when there is one."""

    default_hint = "check the integration's tenant id, client id and credential"

    def __init__(self, message: str, *, aadsts: int | None = None, error: str | None = None,
                 hint: str | None = None, correlation_id: str | None = None,
                 trace_id: str | None = None) -> None:
        self.aadsts = aadsts
        self.error = error
        self.hint = hint or self.default_hint
        self.correlation_id = correlation_id
        self.trace_id = trace_id
        code = f"AADSTS{aadsts}: " if aadsts else ""
        super().__init__(f"{code}{message} — {self.hint}")


class InvalidClientSecret(TokenError):
    default_hint = ("the client secret is wrong: paste the secret's Value (not its Secret ID) from "
                    "the app registration into the integration")


class ClientSecretExpired(TokenError):
    default_hint = "create a new client secret in the app registration and update the integration"


class InvalidClientCertificate(TokenError):
    default_hint = ("the certificate is not registered on the app or has expired: upload the public "
                    "certificate to the app registration and update the integration")


class UnknownApplication(TokenError):
    default_hint = ("check the application (client) id, and that an administrator of this tenant "
                    "installed and consented to the app")


class UnknownTenant(TokenError):
    default_hint = ("check the tenant id or domain, and that the integration points at the right "
                    "cloud (authority host)")


class ConsentMissing(TokenError):
    default_hint = ("an administrator must grant admin consent for the app's application "
                    "permissions in the app registration (API permissions)")

    def __init__(self, message: str, *, missing: frozenset[str] = frozenset(), **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.missing = missing


class ApplicationDisabled(ConsentMissing):
    default_hint = ("the app's service principal is disabled in this tenant: an administrator must "
                    "enable it under Enterprise applications")


class TokenServiceUnavailable(TokenError):
    default_hint = "Entra ID could not be reached or failed; try again later"


_TOKEN_ERRORS: dict[int, type[TokenError]] = {
    7000215: InvalidClientSecret,
    7000222: ClientSecretExpired,
    700027: InvalidClientCertificate,
    700024: InvalidClientCertificate,
    700016: UnknownApplication,
    90002: UnknownTenant,
    50059: UnknownTenant,
    90023: UnknownTenant,
    65001: ConsentMissing,
    500011: ConsentMissing,
    7000112: ApplicationDisabled,
    7000216: InvalidClientSecret,
    7000218: InvalidClientSecret,
}


def token_error_from_result(result: Mapping[str, Any]) -> TokenError:
    """Maps MSAL's error dict (Entra's OAuth error body) to a typed error.

    The first line of `error_description` is Entra's own text (it names the app id or tenant,
    never the secret); trace and correlation ids are kept for a support ticket."""
    codes = result.get("error_codes") or []
    aadsts = codes[0] if codes and isinstance(codes[0], int) else _code_from_description(result)
    description = str(result.get("error_description") or result.get("error") or "token request failed")
    first_line = description.splitlines()[0]
    if aadsts and first_line.startswith(f"AADSTS{aadsts}:"):
        first_line = first_line.split(":", 1)[1].strip()
    kind = _TOKEN_ERRORS.get(aadsts or 0)
    if kind is None:
        kind = TokenServiceUnavailable if result.get("error") == "temporarily_unavailable" else TokenError
    return kind(first_line, aadsts=aadsts, error=result.get("error"),
                correlation_id=result.get("correlation_id"), trace_id=result.get("trace_id"))


def _code_from_description(result: Mapping[str, Any]) -> int | None:
    text = str(result.get("error_description") or "")
    if text.startswith("AADSTS"):
        digits = text[6:].split(":", 1)[0]
        if digits.isdigit():
            return int(digits)
    return None
