"""Typed errors from Graph and Entra bodies as recorded in GRAPH.md (§1.3, §6.1, §6.4)."""
import pytest

from graph.errors import (
    ApplicationDisabled, BadRequest, ClientSecretExpired, Conflict, ConsentMissing, DeltaExpired,
    FailedDependency, Forbidden, GraphError, InvalidClientSecret, NotFound, ServiceUnavailable,
    Throttled, TokenError, TokenServiceUnavailable, Unauthorized, UnknownApplication, UnknownTenant,
    error_from_response, token_error_from_result,
)

THROTTLED_BODY = {"error": {"code": "TooManyRequests", "innerError": {
    "code": "429", "date": "2020-08-18T12:51:51", "message": "Please retry after",
    "request-id": "94fb3b52-452a-4535-a601-69e0a90e3aa2", "status": "429"},
    "message": "Please retry again later."}}


def test_throttled_keeps_retry_after_and_request_id():
    error = error_from_response(429, THROTTLED_BODY, {"Retry-After": "10"}, retry_after=10)
    assert type(error) is Throttled
    assert error.retry_after == 10 and error.code == "TooManyRequests"
    assert error.request_id == "94fb3b52-452a-4535-a601-69e0a90e3aa2"


def test_outlook_mailbox_concurrency_429_is_throttled():
    body = {"error": {"code": "ApplicationThrottled",
                      "message": "Application is over its MailboxConcurrency limit."}}
    assert isinstance(error_from_response(429, body, {}), Throttled)


@pytest.mark.parametrize("status, code, kind", [
    (400, "BadRequest", BadRequest),
    (401, "InvalidAuthenticationToken", Unauthorized),
    (403, "Authorization_RequestDenied", Forbidden),
    (403, "ErrorAccessDenied", Forbidden),
    (404, "ErrorItemNotFound", NotFound),
    (404, "Request_ResourceNotFound", NotFound),
    (404, "MailboxNotEnabledForRESTAPI", NotFound),
    (409, "Conflict", Conflict),
    (412, "ErrorIrresolvableConflict", Conflict),
    (424, "FailedDependency", FailedDependency),
    (503, "ServiceUnavailable", ServiceUnavailable),
    (504, "GatewayTimeout", ServiceUnavailable),
    (500, "InternalServerError", GraphError),
])
def test_status_picks_the_type(status, code, kind):
    error = error_from_response(status, {"error": {"code": code, "message": "m"}}, {"request-id": "r1"})
    assert type(error) is kind
    assert (error.status, error.code, error.message, error.request_id) == (status, code, "m", "r1")


def test_gone_is_delta_expired_with_location():
    error = error_from_response(410, {"error": {"code": "Gone", "message": "expired"}},
                                {"location": "https://graph/v1.0/users/delta?$deltatoken="})
    assert isinstance(error, DeltaExpired)
    assert error.location == "https://graph/v1.0/users/delta?$deltatoken="


@pytest.mark.parametrize("status", [400, 404, 409])
@pytest.mark.parametrize("code", ["syncStateNotFound", "resyncRequired"])
def test_sync_state_codes_are_delta_expired_whatever_the_status(status, code):
    assert isinstance(error_from_response(status, {"error": {"code": code, "message": "m"}}), DeltaExpired)


def test_nested_inner_code_is_found():
    body = {"error": {"code": "BadRequest", "message": "m", "innerError": {
        "code": "x", "innerError": {"code": "SyncStateNotFound"}}}}
    assert isinstance(error_from_response(400, body), DeltaExpired)


def test_ids_fall_back_to_inner_error_and_text_bodies_survive():
    body = {"error": {"code": "X", "message": "m", "innerError": {"request-id": "in", "client-request-id": "c"}}}
    error = error_from_response(500, body, {})
    assert (error.request_id, error.client_request_id) == ("in", "c")
    text = error_from_response(502, "<html>Bad gateway</html>", {})
    assert isinstance(text, ServiceUnavailable) and "Bad gateway" in text.message


# ---- Entra ------------------------------------------------------------------------------------

def _entra(error, code, text):
    return {"error": error, "error_codes": [code],
            "error_description": f"AADSTS{code}: {text}\r\nTrace ID: t\r\nCorrelation ID: c\r\nTimestamp: now",
            "trace_id": "t", "correlation_id": "c", "timestamp": "now",
            "error_uri": f"https://login.microsoftonline.com/error?code={code}"}


@pytest.mark.parametrize("body, kind, hint_words", [
    (_entra("invalid_client", 7000215, "Invalid client secret provided. Ensure the secret being sent in the "
            "request is the client secret value, not the client secret ID, for a secret added to app 'a'."),
     InvalidClientSecret, "Value"),
    (_entra("invalid_client", 7000222, "The provided client secret keys for app 'a' are expired."),
     ClientSecretExpired, "create a new client secret"),
    (_entra("unauthorized_client", 700016, "Application with identifier 'a' was not found in the directory 'd'."),
     UnknownApplication, "client) id"),
    (_entra("invalid_tenant", 90002, "Tenant 'x' not found."), UnknownTenant, "tenant id"),
    (_entra("invalid_grant", 65001, "The user or administrator has not consented to use the application."),
     ConsentMissing, "admin consent"),
    (_entra("unauthorized_client", 7000112, "Application 'a' is disabled."), ApplicationDisabled, "enable"),
    (_entra("temporarily_unavailable", 90033, "A transient error has occurred."), TokenServiceUnavailable, "later"),
    (_entra("invalid_scope", 70011, "The provided value for scope is not valid."), TokenError, "check"),
])
def test_entra_bodies_map_to_actionable_errors(body, kind, hint_words):
    error = token_error_from_result(body)
    assert type(error) is kind
    assert error.aadsts == body["error_codes"][0]
    assert hint_words in error.hint and error.hint in str(error)
    assert f"AADSTS{error.aadsts}" in str(error)
    assert "Trace ID" not in str(error)
    assert (error.correlation_id, error.trace_id) == ("c", "t")


def test_code_read_from_description_when_codes_are_missing():
    error = token_error_from_result({"error": "invalid_client", "error_description": "AADSTS7000222: expired"})
    assert isinstance(error, ClientSecretExpired) and error.aadsts == 7000222
