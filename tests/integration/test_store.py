"""The Table layer against a real Azurite: ETag conflicts, transactions, paging and key encoding."""
from __future__ import annotations

import uuid
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import pytest
from azure.core.pipeline.transport import RequestsTransport
from azure.data.tables import TableServiceClient
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from sync.store import (
    REPLACE,
    ConflictError,
    InvalidKeyError,
    NotFoundError,
    Store,
    Table,
    TransactionConflictError,
    TransactionError,
    compose,
    decode_id,
    encode_id,
    etag_of,
    hash_key,
    split,
)
from tests.support.tables import RecordingTransport, azurite_tables, row  # noqa: F401 - fixture


class StalledPageTransport(RequestsTransport):
    """Acts out Azure running out of query time: the first continued page comes back empty,
    carrying the very continuation it was asked to resume from (Azurite never does this)."""

    def __init__(self) -> None:
        super().__init__()
        self.stalled = 0

    def send(self, request, **kwargs):
        parts = urlsplit(request.url)
        query = parse_qs(parts.query)
        stall = not self.stalled and request.method == "GET" and "NextPartitionKey" in query
        if stall:
            query["$filter"] = [f"({query['$filter'][0]}) and RowKey lt ''"]  # matches nothing
            request.url = urlunsplit(parts._replace(query=urlencode(query, doseq=True)))
        response = super().send(request, **kwargs)
        if stall:
            assert response.status_code == 200
            response.headers["x-ms-continuation-NextPartitionKey"] = query["NextPartitionKey"][0]
            response.headers["x-ms-continuation-NextRowKey"] = query["NextRowKey"][0]
            self.stalled += 1
        return response


@pytest.fixture
def table(azurite_tables, unique_name):
    return Table(azurite_tables, unique_name("store")).ensure()


def count_in_service(service, table_name: str, partition: str) -> int:
    """Counted with the SDK directly, so the check does not trust the code under test."""
    client = service.get_table_client(table_name)
    return sum(1 for _ in client.query_entities("PartitionKey eq @pk", parameters={"pk": partition}))


# --- ensure ---------------------------------------------------------------------------------

def test_ensure_creates_once_per_process_and_accepts_an_existing_table(azurite_tables, unique_name):
    name = unique_name("ens")
    first = Table(azurite_tables, name).ensure()
    assert first.stats.requests == 1
    again = Table(azurite_tables, name).ensure()
    assert again.stats.requests == 0
    assert name in {t.name for t in azurite_tables.list_tables()}

    made_elsewhere = unique_name("ens")
    azurite_tables.create_table(made_elsewhere)
    adopted = Table(azurite_tables, made_elsewhere).ensure()  # 409 TableAlreadyExists is success
    assert adopted.stats.requests == 1


def test_invalid_table_names_are_refused_before_any_request(azurite_tables):
    with pytest.raises(ValueError, match="3-63 letters and digits"):
        Table(azurite_tables, "no-dashes")


def test_store_opens_each_table_once_and_shares_its_counters(azurite_tables, unique_name):
    store = Store(azurite_tables)
    name = unique_name("cat")
    assert store.table(name) is store.table(name)
    other = store.table(unique_name("cat"))
    other.upsert(row("p", "r"))
    assert store.stats.requests == 3  # two creations and one write


# --- single rows and ETags -------------------------------------------------------------------

def test_insert_get_and_etag_round_trip(table):
    etag = table.insert(row("p", "r", Name="Room 1", Capacity=8))
    found = table.get("p", "r")
    assert found == row("p", "r", Name="Room 1", Capacity=8)
    assert etag_of(found) == etag
    assert table.get("p", "missing") is None


def test_inserting_an_existing_row_is_a_conflict_of_kind_exists(table):
    table.insert(row("p", "r", v=1))
    with pytest.raises(ConflictError) as caught:
        table.insert(row("p", "r", v=2))
    assert caught.value.kind == ConflictError.EXISTS
    assert (caught.value.partition_key, caught.value.row_key, caught.value.status) == ("p", "r", 409)
    assert table.get("p", "r")["v"] == 1


def test_an_update_with_a_stale_etag_is_refused_and_changes_nothing(table):
    stale = table.insert(row("p", "r", v=1))
    fresh = table.update(row("p", "r", v=2), stale)
    assert fresh != stale
    with pytest.raises(ConflictError) as caught:
        table.update(row("p", "r", v=3), stale)
    assert caught.value.kind == ConflictError.MODIFIED
    assert caught.value.status == 412
    assert table.get("p", "r")["v"] == 2
    table.update(row("p", "r", v=4), etag_of(table.get("p", "r")))
    assert table.get("p", "r")["v"] == 4


def test_a_delete_with_a_stale_etag_is_refused_and_keeps_the_row(table):
    stale = table.insert(row("p", "r", v=1))
    table.upsert(row("p", "r", v=2))
    with pytest.raises(ConflictError) as caught:
        table.delete("p", "r", etag=stale)
    assert caught.value.kind == ConflictError.MODIFIED
    assert table.get("p", "r")["v"] == 2
    table.delete("p", "r", etag=etag_of(table.get("p", "r")))
    assert table.get("p", "r") is None


def test_deleting_a_missing_row_is_fine_unless_an_etag_says_it_should_be_there(table):
    etag = table.insert(row("p", "r"))
    table.delete("p", "r")
    table.delete("p", "r")  # already gone: the goal is met
    with pytest.raises(NotFoundError) as caught:
        table.delete("p", "r", etag=etag)
    assert (caught.value.partition_key, caught.value.row_key) == ("p", "r")


def test_updating_a_missing_row_is_not_found(table):
    etag = table.insert(row("p", "r"))
    table.delete("p", "r")
    with pytest.raises(NotFoundError):
        table.update(row("p", "r", v=1), etag)


def test_update_refuses_to_run_without_an_etag(table):
    with pytest.raises(ValueError, match="ETag"):
        table.update(row("p", "r"), "")
    with pytest.raises(ValueError, match="ETag"):
        etag_of(row("p", "r"))


def test_upsert_merges_or_replaces(table):
    table.upsert(row("p", "r", a=1, b=1))
    table.upsert(row("p", "r", b=2))
    assert table.get("p", "r") == row("p", "r", a=1, b=2)
    table.upsert(row("p", "r", b=3), mode=REPLACE)
    assert table.get("p", "r") == row("p", "r", b=3)
    with pytest.raises(ValueError, match="merge' or 'replace"):
        table.upsert(row("p", "r"), mode="append")


def test_a_table_that_was_never_created_is_reported_as_such(azurite_tables, unique_name):
    missing = Table(azurite_tables, unique_name("nope"))
    for attempt in (lambda: missing.insert(row("p", "r")), lambda: missing.get("p", "r"),
                    lambda: missing.delete("p", "r"), lambda: list(missing.query(partition="p"))):
        with pytest.raises(NotFoundError, match="ensure"):
            attempt()


# --- transactions ----------------------------------------------------------------------------

def test_250_rows_of_one_partition_take_three_transactions_and_read_back_in_pages(table, azurite_tables):
    submitted = table.transact([("upsert", row("bulk", f"r{n:04}", n=n)) for n in range(250)])
    assert submitted == 3
    assert table.stats.transactions == 3
    assert count_in_service(azurite_tables, table.name, "bulk") == 250

    table.stats.reset()
    rows = list(table.query(partition="bulk", page_size=40))
    assert [r["n"] for r in rows] == list(range(250))
    assert table.stats.pages == 7  # six full pages of 40 and one of 10
    assert table.stats.rows_read == 250


def test_operations_are_grouped_by_partition(table, azurite_tables):
    operations = [("create", row("a" if n % 3 else "b", f"r{n:03}")) for n in range(300)]
    assert table.transact(operations) == 3  # 200 rows of a: two transactions; 100 of b: one
    assert count_in_service(azurite_tables, table.name, "a") == 200
    assert count_in_service(azurite_tables, table.name, "b") == 100


def test_a_stale_etag_inside_a_transaction_rolls_the_whole_transaction_back(table):
    table.transact([("upsert", row("p", f"r{n}", v=0)) for n in range(5)])
    stale = etag_of(table.get("p", "r3"))
    table.upsert(row("p", "r3", v=1))
    operations = [
        ("upsert", row("p", "new1")),
        ("update", row("p", "r3", v=9), {"etag": stale}),
        ("delete", row("p", "r4")),
    ]
    with pytest.raises(ConflictError) as caught:
        table.transact(operations)
    error = caught.value
    assert isinstance(error, TransactionConflictError) and isinstance(error, TransactionError)
    assert (error.kind, error.index, error.row_key, error.committed) == (ConflictError.MODIFIED, 1, "r3", 0)
    assert table.get("p", "new1") is None
    assert table.get("p", "r4") is not None
    assert table.get("p", "r3")["v"] == 1


def test_a_failure_in_a_later_transaction_names_the_callers_operation_and_what_was_committed(table, azurite_tables):
    table.insert(row("p", "r0130"))
    operations = [("create", row("p", f"r{n:04}")) for n in range(150)]
    with pytest.raises(TransactionConflictError) as caught:
        table.transact(operations)
    error = caught.value
    assert (error.kind, error.index, error.committed) == (ConflictError.EXISTS, 130, 1)
    assert count_in_service(azurite_tables, table.name, "p") == 101  # the first transaction and the old row


def test_other_transaction_failures_carry_the_service_code(table):
    with pytest.raises(TransactionError) as caught:
        table.transact([("upsert", row("p", "a")), ("update", row("p", "absent", v=1))])
    assert caught.value.index == 1
    assert caught.value.code == "ResourceNotFound"
    assert table.get("p", "a") is None


def test_refusals_that_need_no_service_send_nothing(storage_connection_string, unique_name):
    transport = RecordingTransport()
    recording = TableServiceClient.from_connection_string(storage_connection_string, transport=transport)
    table = Table(recording, unique_name("quiet"))
    with pytest.raises(TransactionError, match="operations 0 and 2"):
        table.transact([("upsert", row("p", "a")), ("upsert", row("p", "b")), ("delete", row("p", "a"))])
    with pytest.raises(TransactionError, match="atomic"):
        table.transact([("upsert", row("p", f"r{n}")) for n in range(101)], atomic=True)
    with pytest.raises(TransactionError, match="atomic"):
        table.transact([("upsert", row("p", "a")), ("upsert", row("q", "a"))], atomic=True)
    assert table.transact([]) == 0
    assert transport.sent == []
    assert table.stats.requests == 0


# --- keys ------------------------------------------------------------------------------------

NASTY_IDS = ["AAMkAGI2/ab+cd==", "a#b?c\\d/e", "tab\there\nnewline", "\x00\x7f\x9f", "O'Brien @x ?", "日本+/="]


@pytest.fixture(scope="module")
def key_table(azurite_tables):
    return Table(azurite_tables, f"keys{uuid.uuid4().hex[:12]}").ensure()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(identifier=st.text(min_size=1, max_size=60))
@example(identifier="AAMkAGI2/ab+cd==")
@example(identifier="a#b?c\\d/e\x00\x1f\x7f\x9f")
def test_any_id_once_encoded_is_accepted_by_the_service_and_read_back(key_table, identifier):
    partition = encode_id(identifier)
    row_key = compose("event", encode_id(identifier), hash_key(identifier))
    key_table.upsert(row(partition, row_key, kind="event"))
    found = key_table.get(partition, row_key)
    assert found is not None
    kind, encoded, digest = split(found["RowKey"])
    assert decode_id(found["PartitionKey"]) == identifier == decode_id(encoded)
    assert digest == hash_key(identifier)
    assert [r["RowKey"] for r in key_table.query(partition=partition)] == [row_key]


def test_raw_ids_are_refused_naming_the_character_before_any_request(storage_connection_string, unique_name):
    transport = RecordingTransport()
    recording = TableServiceClient.from_connection_string(storage_connection_string, transport=transport)
    table = Table(recording, unique_name("quiet"))
    attempts = {
        "insert": lambda key: table.insert(row("p", key)),
        "upsert": lambda key: table.upsert(row(key, "r")),
        "update": lambda key: table.update(row("p", key), "W/etag"),
        "get": lambda key: table.get("p", key),
        "delete": lambda key: table.delete(key, "r"),
        "query": lambda key: list(table.query(partition=key)),
        "transact": lambda key: table.transact([("upsert", row("p", "ok")), ("upsert", row("p", key))]),
    }
    for name, attempt in attempts.items():
        for raw in NASTY_IDS:
            with pytest.raises(InvalidKeyError) as caught:
                attempt(raw)
            bad = next(i for i, c in enumerate(raw) if c in "/\\#?" or ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F)
            assert (caught.value.char, caught.value.position) == (raw[bad], bad), name
    assert transport.sent == []


# --- queries ---------------------------------------------------------------------------------

def test_a_query_goes_on_after_an_empty_page_that_carries_a_continuation(storage_connection_string, unique_name):
    transport = StalledPageTransport()
    stalling = TableServiceClient.from_connection_string(storage_connection_string, transport=transport)
    table = Table(stalling, unique_name("stall")).ensure()
    table.transact([("upsert", row("p", f"r{n:03}", n=n)) for n in range(100)])

    table.stats.reset()
    rows = list(table.query("n ge @low", {"low": 0}, partition="p", page_size=40))
    assert transport.stalled == 1
    assert [r["n"] for r in rows] == list(range(100))
    assert table.stats.pages == 4  # 40, then the empty page, then 40 and 20


def test_query_page_hands_out_a_continuation_to_resume_from(table):
    table.transact([("upsert", row("p", f"r{n:02}", n=n)) for n in range(25)])
    first = table.query_page(partition="p", page_size=10)
    assert [r["n"] for r in first.rows] == list(range(10)) and first.continuation is not None
    second = table.query_page(partition="p", page_size=10, continuation=first.continuation)
    assert [r["n"] for r in second.rows] == list(range(10, 20))
    rest = table.query_page(partition="p", page_size=10, continuation=second.continuation)
    assert [r["n"] for r in rest.rows] == list(range(20, 25)) and rest.continuation is None


def test_filter_parameters_are_escaped_and_combined_with_the_partition(table):
    table.transact([
        ("upsert", row("p", "1", Name="O'Brien", Seats=4)),
        ("upsert", row("p", "2", Name="Smith", Seats=10)),
        ("upsert", row("p", "3", Name="O'Brien", Seats=12)),
        ("upsert", row("q", "4", Name="O'Brien", Seats=20)),
    ])
    found = list(table.query("Name eq @name and (Seats ge @seats)", {"name": "O'Brien", "seats": 5},
                             partition="p", select=["Seats"]))
    assert [r["Seats"] for r in found] == [12]
    assert "Name" not in found[0]
    everywhere = list(table.query("Name eq @name", {"name": "O'Brien"}))
    assert sorted(r["RowKey"] for r in everywhere) == ["1", "3", "4"]
    with pytest.raises(ValueError, match="page_size"):
        list(table.query(partition="p", page_size=1001))
