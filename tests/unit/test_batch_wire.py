"""The hand-written `$batch` wire format: what the encoder writes for each operation kind, how
recorded answers are read, and that a transaction travels through the client's own pipeline
(credential, retries, transport) without a storage emulator."""
from __future__ import annotations

import io
import json
import re
import uuid
from datetime import datetime, timezone
from enum import Enum

import pytest
import requests
import urllib3
from azure.core import MatchConditions
from azure.core.credentials import AccessToken
from azure.core.pipeline.transport import RequestsTransport
from azure.data.tables import EdmType, EntityProperty, TableClient, TableEntity, TableServiceClient, UpdateMode
from azure.data.tables._serialize import _add_entity_properties
from requests.adapters import HTTPAdapter

from sync.store import ConflictError, Table, TransactionConflictError, TransactionError
from sync.store.batch_wire import TransactionRefused, encode_transaction, parse_multipart, read_outcome
from tests.support.tables import row

ENDPOINT = "https://acct.table.core.windows.net"
BATCH_ID = "11111111-2222-3333-4444-555555555555"
CHANGESET_ID = "66666666-7777-8888-9999-000000000000"
ETAG = "W/\"datetime'2024-05-01T10%3A00%3A00.1234567Z'\""


def encode(*operations, cosmos: bool = False) -> bytes:
    return encode_transaction(ENDPOINT, "people", operations, cosmos=cosmos,
                              batch_id=BATCH_ID, changeset_id=CHANGESET_ID).body


class Part:
    """One operation of an encoded body, read back with nothing but string splitting."""

    def __init__(self, mime_headers: dict, method: str, url: str, version: str, headers: dict, body: bytes):
        self.mime_headers, self.method, self.url, self.version = mime_headers, method, url, version
        self.headers, self.body = headers, body


def _headers(lines: list[bytes]) -> dict:
    found = {}
    for line in lines:
        name, value = line.decode("ascii").split(": ", 1)
        assert name not in found, f"header {name} twice"
        found[name] = value
    return found


def operations_in(body: bytes) -> list[Part]:
    """Check the batch/changeset framing strictly and return the operation parts."""
    batch, changeset = f"batch_{BATCH_ID}".encode(), f"changeset_{CHANGESET_ID}".encode()
    assert body.startswith(b"--" + batch + b"\r\n")
    assert body.endswith(b"--" + changeset + b"--\r\n--" + batch + b"--\r\n")
    inner = body[len(b"--" + batch + b"\r\n"):-len(b"--" + batch + b"--\r\n")]
    head, _, changes = inner.partition(b"\r\n\r\n")
    assert head == b"Content-Type: multipart/mixed; boundary=" + changeset
    pieces = changes.split(b"--" + changeset)
    assert pieces[0] == b"" and pieces[-1] == b"--\r\n"
    parts = []
    for piece in pieces[1:-1]:
        assert piece.startswith(b"\r\n") and piece.endswith(b"\r\n")
        mime_head, _, http = piece[2:].partition(b"\r\n\r\n")
        request_head, _, content = http.partition(b"\r\n\r\n")
        request_line, *header_lines = request_head.split(b"\r\n")
        method, url, version = request_line.decode("ascii").split(" ")
        parts.append(Part(_headers(mime_head.split(b"\r\n")), method, url, version,
                          _headers(header_lines), content[:-2] if content.endswith(b"\r\n") else content))
    return parts


# --- encoding ------------------------------------------------------------------------------------

def test_lines_end_in_crlf_and_each_part_is_a_binary_http_request_numbered_in_order():
    body = encode(("create", row(rk="a")), ("delete", row(rk="b")), ("upsert", row(rk="c")))
    assert b"\n" not in body.replace(b"\r\n", b"")
    parts = operations_in(body)
    assert [part.mime_headers for part in parts] == [
        {"Content-Type": "application/http", "Content-Transfer-Encoding": "binary", "Content-ID": str(n)}
        for n in range(3)]
    assert {part.version for part in parts} == {"HTTP/1.1"}
    for part in parts:
        assert part.headers["Accept"] == "application/json;odata=minimalmetadata"
        assert part.headers["Prefer"] == "return-no-content"
        assert part.headers["DataServiceVersion"] == "3.0"


def test_create_posts_to_the_table_without_a_condition():
    entity = row("p", "a", Seats=4, Name="Room A")
    [part] = operations_in(encode(("create", entity)))
    assert (part.method, part.url) == ("POST", f"{ENDPOINT}/people")
    assert "If-Match" not in part.headers
    assert part.headers["Content-Type"] == "application/json"
    assert int(part.headers["Content-Length"]) == len(part.body)
    assert json.loads(part.body) == _add_entity_properties(entity)


@pytest.mark.parametrize("options, method", [
    ({}, "MERGE"),
    ({"mode": UpdateMode.MERGE}, "MERGE"),
    ({"mode": "merge"}, "MERGE"),
    ({"mode": UpdateMode.REPLACE}, "PUT"),
    ({"mode": "replace"}, "PUT"),
])
def test_upsert_merges_or_replaces_without_if_match_so_a_missing_row_is_inserted(options, method):
    [part] = operations_in(encode(("upsert", row("p", "a", Seats=4), options)))
    assert (part.method, part.url) == (method, f"{ENDPOINT}/people(PartitionKey='p',RowKey='a')")
    assert "If-Match" not in part.headers
    assert json.loads(part.body) == _add_entity_properties(row("p", "a", Seats=4))


@pytest.mark.parametrize("options, method, if_match", [
    ({"etag": ETAG, "match_condition": MatchConditions.IfNotModified}, "MERGE", ETAG),
    ({"etag": ETAG}, "MERGE", ETAG),
    ({"etag": ETAG, "mode": UpdateMode.REPLACE}, "PUT", ETAG),
    ({"etag": "0x8D9", "match_condition": MatchConditions.IfNotModified}, "MERGE", '"0x8D9"'),
    ({}, "MERGE", "*"),
    ({"mode": UpdateMode.REPLACE}, "PUT", "*"),
    ({"match_condition": MatchConditions.Unconditionally}, "MERGE", "*"),
])
def test_update_is_conditional_on_the_etag_or_on_the_row_existing(options, method, if_match):
    [part] = operations_in(encode(("update", row("p", "a", Seats=5), options)))
    assert (part.method, part.url) == (method, f"{ENDPOINT}/people(PartitionKey='p',RowKey='a')")
    assert part.headers["If-Match"] == if_match


def test_update_if_not_modified_takes_the_etag_the_row_was_read_with():
    entity = TableEntity(row("p", "a", Seats=5))
    entity._metadata = {"etag": ETAG, "timestamp": None}
    [part] = operations_in(encode(("update", entity, {"match_condition": MatchConditions.IfNotModified})))
    assert part.headers["If-Match"] == ETAG


@pytest.mark.parametrize("options, if_match", [({"etag": ETAG}, ETAG), ({}, "*")])
def test_delete_sends_no_body_and_if_match(options, if_match):
    [part] = operations_in(encode(("delete", row("p", "a", Ignored="x"), options)))
    assert (part.method, part.url) == ("DELETE", f"{ENDPOINT}/people(PartitionKey='p',RowKey='a')")
    assert part.headers["If-Match"] == if_match
    assert "Content-Type" not in part.headers and "Content-Length" not in part.headers
    assert part.body == b""


def test_keys_are_odata_quoted_then_percent_encoded():
    entity = row("O'Brien's", "日本 é+=&'", Name="x")
    parts = operations_in(encode(("upsert", entity), ("delete", row("O'Brien's", "z"))))
    assert parts[0].url == (f"{ENDPOINT}/people(PartitionKey='O%27%27Brien%27%27s',"
                            "RowKey='%E6%97%A5%E6%9C%AC%20%C3%A9%2B%3D%26%27%27')")
    assert parts[1].url == f"{ENDPOINT}/people(PartitionKey='O%27%27Brien%27%27s',RowKey='z')"
    assert json.loads(parts[0].body)["RowKey"] == "日本 é+=&'"  # the body carries the key as it is
    assert parts[0].body.isascii()


def test_bodies_are_the_sdks_own_serialization_of_every_edm_type():
    class Colour(Enum):
        RED = "red"

    guid = uuid.UUID("12345678-1234-5678-1234-567812345678")
    entity = row(
        Big=EntityProperty(2**40, EdmType.INT64), Small=7, Ratio=0.25, Nan=float("nan"), Flag=False,
        When=datetime(2024, 2, 29, 12, 30, 1, 250000, tzinfo=timezone.utc), Blob=b"\x00\xff\x10",
        Id=guid, Name="Zoë", Colour=Colour.RED, Missing=None,
        TypedBool=EntityProperty(True, EdmType.BOOLEAN), TypedText=EntityProperty("12", EdmType.STRING))
    [part] = operations_in(encode(("upsert", entity, {"mode": UpdateMode.REPLACE})))
    sent = json.loads(part.body)
    assert sent == json.loads(json.dumps(_add_entity_properties(entity)))
    assert (sent["Big"], sent["Big@odata.type"]) == ("1099511627776", "Edm.Int64")
    assert (sent["When"], sent["When@odata.type"]) == ("2024-02-29T12:30:01.250000Z", "Edm.DateTime")
    assert (sent["Blob"], sent["Blob@odata.type"]) == ("AP8Q", "Edm.Binary")
    assert (sent["Id"], sent["Id@odata.type"]) == (str(guid), "Edm.Guid")
    assert (sent["Nan"], sent["Nan@odata.type"]) == ("NaN", "Edm.Double")
    assert sent["Flag"] is False and "Flag@odata.type" not in sent
    assert sent["Small"] == 7 and "Small@odata.type" not in sent
    assert "Missing" not in sent


def test_values_the_sdk_cannot_type_are_refused_the_same_way():
    with pytest.raises(TypeError):
        encode(("upsert", row(Huge=2**40)))  # an int32 by default, as in the SDK
    with pytest.raises(TypeError):
        encode(("upsert", row(Things=[1, 2])))


def test_cosmos_merges_go_as_post_with_an_override_header():
    parts = operations_in(encode(("upsert", row(rk="a")), ("update", row(rk="b"), {"etag": ETAG}),
                                 ("upsert", row(rk="c"), {"mode": UpdateMode.REPLACE}), cosmos=True))
    assert [(p.method, p.headers.get("X-HTTP-Method")) for p in parts] == [
        ("POST", "MERGE"), ("POST", "MERGE"), ("PUT", None)]
    assert parts[0].url == f"{ENDPOINT}/people(PartitionKey='p',RowKey='a')"


@pytest.mark.parametrize("operation, message", [
    (("insert", row()), "unknown transaction operation"),
    (("upsert", row(), {"etag": ETAG}), "do not apply"),
    (("create", row(), {"mode": UpdateMode.MERGE}), "do not apply"),
    (("upsert", row(), {"mode": "patch"}), "mode must be"),
    (("update", row(), {"etag": 'W/"x"\r\nX-Evil: 1'}), "printable ASCII"),
    (("update", row(), {"match_condition": MatchConditions.IfNotModified}), "needs an etag"),
    (("update", row(), {"etag": ETAG, "match_condition": MatchConditions.Unconditionally}), "no sense"),
    (("delete", row(), {"match_condition": MatchConditions.IfModified}), "unsupported match condition"),
    (("delete",), "must be"),
])
def test_operations_the_encoder_cannot_express_are_refused(operation, message):
    with pytest.raises(ValueError, match=message):
        encode(operation)


def test_a_transaction_needs_an_operation_and_gets_fresh_boundaries():
    with pytest.raises(ValueError):
        encode_transaction(ENDPOINT, "people", [])
    first = encode_transaction(ENDPOINT, "people", [("upsert", row())])
    second = encode_transaction(ENDPOINT, "people", [("upsert", row())])
    assert first.content_type != second.content_type
    boundary = first.content_type.split("boundary=")[1]
    assert re.fullmatch(r"batch_[0-9a-f-]{36}", boundary) and first.body.startswith(f"--{boundary}\r\n".encode())


# --- reading answers ------------------------------------------------------------------------------

# An answer recorded from Azurite: create (201, with Prefer honoured it would be 204), replace, delete.
RECORDED_SUCCESS = (
    "--batchresponse_5e2f\r\n"
    "Content-Type: multipart/mixed; boundary=changesetresponse_9a1c\r\n"
    "\r\n"
    "--changesetresponse_9a1c\r\n"
    "Content-Type: application/http\r\n"
    "Content-Transfer-Encoding: binary\r\n"
    "\r\n"
    "HTTP/1.1 201 Created\r\n"
    "X-Content-Type-Options: nosniff\r\n"
    "Cache-Control: no-cache\r\n"
    "DataServiceVersion: 3.0;\r\n"
    "Location: http://127.0.0.1:10002/devstoreaccount1/people(PartitionKey='p',RowKey='a')\r\n"
    "ETag: W/\"datetime'2026-11-25T20%3A18%3A43.6781318Z'\"\r\n"
    "\r\n"
    "\r\n"
    "--changesetresponse_9a1c\r\n"
    "Content-Type: application/http\r\n"
    "Content-Transfer-Encoding: binary\r\n"
    "\r\n"
    "HTTP/1.1 204 No Content\r\n"
    "X-Content-Type-Options: nosniff\r\n"
    "Cache-Control: no-cache\r\n"
    "DataServiceVersion: 3.0;\r\n"
    "ETag: W/\"datetime'2026-11-25T20%3A18%3A43.6781336Z'\"\r\n"
    "\r\n"
    "\r\n"
    "--changesetresponse_9a1c\r\n"
    "Content-Type: application/http\r\n"
    "Content-Transfer-Encoding: binary\r\n"
    "\r\n"
    "HTTP/1.1 204 No Content\r\n"
    "X-Content-Type-Options: nosniff\r\n"
    "Cache-Control: no-cache\r\n"
    "DataServiceVersion: 1.0;\r\n"
    "\r\n"
    "\r\n"
    "--changesetresponse_9a1c--\r\n"
    "--batchresponse_5e2f--\r\n"
).encode()
SUCCESS_HEADERS = {"content-type": "multipart/mixed; boundary=batchresponse_5e2f"}

# A refusal as recorded from Azurite: one part, the failing operation's index before the message.
RECORDED_FAILURE = (
    "--batchresponse_0acb\r\n"
    "Content-Type: multipart/mixed; boundary=changesetresponse_27a4\r\n"
    "\r\n"
    "--changesetresponse_27a4\r\n"
    "Content-Type: application/http\r\n"
    "Content-Transfer-Encoding: binary\r\n"
    "\r\n"
    "HTTP/1.1 412 Precondition Failed\r\n"
    "Content-ID: 2\r\n"
    "DataServiceVersion: 3.0;\r\n"
    "Content-Type: application/json;odata=minimalmetadata;charset=utf-8\r\n"
    "\r\n"
    '{"odata.error":{"code":"UpdateConditionNotSatisfied","message":{"lang":"en-US","value":'
    '"1:The update condition specified in the request was not satisfied.\\nRequestId:70e6e1a6\\n'
    'Time:2026-11-25T20:18:43.705Z"}}}\r\n'
    "--changesetresponse_27a4--\r\n"
    "--batchresponse_0acb--\r\n"
).encode()
FAILURE_HEADERS = {"content-type": "multipart/mixed; boundary=batchresponse_0acb"}


def test_a_recorded_success_gives_each_operations_etag_in_order():
    etags = read_outcome(202, SUCCESS_HEADERS, RECORDED_SUCCESS, 3)
    assert etags == ["W/\"datetime'2026-11-25T20%3A18%3A43.6781318Z'\"",
                     "W/\"datetime'2026-11-25T20%3A18%3A43.6781336Z'\"", None]


def test_parts_are_found_with_bare_newlines_and_a_quoted_boundary():
    body = RECORDED_SUCCESS.replace(b"\r\n", b"\n")
    headers = {"content-type": 'multipart/mixed; boundary="batchresponse_5e2f"'}
    parts = parse_multipart(headers["content-type"], body)
    assert [(p.status, p.reason) for p in parts] == [(201, "Created"), (204, "No Content"), (204, "No Content")]
    assert read_outcome(202, headers, body, 3)[1] == "W/\"datetime'2026-11-25T20%3A18%3A43.6781336Z'\""


def test_a_recorded_failure_names_the_operation_status_and_code():
    with pytest.raises(TransactionRefused) as caught:
        read_outcome(202, FAILURE_HEADERS, RECORDED_FAILURE, 2)
    refusal = caught.value
    assert (refusal.scope, refusal.status, refusal.code, refusal.index) == (
        TransactionRefused.OPERATION, 412, "UpdateConditionNotSatisfied", 1)
    assert refusal.message == "The update condition specified in the request was not satisfied."


def test_a_failure_without_an_index_or_in_xml_is_still_read():
    xml = (b'<?xml version="1.0" encoding="utf-8"?><error xmlns="http://schemas.microsoft.com/ado/2007/08/'
           b'dataservices/metadata"><code>InvalidInput</code><message xml:lang="en-US">Bad Request - Error in'
           b' query syntax.\nRequestId:1</message></error>')
    body = RECORDED_FAILURE.split(b"HTTP/1.1")[0] + (
        b"HTTP/1.1 400 Bad Request\r\nContent-Type: application/xml\r\n\r\n" + xml +
        b"\r\n--changesetresponse_27a4--\r\n--batchresponse_0acb--\r\n")
    with pytest.raises(TransactionRefused) as caught:
        read_outcome(202, FAILURE_HEADERS, body, 2)
    assert (caught.value.status, caught.value.code, caught.value.index) == (400, "InvalidInput", None)
    assert caught.value.message == "Bad Request - Error in query syntax."


def test_an_answer_that_is_not_a_transaction_answer_is_unreadable_not_a_refusal():
    cases = [
        ({"content-type": "application/json"}, b"{}", 1),
        (SUCCESS_HEADERS, RECORDED_SUCCESS, 2),  # three answers for two operations
        (SUCCESS_HEADERS, RECORDED_SUCCESS.replace(b"HTTP/1.1 204", b"HTTP?204"), 3),
    ]
    for headers, body, operations in cases:
        with pytest.raises(TransactionRefused) as caught:
            read_outcome(202, headers, body, operations)
        assert caught.value.scope == TransactionRefused.UNREADABLE


def test_a_refused_request_and_a_too_large_one():
    error = (b'{"odata.error":{"code":"InvalidInput","message":{"lang":"en-US",'
             b'"value":"One of the inputs is bad.\\nRequestId:1"}}}')
    with pytest.raises(TransactionRefused) as caught:
        read_outcome(400, {"content-type": "application/json"}, error, 1)
    assert (caught.value.scope, caught.value.status, caught.value.code) == (
        TransactionRefused.REQUEST, 400, "InvalidInput")
    assert caught.value.message == "One of the inputs is bad."
    with pytest.raises(TransactionRefused) as caught:
        read_outcome(413, {"x-ms-error-code": "RequestBodyTooLarge"}, b"", 1)
    assert (caught.value.scope, caught.value.status, caught.value.code) == (
        TransactionRefused.OPERATION, 413, "RequestBodyTooLarge")


# --- through the client's pipeline, with canned answers ------------------------------------------

class CannedAdapter(HTTPAdapter):
    """Answers each request with the next canned (status, headers, body) and keeps what was sent."""

    def __init__(self, answers: list[tuple[int, dict, bytes]]) -> None:
        super().__init__()
        self.answers = list(answers)
        self.sent: list[requests.PreparedRequest] = []

    def send(self, request, **kwargs):
        self.sent.append(request)
        status, headers, body = self.answers.pop(0)
        raw = urllib3.HTTPResponse(body=io.BytesIO(body), headers=headers, status=status,
                                   preload_content=False, decode_content=False)
        return self.build_response(request, raw)


def canned_transport(*answers) -> tuple[RequestsTransport, CannedAdapter]:
    adapter = CannedAdapter(list(answers))
    session = requests.Session()
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return RequestsTransport(session=session, session_owner=False), adapter


def success_for(count: int) -> tuple[int, dict, bytes]:
    part = (b"--cs\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\n"
            b"HTTP/1.1 204 No Content\r\nETag: W/\"datetime'2024-01-01T00%3A00%3A00Z'\"\r\n\r\n")
    body = b"--br\r\nContent-Type: multipart/mixed; boundary=cs\r\n\r\n" + part * count + b"--cs--\r\n--br--\r\n"
    return 202, {"Content-Type": "multipart/mixed; boundary=br"}, body


class FixedToken:
    def __init__(self) -> None:
        self.scopes: list[tuple] = []

    def get_token(self, *scopes, **kwargs):
        self.scopes.append(scopes)
        return AccessToken("token-abc", 4_000_000_000)


def test_a_transaction_with_an_identity_carries_a_bearer_token_and_survives_a_retry():
    transport, adapter = canned_transport(
        (503, {"Content-Type": "application/json"}, b'{"odata.error":{"code":"ServerBusy"}}'), success_for(2))
    credential = FixedToken()
    service = TableServiceClient(ENDPOINT, credential=credential, transport=transport, retry_backoff_factor=0)
    table = Table(service, "people")
    assert table.transact([("upsert", row(rk="a")), ("delete", row(rk="b"), {"etag": ETAG})]) == 1
    assert len(adapter.sent) == 2  # the retry sent the same prepared body again
    first, second = adapter.sent
    assert first.body == second.body
    assert (second.method, second.url) == ("POST", f"{ENDPOINT}/$batch")
    assert second.headers["Authorization"] == "Bearer token-abc"
    assert credential.scopes and credential.scopes[0] == ("https://storage.azure.com/.default",)
    assert second.headers["x-ms-version"] == service.api_version
    assert second.headers["DataServiceVersion"] == "3.0"
    assert second.headers["MaxDataServiceVersion"] == "3.0;NetFx"
    assert second.headers["Accept"] == "application/json"
    boundary = second.headers["Content-Type"].split("boundary=")[1]
    assert second.headers["Content-Type"].startswith("multipart/mixed; boundary=batch_")
    assert second.body.startswith(f"--{boundary}\r\n".encode())
    urls = re.findall(rb"\r\n(MERGE|DELETE) (\S+) HTTP/1.1\r\n", second.body)
    assert urls == [(b"MERGE", f"{ENDPOINT}/people(PartitionKey='p',RowKey='a')".encode()),
                    (b"DELETE", f"{ENDPOINT}/people(PartitionKey='p',RowKey='b')".encode())]


def test_submit_hands_back_the_etags_through_a_real_table_client():
    from sync.store import batch_wire

    transport, _ = canned_transport(success_for(2))
    client = TableClient(ENDPOINT, "people", credential=FixedToken(), transport=transport)
    assert batch_wire.submit(client, [("upsert", row(rk="a")), ("upsert", row(rk="b"))]) == [
        "W/\"datetime'2024-01-01T00%3A00%3A00Z'\""] * 2


def failing(status: int, code: str, message: str) -> tuple[int, dict, bytes]:
    error = json.dumps({"odata.error": {"code": code, "message": {"lang": "en-US", "value": message}}}).encode()
    part = (b"--cs\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\n"
            + f"HTTP/1.1 {status} Whatever\r\nContent-Type: application/json;odata=minimalmetadata\r\n\r\n".encode()
            + error + b"\r\n")
    return 202, {"Content-Type": "multipart/mixed; boundary=br"}, (
        b"--br\r\nContent-Type: multipart/mixed; boundary=cs\r\n\r\n" + part + b"--cs--\r\n--br--\r\n")


def table_answering(*answers) -> Table:
    transport, _ = canned_transport(*answers)
    service = TableServiceClient(ENDPOINT, credential=FixedToken(), transport=transport, retry_total=0)
    return Table(service, "people")


def test_refusals_become_the_store_errors_with_the_callers_index():
    operations = [("upsert", row("p", f"r{n:03}")) for n in range(100)] + [
        ("create", row("p", "x")), ("update", row("p", "y"), {"etag": ETAG})]
    table = table_answering(success_for(100), failing(412, "UpdateConditionNotSatisfied", "1:The condition failed."))
    with pytest.raises(TransactionConflictError) as caught:
        table.transact(operations)
    assert (caught.value.kind, caught.value.index, caught.value.row_key, caught.value.committed) == (
        ConflictError.MODIFIED, 101, "y", 1)

    table = table_answering(failing(409, "EntityAlreadyExists", "0:The specified entity already exists."))
    with pytest.raises(TransactionConflictError) as caught:
        table.transact([("create", row("p", "x")), ("upsert", row("p", "z"))])
    assert (caught.value.kind, caught.value.index, caught.value.status) == (ConflictError.EXISTS, 0, 409)

    table = table_answering(failing(404, "ResourceNotFound", "1:The specified resource does not exist.\nRequestId:9"))
    with pytest.raises(TransactionError) as caught:
        table.transact([("upsert", row("p", "a")), ("update", row("p", "gone"))])
    assert (caught.value.index, caught.value.status, caught.value.code) == (1, 404, "ResourceNotFound")
    assert "The specified resource does not exist. (ResourceNotFound)" in str(caught.value)


def test_a_refused_or_unreadable_request_is_a_transaction_error_without_an_index():
    table = table_answering((413, {"Content-Type": "application/json"}, b""))
    with pytest.raises(TransactionError) as caught:
        table.transact([("upsert", row("p", "a")), ("upsert", row("p", "b"))])
    assert (caught.value.status, caught.value.index) == (413, None)
    assert "too large" in str(caught.value)

    table = table_answering((403, {"x-ms-error-code": "AuthorizationPermissionMismatch"}, b""))
    with pytest.raises(TransactionError, match=r"refused the transaction \(HTTP 403 AuthorizationPermissionMismatch\)"):
        table.transact([("upsert", row("p", "a"))])

    table = table_answering((202, {"Content-Type": "text/plain"}, b"hello"))
    with pytest.raises(TransactionError, match="may have been applied") as caught:
        table.transact([("upsert", row("p", "a"))])
    assert not isinstance(caught.value, ConflictError) and caught.value.index is None
