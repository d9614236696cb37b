"""Transaction planning: limits of entity-group transactions enforced before anything is sent."""
from __future__ import annotations

import pytest
from azure.core import MatchConditions
from azure.data.tables import TableEntity, UpdateMode
from hypothesis import given
from hypothesis import strategies as st

from sync.store.batch import MAX_OPERATIONS, MAX_PAYLOAD_BYTES, plan_transactions
from sync.store.errors import InvalidKeyError, TransactionError
from tests.support.tables import row


@given(st.lists(st.tuples(st.sampled_from("abcd"), st.integers(0, 10_000)), max_size=400, unique=True))
def test_plans_respect_partitions_limits_and_keep_every_operation_once_in_order(rows):
    operations = [("upsert", row(pk, f"r{n}")) for pk, n in rows]
    plan = plan_transactions(operations)
    assert all(1 <= len(chunk) <= MAX_OPERATIONS for chunk in plan)
    assert all(len({op.partition_key for op in chunk}) == 1 for chunk in plan)
    flattened = [op.index for chunk in plan for op in chunk]
    assert sorted(flattened) == list(range(len(operations)))
    for pk in "abcd":
        in_partition = [op.index for chunk in plan for op in chunk if op.partition_key == pk]
        assert in_partition == sorted(in_partition)
    per_partition = {pk: sum(1 for p, _ in rows if p == pk) for pk in "abcd"}
    assert len(plan) == sum(-(-count // MAX_OPERATIONS) for count in per_partition.values())


def test_250_rows_of_one_partition_make_three_transactions():
    plan = plan_transactions([("create", row("p", f"{n:03}")) for n in range(250)])
    assert [len(chunk) for chunk in plan] == [100, 100, 50]


def test_large_entities_are_cut_by_payload_size_not_only_by_count():
    big = "x" * 600_000  # each entity about 0.6 MB of JSON
    plan = plan_transactions([("upsert", row("p", f"r{n}", body=big)) for n in range(20)])
    assert len(plan) > 1
    for chunk in plan:
        assert sum(op.size for op in chunk) <= MAX_PAYLOAD_BYTES
        assert len(chunk) < MAX_OPERATIONS


def test_non_ascii_text_is_estimated_above_its_byte_size():
    text = "日" * 1000
    (only,) = plan_transactions([("upsert", row("p", "r", body=text))])[0]
    assert only.size > len(text.encode("utf-8"))


def test_the_same_row_twice_is_refused_naming_both_operations():
    operations = [("upsert", row("p", "a")), ("upsert", row("q", "a")), ("delete", row("p", "a"))]
    with pytest.raises(TransactionError) as caught:
        plan_transactions(operations)
    assert caught.value.index == 2
    assert "operations 0 and 2" in str(caught.value)


def test_bad_keys_are_reported_with_the_operation_index():
    with pytest.raises(InvalidKeyError) as caught:
        plan_transactions([("upsert", row("p", "ok")), ("upsert", row("p", "bad#key"))])
    assert caught.value.what == "RowKey of operation 1"
    assert caught.value.char == "#"


@pytest.mark.parametrize("operation, problem", [
    (("merge", row("p", "r")), "unknown operation kind"),
    (("upsert",), "each operation"),
    (("upsert", ["p", "r"]), "mapping"),
    (("create", row("p", "r"), {"mode": "merge"}), "do not apply"),
    (("upsert", row("p", "r"), {"mode": "sideways"}), "merge' or 'replace"),
    (("update", row("p", "r"), {"match_condition": MatchConditions.IfNotModified}), "needs an etag"),
    (("delete", row("p", "r"), {"etag": "e", "match_condition": MatchConditions.IfModified}), "IfNotModified"),
])
def test_malformed_operations_are_refused_with_their_index(operation, problem):
    with pytest.raises(TransactionError, match=problem) as caught:
        plan_transactions([("upsert", row("p", "first")), operation])
    assert caught.value.index == 1


def test_an_etag_always_means_if_match_on_that_etag():
    plan = plan_transactions([
        ("update", row("p", "a"), {"etag": "W/1"}),
        ("delete", row("p", "b"), {"etag": "W/2"}),
        ("update", row("p", "c")),
    ])
    guarded, deleted, plain = plan[0]
    assert guarded.options == {"etag": "W/1", "match_condition": MatchConditions.IfNotModified}
    assert deleted.options["match_condition"] == MatchConditions.IfNotModified
    assert plain.options == {}


def test_a_read_entity_supplies_its_own_etag_when_if_not_modified_is_asked():
    entity = TableEntity(PartitionKey="p", RowKey="r")
    entity._metadata = {"etag": "W/read"}
    (operation,) = plan_transactions([("update", entity, {"match_condition": MatchConditions.IfNotModified})])[0]
    assert operation.options["etag"] == "W/read"


def test_modes_are_normalised_for_the_sdk():
    (operation,) = plan_transactions([("upsert", row("p", "r"), {"mode": "replace"})])[0]
    assert operation.options["mode"] is UpdateMode.REPLACE
    assert operation.for_sdk() == ("upsert", row("p", "r"), {"mode": UpdateMode.REPLACE})


def test_no_operations_plan_no_transactions():
    assert plan_transactions([]) == []
