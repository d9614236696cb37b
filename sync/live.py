"""Reading an integration for the room sync's API: unknown ids and integrations on their way
out (being deleted) are both "not found", so nothing of a deleted tenant stays readable."""
from __future__ import annotations

import re
from typing import Any, Callable

from sync.model import Integration
from sync.validation import Problem

GONE_STATUSES = frozenset({"deleting", "deleted"})
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def live_integration_reader(integrations) -> Callable[..., Integration]:
    def live(integration_id: Any, missing: Problem | None = None) -> Integration:
        if not isinstance(integration_id, str) or not integration_id:
            raise missing or Problem(400, "missing_field", "integration_id: required", field="integration_id")
        integration = integrations.get(integration_id) if _GUID.match(integration_id) else None
        if integration is None or integration.status in GONE_STATUSES:
            raise missing or Problem(404, "not_found", "no such integration", field="integration_id")
        return integration

    return live
