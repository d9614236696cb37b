"""Which of an integration's claimed domains are proven verified in its own tenant.

Anyone can type any domain into the connect call, and `mail` is free text in Entra, so a claim
alone is worth nothing: a tenant could claim another company's domain and present its
addresses. A domain counts once it is proven verified in the integration's tenant:

- `organization`: listed in `GET /organization` verifiedDomains. Needs the optional permission
  Organization.Read.All; when granted, this proof is authoritative (a domain no longer listed
  stops counting).
- `upn`: the tenant's own people sign in with it. Entra only accepts a UPN suffix that is a
  domain verified in that tenant (and a domain is verified in one tenant at a time).

A full read of the directory settles UPN proofs afresh; a delta round can only add to them, as
it sees only people who changed. The rules are pure; the sync run supplies what it read.
"""
from __future__ import annotations

from typing import Any, Iterable, Mapping

from graph import Forbidden
from graph.organization import ORGANIZATION_READ_ROLES, verified_domains
from sync.model import PROOF_ORGANIZATION, PROOF_UPN, Integration

ORGANIZATION_READ = "Organization.Read.All"
ORGANIZATION_READ_ENABLES = ("proves the integration's domains verified from the tenant's organization "
                             "(GET /organization) right away, and notices when a domain is no longer verified; "
                             "without it a domain counts only once people of the tenant sign in with it (UPN)")


def can_read_organization(roles: Iterable[str]) -> bool:
    return bool(ORGANIZATION_READ_ROLES & set(roles))


def read_verified_domains(client: Any, roles: Iterable[str]) -> frozenset[str] | None:
    """The tenant's verified domains, or None when the app may not read them (not granted, or
    refused: consent withdrawn). Other failures propagate: the run retries later."""
    if not can_read_organization(roles):
        return None
    try:
        return verified_domains(client)
    except Forbidden:
        return None


def prove_domains(claimed: Iterable[str], *, verified: frozenset[str] | None, upn_domains: Iterable[str],
                  previous: Mapping[str, str], full_read: bool) -> dict[str, str]:
    """claimed domain -> proof, for the proven ones only."""
    claimed = [d.lower() for d in claimed]
    if verified is not None:
        return {d: PROOF_ORGANIZATION for d in claimed if d in verified}
    seen = set(upn_domains)
    proofs = {d: PROOF_UPN for d in claimed if d in seen}
    if not full_read:
        for domain in claimed:
            if domain not in proofs and previous.get(domain):
                proofs[domain] = previous[domain]
    return proofs


def domains_view(integration: Integration) -> list[dict[str, Any]]:
    """Each claimed domain with whether and how it is proven, as the API shows it."""
    return [{"name": d, "proven": bool(integration.domain_proofs.get(d)), "proof": integration.domain_proofs.get(d)}
            for d in integration.domains]


def optional_permissions_view(roles: Iterable[str]) -> list[dict[str, Any]]:
    return [{"permission": ORGANIZATION_READ, "granted": can_read_organization(roles),
             "enables": ORGANIZATION_READ_ENABLES}]
