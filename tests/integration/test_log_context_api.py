"""The REST API binds what a request is about to the log context: the caller's correlation id is
echoed in `x-correlation-id` and every record logged while it runs carries it, with the route's
integration id; a header that is not an id is replaced, not logged."""
from __future__ import annotations

import logging
import uuid

from tests.integration.test_status import app, call  # noqa: F401 -- the app fixture and its caller


def test_an_answer_echoes_the_correlation_id_and_its_log_records_carry_the_ids(app, caplog):
    caplog.set_level(logging.INFO, logger="functions")
    integration_id = str(uuid.uuid4())

    response = call(app, "integrations_get", "GET", f"integrations/{integration_id}",
                    headers={"x-correlation-id": "support-ticket-4711"}, route={"integration_id": integration_id})

    assert response.status_code == 404
    assert response.headers["x-correlation-id"] == "support-ticket-4711"
    (refused,) = [r for r in caplog.records if "refused" in r.getMessage() and "integrations/" in r.getMessage()]
    assert (refused.correlation_id, refused.integration_id) == ("support-ticket-4711", integration_id)


def test_a_correlation_header_that_is_not_an_id_is_replaced(app, caplog):
    caplog.set_level(logging.INFO, logger="functions")
    response = call(app, "integrations_get", "GET", "integrations/x",
                    headers={"x-correlation-id": "x\nFAKE log line"}, route={"integration_id": "not an id\n"})
    made = response.headers["x-correlation-id"]
    assert response.status_code == 404 and len(made) == 32 and "\n" not in made
    (refused,) = [r for r in caplog.records if "refused" in r.getMessage()]
    assert refused.correlation_id == made and not hasattr(refused, "integration_id")
