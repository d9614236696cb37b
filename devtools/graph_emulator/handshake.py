"""The validation handshake Graph runs before it creates a subscription (and for a new
notificationUrl on PATCH), for notificationUrl and lifecycleNotificationUrl alike.

Documented contract: POST `<url>?validationToken=<url-encoded token>` with
`Content-Type: text/plain; charset=utf-8`; the endpoint must answer within 10 s with 200,
`text/plain` and exactly the decoded token. The token is readable text with spaces and colons
("Validation: Testing client application reachability for subscription Request-Id: <guid>"), so
an endpoint that echoes it still encoded fails, as it does against Graph.
"""
from __future__ import annotations

from http import HTTPStatus
from urllib.parse import quote_plus

from devtools.graph_emulator import outbound
from devtools.graph_emulator.delivery_log import LogEntry, delivery_log
from devtools.graph_emulator.errors import GraphError
from devtools.graph_emulator.notification_settings import notification_settings
from devtools.graph_emulator.state import World

FAILED = ("Subscription validation request failed. Notification endpoint must respond with 200 OK to "
          "validation request.")
TIMED_OUT = "Subscription validation request timed out."


def validation_token(request_id: str) -> str:
    return f"Validation: Testing client application reachability for subscription Request-Id: {request_id}"


def encode_token(token: str) -> str:
    """Form-style encoding with lower-case escapes (spaces as `+`, `:` as `%3a`), the stricter
    of the encodings seen from .NET services: only a real URL decoder gets the token back."""
    encoded = quote_plus(token, safe="")
    out, index = [], 0
    while index < len(encoded):
        if encoded[index] == "%":
            out.append(encoded[index:index + 3].lower())
            index += 3
        else:
            out.append(encoded[index])
            index += 1
    return "".join(out)


def _status_name(status: int) -> str:
    try:
        return HTTPStatus(status).phrase.replace(" ", "").replace("-", "")
    except ValueError:
        return str(status)


def validate_endpoint(world: World, url: str, tenant_id: str, request_id: str) -> None:
    """Raises Graph's 400 when the endpoint does not pass; never call it holding `world.lock`."""
    settings = notification_settings(world)
    token = validation_token(request_id)
    target = outbound.with_query(url, "validationToken", encode_token(token))
    attempt = outbound.post(target, b"", "text/plain; charset=utf-8", settings.validation_timeout_seconds, settings)
    content_type = attempt.content_type.split(";")[0].strip().lower()
    passed = attempt.ok and attempt.status == 200 and content_type == "text/plain" and attempt.body == token
    delivery_log(world).add(LogEntry(
        time=world.clock.now(), tenant_id=tenant_id, kind="validation", url=outbound.redact(url),
        outcome="validated" if passed else ("timeout" if attempt.timed_out else "rejected"),
        status=attempt.status, duration_ms=round(attempt.duration * 1000), attempt=1, error=attempt.error,
        items=[{"validationToken": token}],
    ))
    if passed:
        return
    if attempt.timed_out:
        raise GraphError(400, "InvalidRequest", TIMED_OUT)
    if attempt.status is not None and attempt.status != 200:
        raise GraphError(400, "ValidationError",
                         f"Subscription validation request failed. HTTP status code is '{_status_name(attempt.status)}'. "
                         "Notification endpoint must respond with 200 OK to validation request.")
    raise GraphError(400, "ValidationError", FAILED)
