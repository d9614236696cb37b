"""Entity-group transactions written and read by hand, sent through the SDK's own pipeline.

azure-data-tables builds a transaction as one HttpRequest per operation and has azure-core
turn them into a multipart body with the `email` package, then parses the answer the same
way; for a 100-operation transaction that costs tens of milliseconds of CPU. The `$batch`
format is small and fixed (one batch holding one changeset of `application/http` parts, see
the "Performing entity group transactions" page of the Table service REST reference), so this
module writes the body as bytes and splits the response itself.

What stays the SDK's: entity serialization (`_add_entity_properties`, so every Edm type is
annotated exactly as `submit_transaction` would), and the client's HTTP pipeline, so
authentication (SharedKey, SAS credential or bearer token), retries, logging and transport are
unchanged.

`submit(client, operations)` takes operations in the SDK's shape (`("upsert", entity,
{"mode": UpdateMode.REPLACE})`, ...) and returns one new ETag per operation (None for a
delete), or raises `TransactionRefused` carrying the service's status, code and message.
Merges are sent as MERGE (PATCH is what the SDK sends; the service takes both).
"""
from __future__ import annotations

import json
import re
import uuid
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence
from urllib.parse import quote

from azure.core import MatchConditions
from azure.core.rest import HttpRequest
from azure.core.serialization import AzureJSONEncoder
from azure.data.tables import TableEntity, UpdateMode
from azure.data.tables._serialize import _add_entity_properties  # the SDK's own entity serializer

_CRLF = b"\r\n"
_JSON = AzureJSONEncoder(separators=(",", ":"))  # what HttpRequest(json=...) uses, without the padding
_OPERATION_INDEX = re.compile(r"^(\d+):")
_STATUS_LINE = re.compile(rb"^HTTP/\d(?:\.\d)?\s+(\d{3})(?:\s+(.*))?$")
_BOUNDARY = re.compile(r'boundary\s*=\s*(?:"([^"]+)"|([^;\s]+))', re.IGNORECASE)

OPTIONS_BY_KIND: Mapping[str, frozenset[str]] = {
    "create": frozenset(),
    "upsert": frozenset({"mode"}),
    "update": frozenset({"mode", "etag", "match_condition"}),
    "delete": frozenset({"etag", "match_condition"}),
}
"""The operation kinds of a transaction and the SDK options each one takes."""

_PART_HEADERS = b"Content-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n"
_COMMON_HEADERS = (b"Accept: application/json;odata=minimalmetadata\r\n"
                   b"Prefer: return-no-content\r\n"
                   b"DataServiceVersion: 3.0\r\n")


class TransactionRefused(Exception):
    """The transaction did not go through.

    `status`, `code` and `message` are the service's (the message is the first line of its
    text, without the "<index>:" prefix). `index` is the failing operation's position in the
    transaction when the service named one. `scope` says what failed:

    - OPERATION: an operation was refused (or the request was too large, 413); nothing was applied.
    - REQUEST: the `$batch` request itself was refused (not 202 Accepted); nothing was applied.
    - UNREADABLE: the service accepted the request (202) but its answer could not be read, so
      whether the transaction was applied is unknown.
    """

    OPERATION = "operation"
    REQUEST = "request"
    UNREADABLE = "unreadable"

    def __init__(self, status: int | None, code: str | None, message: str, *, index: int | None = None,
                 scope: str = OPERATION) -> None:
        super().__init__(f"{scope}: HTTP {status} {code or '-'}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.index = index
        self.scope = scope


@dataclass(frozen=True)
class PartResponse:
    """One HTTP response found inside a multipart answer."""

    status: int
    reason: str
    headers: Mapping[str, str]
    """Header names lower-cased."""
    body: bytes


@dataclass(frozen=True)
class EncodedTransaction:
    body: bytes
    content_type: str
    operations: int


# --- request -----------------------------------------------------------------------------------

def encode_transaction(endpoint: str, table: str, operations: Iterable[Sequence[Any]], *,
                       cosmos: bool = False, batch_id: str | None = None,
                       changeset_id: str | None = None) -> EncodedTransaction:
    """The `$batch` body for `operations`, and the Content-Type that names its boundary.

    `endpoint` is the account URL without a trailing slash (`https://acct.table.core.windows.net`
    or `http://127.0.0.1:10002/devstoreaccount1`); entity URLs inside the body are absolute.
    `cosmos=True` sends merges as POST with `X-HTTP-Method: MERGE`, as the SDK does for Cosmos DB.
    The ids default to fresh UUIDs; tests pass fixed ones.
    """
    batch = f"batch_{batch_id or uuid.uuid4()}".encode("ascii")
    changeset = f"changeset_{changeset_id or uuid.uuid4()}".encode("ascii")
    table_url = f"{endpoint.rstrip('/')}/{quote(table, safe='')}"
    chunks = [b"--", batch, _CRLF,
              b"Content-Type: multipart/mixed; boundary=", changeset, _CRLF, _CRLF]
    count = 0
    for count, operation in enumerate(operations, start=1):
        chunks += (b"--", changeset, _CRLF)
        chunks.append(_encode_operation(table_url, count - 1, operation, cosmos))
    if not count:
        raise ValueError("a transaction needs at least one operation")
    chunks += (b"--", changeset, b"--", _CRLF, b"--", batch, b"--", _CRLF)
    return EncodedTransaction(b"".join(chunks), f"multipart/mixed; boundary={batch.decode('ascii')}", count)


def _encode_operation(table_url: str, position: int, operation: Sequence[Any], cosmos: bool) -> bytes:
    kind, entity, options = _unpack(operation)
    url_of_row = f"{table_url}({_key_predicate(entity)})"
    if kind not in OPTIONS_BY_KIND:
        raise ValueError(f"unknown transaction operation {kind!r}: use create, upsert, update or delete")
    _allow(options, kind, OPTIONS_BY_KIND[kind])
    if kind == "create":
        method, url, if_match, body = "POST", table_url, None, _entity_json(entity)
    elif kind == "upsert":
        method, url, if_match, body = _write_method(options), url_of_row, None, _entity_json(entity)
    elif kind == "update":
        method, url, if_match = _write_method(options), url_of_row, _if_match(entity, options)
        body = _entity_json(entity)
    else:  # delete
        method, url, if_match, body = "DELETE", url_of_row, _if_match(entity, options), None

    extra = b""
    if cosmos and method == "MERGE":
        method, extra = "POST", b"X-HTTP-Method: MERGE\r\n"
    lines = [_PART_HEADERS, b"Content-ID: ", str(position).encode("ascii"), _CRLF, _CRLF,
             method.encode("ascii"), b" ", url.encode("ascii"), b" HTTP/1.1\r\n", _COMMON_HEADERS, extra]
    if if_match is not None:
        lines += (b"If-Match: ", if_match.encode("ascii"), _CRLF)
    if body is not None:
        lines += (b"Content-Type: application/json\r\nContent-Length: ", str(len(body)).encode("ascii"),
                  _CRLF, _CRLF, body, _CRLF)
    else:
        lines.append(_CRLF)
    return b"".join(lines)


def _unpack(operation: Sequence[Any]) -> tuple[str, Mapping[str, Any], Mapping[str, Any]]:
    if not isinstance(operation, (tuple, list)) or len(operation) not in (2, 3):
        raise ValueError("each operation must be (kind, entity) or (kind, entity, options)")
    kind = getattr(operation[0], "value", operation[0])
    options = operation[2] if len(operation) == 3 and operation[2] is not None else {}
    if not isinstance(kind, str):
        raise ValueError(f"unknown transaction operation {kind!r}")
    return kind.lower(), operation[1], options


def _allow(options: Mapping[str, Any], kind: str, allowed: frozenset[str]) -> None:
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise ValueError(f"option(s) {', '.join(unknown)} do not apply to {kind!r}")


def _key_predicate(entity: Mapping[str, Any]) -> str:
    """`PartitionKey='..',RowKey='..'`: OData string literals (quote doubled), then percent-encoded."""
    return f"PartitionKey='{_key(entity, 'PartitionKey')}',RowKey='{_key(entity, 'RowKey')}'"


def _key(entity: Mapping[str, Any], name: str) -> str:
    value = entity.get(name)
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string, not {type(value).__name__}")
    return quote(value.replace("'", "''"), safe="")


def _entity_json(entity: Mapping[str, Any]) -> bytes:
    return _JSON.encode(_add_entity_properties(entity)).encode("ascii")


def _write_method(options: Mapping[str, Any]) -> str:
    mode = options.get("mode", UpdateMode.MERGE)
    mode = getattr(mode, "value", mode)
    if mode == UpdateMode.MERGE.value:
        return "MERGE"
    if mode == UpdateMode.REPLACE.value:
        return "PUT"
    raise ValueError(f"mode must be 'merge' or 'replace', not {mode!r}")


def _if_match(entity: Mapping[str, Any], options: Mapping[str, Any]) -> str:
    """If-Match for update/delete: the ETag when one is given (or IfNotModified asks for the
    entity's own), `*` (the row must exist) otherwise."""
    condition = options.get("match_condition")
    etag = options.get("etag")
    if condition == MatchConditions.IfNotModified and not etag and isinstance(entity, TableEntity):
        etag = entity.metadata.get("etag")
    if condition not in (None, MatchConditions.IfNotModified, MatchConditions.Unconditionally):
        raise ValueError(f"unsupported match condition {condition!r}")
    if condition == MatchConditions.IfNotModified and not etag:
        raise ValueError("IfNotModified needs an etag")
    if condition == MatchConditions.Unconditionally and etag:
        raise ValueError("an etag makes no sense with MatchConditions.Unconditionally")
    if not etag:
        return "*"
    if not isinstance(etag, str) or not etag.isascii() or not etag.isprintable():
        raise ValueError("an etag must be printable ASCII text")
    if etag == "*" or etag.startswith("W/") or (etag[0] == etag[-1] and etag[0] in "\"'" and len(etag) > 1):
        return etag
    return f'"{etag}"'


# --- sending -----------------------------------------------------------------------------------

def submit(client: Any, operations: Iterable[Sequence[Any]], **kwargs: Any) -> list[str | None]:
    """Send `operations` as one transaction through `client` (an azure-data-tables TableClient).

    Returns the new ETag of each operation in order (None where the service sends none, as for
    a delete); raises TransactionRefused otherwise (its `scope` says whether anything can have
    been applied). Transport failures and the pipeline's own exceptions propagate unchanged.
    `kwargs` go to the pipeline, as for any SDK call.
    """
    endpoint = f"{client.scheme}://{client._primary_hostname}"  # where the SDK sends its transactions
    encoded = encode_transaction(endpoint, client.table_name, operations,
                                 cosmos=bool(getattr(client, "_cosmos_endpoint", False)))
    request = HttpRequest("POST", f"{endpoint}/$batch", headers={
        "x-ms-version": client.api_version,
        "DataServiceVersion": "3.0",
        "MaxDataServiceVersion": "3.0;NetFx",
        "Content-Type": encoded.content_type,
        "Accept": "application/json",
    }, content=encoded.body)
    response = client._client.send_request(request, stream=True, **kwargs)
    try:
        body = response.read()
        headers = {name.lower(): value for name, value in response.headers.items()}
    finally:
        response.close()
    return read_outcome(response.status_code, headers, body, encoded.operations)


# --- response ----------------------------------------------------------------------------------

def read_outcome(status: int, headers: Mapping[str, str], body: bytes, operations: int) -> list[str | None]:
    """Interpret the answer to a `$batch` request of `operations` operations (see `submit`).
    `headers` must have lower-case names."""
    if status == 413:
        code, message = _error_of(headers, body)
        raise TransactionRefused(413, code, message or "The transaction request was too large")
    if status != 202:
        code, message = _error_of(headers, body)
        raise TransactionRefused(status, code, message or "refused", scope=TransactionRefused.REQUEST)
    parts = parse_multipart(headers.get("content-type", ""), body)
    failed = next((part for part in parts if not 200 <= part.status < 300), None)
    if failed is not None:
        code, message = _error_of(failed.headers, failed.body)
        index = None
        position = _OPERATION_INDEX.match(message)
        if position:
            index, message = int(position.group(1)), message[position.end():]
        raise TransactionRefused(failed.status, code, message.strip() or "refused", index=index)
    if len(parts) != operations:
        raise _unreadable(f"it answers for {len(parts)} operation(s) of {operations}")
    return [part.headers.get("etag") for part in parts]


def parse_multipart(content_type: str, body: bytes) -> list[PartResponse]:
    """Every HTTP response in a multipart/mixed body, nested changesets flattened, in order.
    Accepts CRLF or bare LF line endings."""
    boundary = _boundary_of(content_type)
    if boundary is None:
        raise _unreadable(f"it is not multipart ({content_type[:80]!r})")
    found: list[PartResponse] = []
    for part in _split(body, boundary):
        part_headers, content = _head_and_body(part)
        part_type = part_headers.get("content-type", "")
        if part_type.lower().startswith("multipart/"):
            found += parse_multipart(part_type, content)
        elif part_type.lower().startswith("application/http"):
            found.append(_http_response(content))
    return found


def _boundary_of(content_type: str) -> bytes | None:
    if not content_type.lower().startswith("multipart/"):
        return None
    match = _BOUNDARY.search(content_type)
    return (match.group(1) or match.group(2)).encode("latin-1") if match else None


def _split(body: bytes, boundary: bytes) -> list[bytes]:
    delimiter = b"--" + boundary
    pieces = body.split(delimiter)
    parts = []
    for piece in pieces[1:]:  # before the first delimiter is preamble
        if piece.startswith(b"--"):  # the closing delimiter; the rest is epilogue
            break
        piece = piece[2:] if piece.startswith(_CRLF) else piece[1:] if piece.startswith(b"\n") else piece
        piece = piece[:-2] if piece.endswith(_CRLF) else piece[:-1] if piece.endswith(b"\n") else piece
        parts.append(piece)
    return parts


def _head_and_body(data: bytes) -> tuple[dict[str, str], bytes]:
    """Header lines up to the first empty line (names lower-cased), and what follows."""
    crlf, lf = data.find(b"\r\n\r\n"), data.find(b"\n\n")
    if crlf >= 0 and (lf < 0 or crlf < lf):
        head, content = data[:crlf], data[crlf + 4:]
    elif lf >= 0:
        head, content = data[:lf], data[lf + 2:]
    else:
        head, content = data, b""
    headers: dict[str, str] = {}
    for line in head.splitlines():
        name, colon, value = line.decode("latin-1").partition(":")
        if colon:
            headers[name.strip().lower()] = value.strip()
    return headers, content


def _http_response(data: bytes) -> PartResponse:
    data = data.lstrip(b"\r\n")
    first_end = data.find(b"\n")
    status_line = (data if first_end < 0 else data[:first_end]).rstrip(b"\r")
    match = _STATUS_LINE.match(status_line)
    if not match:
        raise _unreadable("a part has no HTTP status line")
    rest = b"" if first_end < 0 else data[first_end + 1:]
    if rest.startswith(_CRLF) or rest.startswith(b"\n"):  # no headers at all
        headers, content = {}, rest.lstrip(b"\r\n")
    else:
        headers, content = _head_and_body(rest)
    reason = (match.group(2) or b"").decode("latin-1").strip()
    return PartResponse(int(match.group(1)), reason, headers, content.rstrip(b"\r\n"))


def _unreadable(problem: str) -> TransactionRefused:
    return TransactionRefused(202, None, f"the answer to the transaction could not be read: {problem}",
                              scope=TransactionRefused.UNREADABLE)


def _error_of(headers: Mapping[str, str], body: bytes) -> tuple[str | None, str]:
    """The service's error code and the first line of its message, from JSON or XML."""
    code = headers.get("x-ms-error-code")
    message = ""
    text = body.strip()
    if text.startswith(b"{"):
        try:
            error = json.loads(text).get("odata.error") or {}
        except (ValueError, AttributeError):
            error = {}
        if isinstance(error, Mapping):
            code = error.get("code") or code
            detail = error.get("message")
            message = detail.get("value", "") if isinstance(detail, Mapping) else str(detail or "")
    elif text.startswith(b"<"):
        try:
            for element in ElementTree.fromstring(text).iter():
                tag = element.tag.rsplit("}", 1)[-1].lower()
                if tag == "code" and element.text:
                    code = element.text.strip()
                elif tag == "message" and element.text:
                    message = element.text
        except ElementTree.ParseError:
            pass
    return code, (message or "").split("\n", 1)[0].strip()
