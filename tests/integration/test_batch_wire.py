"""Hand-written transactions against a real Azurite: every operation kind in one transaction,
conflicts reported with the caller's index, and typed properties stored exactly as the SDK's
own `submit_transaction` stores them."""
from __future__ import annotations

import uuid
from datetime import datetime, timezone

import pytest
from azure.data.tables import EdmType, EntityProperty, TableServiceClient, UpdateMode

from devtools.azurite import ACCOUNT
from sync.store import REPLACE, ConflictError, Table, TransactionConflictError, TransactionError, etag_of
from sync.store import batch_wire
from tests.support.tables import RecordingTransport, azurite_tables, row  # noqa: F401 - fixture


@pytest.fixture
def table(azurite_tables, unique_name):
    return Table(azurite_tables, unique_name("wire")).ensure()


def properties(entity) -> dict:
    return {name: value for name, value in entity.items() if name not in ("PartitionKey", "RowKey")}


def test_every_operation_kind_in_one_transaction(table):
    table.transact([
        ("upsert", row("p", "merged", keep="old", change=1)),
        ("upsert", row("p", "replaced", keep="old", change=1)),
        ("upsert", row("p", "guarded-merge", keep="old", change=1)),
        ("upsert", row("p", "guarded-replace", keep="old", change=1)),
        ("upsert", row("p", "blind-update", keep="old", change=1)),
        ("upsert", row("p", "guarded-delete")),
        ("upsert", row("p", "blind-delete")),
    ])
    etag = {key: etag_of(table.get("p", key)) for key in ("guarded-merge", "guarded-replace", "guarded-delete")}
    operations = [
        ("create", row("p", "created", change=2)),
        ("upsert", row("p", "merged", change=2)),
        ("upsert", row("p", "replaced", change=2), {"mode": REPLACE}),
        ("upsert", row("p", "new-by-upsert", change=2), {"mode": REPLACE}),
        ("update", row("p", "guarded-merge", change=2), {"etag": etag["guarded-merge"]}),
        ("update", row("p", "guarded-replace", change=2), {"etag": etag["guarded-replace"], "mode": REPLACE}),
        ("update", row("p", "blind-update", change=2)),
        ("delete", row("p", "guarded-delete"), {"etag": etag["guarded-delete"]}),
        ("delete", row("p", "blind-delete")),
    ]
    table.stats.reset()
    assert table.transact(operations) == 1
    assert (table.stats.transactions, table.stats.requests, table.stats.operations) == (1, 1, 9)

    state = {entity["RowKey"]: properties(entity) for entity in table.query(partition="p")}
    assert state == {
        "created": {"change": 2},
        "merged": {"keep": "old", "change": 2},
        "replaced": {"change": 2},
        "new-by-upsert": {"change": 2},
        "guarded-merge": {"keep": "old", "change": 2},
        "guarded-replace": {"change": 2},
        "blind-update": {"keep": "old", "change": 2},
    }


def test_submit_returns_the_etags_the_rows_now_have(table):
    table.upsert(row("p", "old"))
    etags = batch_wire.submit(table.client, [
        ("create", row("p", "a", n=1)),
        ("upsert", row("p", "b", n=2), {"mode": UpdateMode.REPLACE}),
        ("update", row("p", "old", n=3), {"etag": etag_of(table.get("p", "old"))}),
    ])
    assert etags == [etag_of(table.get("p", key)) for key in ("a", "b", "old")]
    assert all(etags)
    assert batch_wire.submit(table.client, [("delete", row("p", "a"))]) == [None]


def test_a_stale_etag_names_the_callers_operation_and_its_transaction_is_rolled_back(table):
    table.transact([("upsert", row("p", f"r{n}", v=0)) for n in range(3)])
    stale = etag_of(table.get("p", "r2"))
    table.upsert(row("p", "r2", v=1))
    operations = [("upsert", row("q", "elsewhere"))] + [
        ("upsert", row("p", "new")),
        ("delete", row("p", "r0")),
        ("update", row("p", "r2", v=9), {"etag": stale}),
    ]
    with pytest.raises(TransactionConflictError) as caught:
        table.transact(operations)
    error = caught.value
    assert isinstance(error, ConflictError) and isinstance(error, TransactionError)
    assert (error.kind, error.index, error.partition_key, error.row_key, error.status) == (
        ConflictError.MODIFIED, 3, "p", "r2", 412)
    assert error.committed == 1  # partition q comes first in the call, so its transaction went through
    assert table.get("q", "elsewhere") is not None
    assert table.get("p", "new") is None and table.get("p", "r0") is not None
    assert table.get("p", "r2")["v"] == 1


def test_creating_a_row_that_exists_is_a_conflict_at_its_index(table):
    table.insert(row("p", "taken", v=1))
    operations = [("create", row("p", f"c{n}")) for n in range(4)] + [("create", row("p", "taken", v=2))]
    with pytest.raises(TransactionConflictError) as caught:
        table.transact(operations)
    assert (caught.value.kind, caught.value.index, caught.value.row_key, caught.value.status) == (
        ConflictError.EXISTS, 4, "taken", 409)
    assert caught.value.code == "EntityAlreadyExists"
    assert [entity["RowKey"] for entity in table.query(partition="p")] == ["taken"]
    assert table.get("p", "taken")["v"] == 1


def test_keys_with_quotes_and_non_ascii_are_addressed_exactly(table):
    keys = ["O'Brien", "''", "日本語 é", "a+b=c&d;e,f", "percent%20not-decoded", "space at end "]
    table.transact([("upsert", row("part'ñ", key, n=n)) for n, key in enumerate(keys)])
    existing = {key: etag_of(table.get("part'ñ", key)) for key in keys}
    table.transact([("update", row("part'ñ", key, n=10 + n), {"etag": existing[key]}) for n, key in enumerate(keys[:3])]
                   + [("delete", row("part'ñ", key), {"etag": existing[key]}) for key in keys[3:]])
    found = {entity["RowKey"]: entity["n"] for entity in table.query(partition="part'ñ")}
    assert found == {keys[0]: 10, keys[1]: 11, keys[2]: 12}


TYPED = {
    "Int64": EntityProperty(2**40 + 3, EdmType.INT64),
    "NegativeInt64": EntityProperty(-(2**62), EdmType.INT64),
    "Int32": 2**31 - 1,
    "When": datetime(2024, 2, 29, 23, 59, 58, 123456, tzinfo=timezone.utc),
    "Bytes": bytes(range(256)),
    "Empty": b"",
    "True": True,
    "False": False,
    "Float": 3.141592653589793,
    "WholeFloat": 2.0,
    "Infinity": float("inf"),
    "Guid": uuid.UUID("0f8fad5b-d9cb-469f-a165-70867728950e"),
    "Text": "Zoë 日本 \"quoted\" \\ back",
    "TypedDouble": EntityProperty(5, EdmType.DOUBLE),
    "TypedBool": EntityProperty(True, EdmType.BOOLEAN),
}


def typed_view(entity) -> dict:
    """Each property's Python type and value, EntityProperty spelled out, keys left aside."""
    view = {}
    for name, value in properties(entity).items():
        if isinstance(value, EntityProperty):
            view[name] = ("EntityProperty", value.edm_type, value.value)
        else:
            view[name] = (type(value).__name__, value)
    return view


@pytest.mark.parametrize("mode", ["create", "replace", "merge"])
def test_typed_properties_round_trip_exactly_as_through_the_sdk(table, mode):
    def operation(key: str):
        entity = row("typed", key, **TYPED)
        return ("create", entity) if mode == "create" else ("upsert", entity, {"mode": UpdateMode(mode)})

    table.client.submit_transaction([operation(f"sdk-{mode}")])
    table.transact([operation(f"ours-{mode}")])
    by_sdk, by_us = table.get("typed", f"sdk-{mode}"), table.get("typed", f"ours-{mode}")
    assert typed_view(by_us) == typed_view(by_sdk)
    assert by_us["Int64"] == by_sdk["Int64"] == EntityProperty(2**40 + 3, EdmType.INT64)
    assert by_us["Bytes"] == bytes(range(256)) and by_us["Guid"] == TYPED["Guid"]
    assert by_us["When"] == TYPED["When"] and by_us["Float"] == TYPED["Float"]


def test_requests_go_through_the_clients_pipeline_with_shared_key(storage_connection_string, unique_name):
    transport = RecordingTransport()
    service = TableServiceClient.from_connection_string(storage_connection_string, transport=transport)
    table = Table(service, unique_name("piped")).ensure()
    transport.sent.clear()
    table.transact([("upsert", row("p", "a")), ("upsert", row("p", "b"))])
    [(method, url, headers)] = transport.sent
    assert method == "POST" and url.endswith(f"/{ACCOUNT}/$batch")
    assert headers["Authorization"].startswith(f"SharedKey {ACCOUNT}:")
    assert "x-ms-date" in headers and "x-ms-client-request-id" in headers
    assert table.get("p", "b") is not None


def test_a_wrong_account_key_is_refused_as_a_whole(storage_connection_string, unique_name):
    name = unique_name("keyed")
    Table(TableServiceClient.from_connection_string(storage_connection_string), name).ensure()
    wrong = storage_connection_string.replace("AccountKey=", "AccountKey=AAAA", 1)
    table = Table(TableServiceClient.from_connection_string(wrong), name)
    with pytest.raises(TransactionError) as caught:
        table.transact([("upsert", row("p", "a"))])
    assert caught.value.status == 403 and caught.value.index is None
    assert "refused the transaction (HTTP 403" in str(caught.value)


def test_a_missing_table_fails_the_transaction_as_before(azurite_tables, unique_name):
    table = Table(azurite_tables, unique_name("absent"))
    with pytest.raises(TransactionError) as caught:
        table.transact([("upsert", row("p", "a")), ("upsert", row("p", "b"))])
    assert (caught.value.status, caught.value.code, caught.value.committed) == (404, "TableNotFound", 0)
