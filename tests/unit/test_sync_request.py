import pytest

from sync.users import SyncRequest


def test_a_request_survives_the_queue_round_trip_with_its_deferrals():
    request = SyncRequest("i-1", "r-1", "manual", force=True, deferrals=3)
    assert SyncRequest.from_message(request.as_message()) == request
    assert "deferrals" not in SyncRequest("i-1", "r-1", "manual").as_message()  # first tries stay small


@pytest.mark.parametrize("body, named", [
    ([], "JSON object"),
    ({"run_id": "r"}, "integration_id"),
    ({"integration_id": "i"}, "run_id"),
    ({"integration_id": "i", "run_id": "r", "trigger": "cron"}, "trigger"),
    ({"integration_id": "i", "run_id": "r", "force": "yes"}, "force"),
    ({"integration_id": "i", "run_id": "r", "deferrals": -1}, "deferrals"),
    ({"integration_id": "i", "run_id": "r", "deferrals": True}, "deferrals"),
])
def test_malformed_messages_are_refused_naming_the_field(body, named):
    with pytest.raises(ValueError) as refused:
        SyncRequest.from_message(body)
    assert named in str(refused.value)
