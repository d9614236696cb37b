"""The tenant's organization object: which domains are verified in it.

https://learn.microsoft.com/en-us/graph/api/organization-list
Needs Organization.Read.All (or Directory.Read.All, Organization.ReadWrite.All,
Directory.ReadWrite.All); without one Graph answers 403 Authorization_RequestDenied.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from graph.client import GraphClient

ORGANIZATION_READ_ROLES = frozenset({"Organization.Read.All", "Organization.ReadWrite.All", "Directory.Read.All",
                                     "Directory.ReadWrite.All"})


def verified_domains(client: "GraphClient") -> frozenset[str]:
    """The lowercase names of every domain verified in the caller's tenant."""
    body = client.get("/organization", params={"$select": "id,verifiedDomains"})
    names: set[str] = set()
    for organization in body.get("value") or []:
        for domain in (organization.get("verifiedDomains") or []) if isinstance(organization, dict) else []:
            name = domain.get("name") if isinstance(domain, dict) else None
            if isinstance(name, str) and name.strip():
                names.add(name.strip().lower().rstrip("."))
    return frozenset(names)
