"""Which integrations the API may show: not the missing ones, and not those being deleted.

Every route that reads or changes something under an integration goes through
`require_live_integration`, so from the moment DELETE marks an integration `deleting` nothing of
that tenant is readable, even while its purge is still removing the rows.
"""
from __future__ import annotations

from sync import validation
from sync.model import Integration
from sync.store.integrations_repo import IntegrationsRepo
from sync.validation import Problem


def require_live_integration(integrations: IntegrationsRepo, integration_id: str) -> Integration:
    """The integration, or the API's 404 when it does not exist or is being deleted."""
    integration = integrations.get(validation.integration_id(integration_id))
    if integration is None or integration.is_deleting:
        raise Problem(404, "not_found", "no such integration")
    return integration


def live_integration_ids(integrations: IntegrationsRepo) -> set[str]:
    """Ids of the integrations the API may show (for listings that span integrations)."""
    return {i.id for i in integrations.list() if not i.is_deleting}
