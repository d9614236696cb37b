"""The organization area: `GET /organization` and `GET /organization/{tenant id}` with the
tenant's `verifiedDomains`, plus a control route that sets which domains count as verified.

Graph documents Organization.Read.All as the least privileged application permission for these
reads (Directory.Read.All, Organization.ReadWrite.All and Directory.ReadWrite.All also do);
without one of them Graph answers 403 Authorization_RequestDenied, as it does here.
User.Read.All alone is not enough.

A tenant's verified domains default to the domains it was created with (its custom domain and
its initial `<name>.onmicrosoft.com`); the control route replaces that list, for example to play
a tenant that claims a domain it never verified. The emulator does not stop a UPN from using an
unverified suffix (Entra does): tests that need such a person create them on purpose.

| Method | Path | Body -> answer |
|---|---|---|
| GET | /_control/tenants/<tenant>/verified-domains | -> `{"value": [names]}` |
| PUT | /_control/tenants/<tenant>/verified-domains | `{"domains": [names]}` -> `{"value": [names]}` |
"""
from __future__ import annotations

from typing import Any

from werkzeug.wrappers import Response

from devtools.graph_emulator.app import Ctx, EmulatorApp, json_response
from devtools.graph_emulator.errors import GraphError
from devtools.graph_emulator.identity import authorize
from devtools.graph_emulator.state import Tenant, World
from devtools.graph_emulator.users_query import parse_select

ORGANIZATION_READ = {"Organization.Read.All", "Organization.ReadWrite.All", "Directory.Read.All",
                     "Directory.ReadWrite.All"}
AREA = "organization"
PROPERTIES = ("id", "displayName", "verifiedDomains", "tenantType", "countryLetterCode", "createdDateTime")
_CANONICAL = {name.lower(): name for name in PROPERTIES}
_SUFFIX = ".onmicrosoft.com"


def verified_domains(tenant: Tenant) -> list[str]:
    """The tenant's verified domain names (lowercase, in the order they were set)."""
    chosen = tenant.area(AREA, dict).get("verified")
    return list(chosen) if chosen is not None else [d.lower() for d in tenant.domains]


def set_verified_domains(world: World, tenant: Tenant, names: list[str]) -> list[str]:
    """Replaces the tenant's verified domains; the order is kept, repeats dropped."""
    cleaned = list(dict.fromkeys(n.strip().lower().rstrip(".") for n in names if n and n.strip()))
    with world.lock:
        tenant.area(AREA, dict)["verified"] = cleaned
    return cleaned


def _domain_entry(name: str, initial: bool, default: bool) -> dict[str, Any]:
    return {"capabilities": "Email, OfficeCommunicationsOnline", "isDefault": default, "isInitial": initial,
            "name": name, "type": "Managed"}


def render_organization(tenant: Tenant, select: tuple[str, ...]) -> dict[str, Any]:
    names = verified_domains(tenant)
    custom = [n for n in names if not n.endswith(_SUFFIX)]
    default = custom[0] if custom else (names[0] if names else None)
    values = {
        "id": tenant.id, "displayName": tenant.display_name, "tenantType": "AAD", "countryLetterCode": "NL",
        "createdDateTime": None,
        "verifiedDomains": [_domain_entry(n, n.endswith(_SUFFIX), n == default) for n in names],
    }
    return {name: values[name] for name in select}


def _select(ctx: Ctx) -> tuple[str, ...]:
    return parse_select(ctx.request.args.get("$select"), _CANONICAL, PROPERTIES, "microsoft.graph.organization")


def list_organization(ctx: Ctx) -> Response:
    caller = authorize(ctx, ORGANIZATION_READ, kind="directory")
    select = _select(ctx)
    with ctx.world.lock:
        body = render_organization(caller.tenant, select)
    return json_response({"@odata.context": f"{ctx.world.base_url}/v1.0/$metadata#organization", "value": [body]})


def get_organization(ctx: Ctx) -> Response:
    caller = authorize(ctx, ORGANIZATION_READ, kind="directory")
    if ctx.params["organization"].lower() != caller.tenant.id.lower():
        raise GraphError(404, "Request_ResourceNotFound",
                         f"Resource '{ctx.params['organization']}' does not exist or one of its queried reference-"
                         "property objects are not present.")
    select = _select(ctx)
    with ctx.world.lock:
        body = render_organization(caller.tenant, select)
    body["@odata.context"] = f"{ctx.world.base_url}/v1.0/$metadata#organization/$entity"
    return json_response(body)


# ---- control ----------------------------------------------------------------------------------

def _control_tenant(ctx: Ctx) -> Tenant:
    from devtools.graph_emulator.control import tenant_or_404  # control imports seed, which imports this

    return tenant_or_404(ctx)


def get_verified(ctx: Ctx) -> Response:
    tenant = _control_tenant(ctx)
    with ctx.world.lock:
        return json_response({"value": verified_domains(tenant)})


def put_verified(ctx: Ctx) -> Response:
    from devtools.graph_emulator.control import bad, body

    tenant = _control_tenant(ctx)
    names = body(ctx).get("domains")
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise bad("domains: a list of domain names is required")
    return json_response({"value": set_verified_domains(ctx.world, tenant, names)})


def register(app: EmulatorApp) -> None:
    app.route("/v1.0/organization", ["GET"], list_organization, name="organization.list")
    app.route("/v1.0/organization/<organization>", ["GET"], get_organization, name="organization.get")
    control = "/_control/tenants/<tenant>/verified-domains"
    app.route(control, ["GET"], get_verified, name="control.verified-domains.get")
    app.route(control, ["PUT"], put_verified, name="control.verified-domains.set")
