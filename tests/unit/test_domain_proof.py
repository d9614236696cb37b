"""The rules that decide which claimed domains count: verified domains from the organization when
the app may read them, otherwise the tenant's own UPNs."""
from __future__ import annotations

from sync.domain_proof import can_read_organization, optional_permissions_view, prove_domains

CLAIMED = ("contoso.com", "claimed.org")


def test_the_organization_decides_when_it_can_be_read():
    proofs = prove_domains(CLAIMED, verified=frozenset({"contoso.com", "contoso.onmicrosoft.com"}),
                           upn_domains={"claimed.org"}, previous={"claimed.org": "upn"}, full_read=False)
    assert proofs == {"contoso.com": "organization"}


def test_without_the_organization_upns_prove_and_a_delta_round_keeps_earlier_proofs():
    assert prove_domains(CLAIMED, verified=None, upn_domains={"contoso.com", "other.org"}, previous={},
                         full_read=True) == {"contoso.com": "upn"}
    assert prove_domains(CLAIMED, verified=None, upn_domains=set(), previous={"contoso.com": "upn"},
                         full_read=False) == {"contoso.com": "upn"}
    # A full read settles them afresh: nobody signs in with the domain any more.
    assert prove_domains(CLAIMED, verified=None, upn_domains=set(), previous={"contoso.com": "upn"},
                         full_read=True) == {}


def test_organization_read_all_or_a_broader_role_is_needed_and_the_answer_says_what_it_enables():
    assert can_read_organization({"Organization.Read.All"}) and can_read_organization({"Directory.Read.All"})
    assert not can_read_organization({"User.Read.All", "Calendars.ReadWrite"})
    (granted,) = optional_permissions_view({"User.Read.All"})
    assert granted["permission"] == "Organization.Read.All" and granted["granted"] is False
    assert "verified" in granted["enables"]
