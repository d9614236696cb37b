"""`GET /organization` as Graph documents it: the caller's own tenant with its verifiedDomains,
only for apps holding Organization.Read.All (or a broader directory role); a control route sets
which domains are verified."""
from __future__ import annotations

import requests

from devtools.graph_emulator import seed
from devtools.graph_emulator.state import World
from tests.support.emulator_fixture import graph_session, new_tenant, start_emulator


def control(server, method: str, path: str, body=None):
    return requests.request(method, f"{server.base_url}/_control{path}", json=body, verify=server.ca_path, timeout=30)


def test_organization_lists_the_tenants_verified_domains(graph_emulator):
    tenant = new_tenant(graph_emulator, roles={"User.Read.All", "Organization.Read.All"})
    session = tenant.session()

    response = session.get(f"{tenant.api_base}/organization", params={"$select": "id,verifiedDomains"})

    assert response.status_code == 200, response.text
    (organization,) = response.json()["value"]
    assert set(organization) == {"id", "verifiedDomains"} and organization["id"] == tenant.tenant_id
    names = {d["name"]: d for d in organization["verifiedDomains"]}
    assert set(names) == {tenant.domain, tenant.tenant.domains[1]}
    assert names[tenant.domain]["isDefault"] and names[tenant.tenant.domains[1]]["isInitial"]
    one = session.get(f"{tenant.api_base}/organization/{tenant.tenant_id}")
    assert one.status_code == 200 and one.json()["id"] == tenant.tenant_id
    other = session.get(f"{tenant.api_base}/organization/{new_tenant(graph_emulator).tenant_id}")
    assert other.status_code == 404


def test_organization_needs_organization_read_all(graph_emulator):
    tenant = new_tenant(graph_emulator, roles={"User.Read.All"})
    response = tenant.session().get(f"{tenant.api_base}/organization")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "Authorization_RequestDenied"
    anonymous = graph_session(tenant.ca_path).get(f"{tenant.api_base}/organization")
    assert anonymous.status_code == 401


def test_the_control_route_replaces_the_verified_domains(graph_emulator):
    tenant = new_tenant(graph_emulator, roles={"Directory.Read.All"})
    initial = tenant.tenant.domains[1]

    changed = control(graph_emulator, "PUT", f"/tenants/{tenant.tenant_id}/verified-domains",
                      {"domains": [initial, "Claimed.Example.org."]})

    assert changed.status_code == 200 and changed.json()["value"] == [initial, "claimed.example.org"]
    read = control(graph_emulator, "GET", f"/tenants/{tenant.tenant_id}/verified-domains").json()["value"]
    assert read == [initial, "claimed.example.org"]
    (organization,) = tenant.session().get(f"{tenant.api_base}/organization").json()["value"]
    assert [d["name"] for d in organization["verifiedDomains"]] == [initial, "claimed.example.org"]
    refused = control(graph_emulator, "PUT", f"/tenants/{tenant.tenant_id}/verified-domains", {"domains": "x"})
    assert refused.status_code == 400


def test_the_demo_app_may_read_the_organization_and_its_domain_is_verified(tmp_path):
    world = World()
    printed = seed.seed_demo(world)
    with start_emulator(world=world, cert_dir=str(tmp_path)) as server:
        token = requests.post(f"{server.base_url}/{printed['GRAPH_TENANT_ID']}/oauth2/v2.0/token",
                              verify=server.ca_path, timeout=30, data={
                                  "client_id": printed["GRAPH_CLIENT_ID"],
                                  "client_secret": printed["GRAPH_CLIENT_SECRET"],
                                  "grant_type": "client_credentials",
                                  "scope": "https://graph.microsoft.com/.default"}).json()["access_token"]
        response = graph_session(server.ca_path, token).get(f"{server.api_base}/organization")
    assert response.status_code == 200
    (organization,) = response.json()["value"]
    assert printed["GRAPH_TENANT_DOMAIN"] in [d["name"] for d in organization["verifiedDomains"]]
