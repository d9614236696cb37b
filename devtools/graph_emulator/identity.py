"""Entra ID for the emulator: OIDC discovery, instance discovery, the client-credentials token
endpoint with Entra's documented error bodies, and access-token checks for Graph endpoints.

Tokens are JWT-shaped (header.payload.signature, HS256 with a per-process key) and carry
`tid`, `appid`, `roles`, `aud`, `iss`, `iat`, `nbf`, `exp`, like app-only Graph tokens.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Iterable
from urllib.parse import unquote_plus, urlsplit

from werkzeug.wrappers import Response

from devtools.graph_emulator.app import Ctx, EmulatorApp, json_response
from devtools.graph_emulator.errors import GraphError
from devtools.graph_emulator.state import AppRegistration, Tenant, World

GRAPH_AUDIENCE = "https://graph.microsoft.com"
TOKEN_LIFETIME_SECONDS = 3599

# Application permissions that satisfy each kind of access (any one of them is enough).
DIRECTORY_READ = {"User.Read.All", "User.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All"}
CALENDAR_READ = {"Calendars.Read", "Calendars.ReadWrite", "Calendars.ReadBasic"}
CALENDAR_WRITE = {"Calendars.ReadWrite"}
PLACES_READ = {"Place.Read.All", "Place.ReadWrite.All"}


@dataclass(frozen=True)
class Caller:
    tenant: Tenant
    app: AppRegistration
    roles: frozenset[str]


def b64url(data: bytes) -> str:
    """Unpadded base64url, as in JWT segments."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Decodes base64url with or without its `=` padding."""
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def bearer_token(ctx: Ctx) -> str | None:
    """The token of an `Authorization: Bearer ...` header, or None."""
    header = ctx.request.headers.get("Authorization", "")
    if not header.lower().startswith("bearer "):
        return None
    return header[7:].strip() or None


def issue_token(world: World, tenant: Tenant, app: AppRegistration) -> tuple[str, int]:
    now = int(world.clock.now().timestamp())
    header = {"typ": "JWT", "alg": "HS256", "kid": "emulator"}
    claims = {
        "aud": GRAPH_AUDIENCE,
        "iss": f"https://sts.windows.net/{tenant.id}/",
        "iat": now, "nbf": now, "exp": now + TOKEN_LIFETIME_SECONDS,
        "app_displayname": app.display_name,
        "appid": app.client_id,
        "idtyp": "app",
        "oid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{tenant.id}/{app.client_id}")),
        "roles": sorted(app.roles),
        "sub": str(uuid.uuid5(uuid.NAMESPACE_URL, f"sp/{tenant.id}/{app.client_id}")),
        "tid": tenant.id,
        "ver": "1.0",
    }
    signing_input = b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())
    signature = hmac.new(world.signing_key, signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + b64url(signature), TOKEN_LIFETIME_SECONDS


def _invalid_token(message: str) -> GraphError:
    return GraphError(401, "InvalidAuthenticationToken", message, headers={
        "WWW-Authenticate": 'Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", client_id="00000003-0000-0000-c000-000000000000"',
    })


def verify_token(world: World, token: str) -> Caller:
    parts = token.split(".")
    if len(parts) != 3:
        raise _invalid_token("CompactToken parsing failed with error code: 80049217")
    signing_input = parts[0] + "." + parts[1]
    expected = hmac.new(world.signing_key, signing_input.encode(), hashlib.sha256).digest()
    try:
        signature = b64url_decode(parts[2])
        claims = json.loads(b64url_decode(parts[1]))
    except ValueError:
        raise _invalid_token("CompactToken parsing failed with error code: 80049217") from None
    if not hmac.compare_digest(signature, expected):
        raise _invalid_token("Access token validation failure. Invalid audience.")
    now = world.clock.now().timestamp()
    if not (claims.get("nbf", 0) - 300 <= now < claims.get("exp", 0)):
        raise _invalid_token("Access token has expired or is not yet valid.")
    tenant = world.tenants.get(claims.get("tid", ""))
    app = tenant.apps.get(claims.get("appid", "")) if tenant else None
    if tenant is None or app is None:
        raise _invalid_token("Access token validation failure.")
    # Permissions are read from the registration now, so revoking consent takes effect at once.
    return Caller(tenant=tenant, app=app, roles=frozenset(app.roles))


def authorize(ctx: Ctx, any_of: Iterable[str], kind: str = "outlook") -> Caller:
    """Checks the bearer token and that the app holds one of the permissions.

    `kind` picks Graph's 403 code: directory endpoints answer Authorization_RequestDenied,
    Outlook endpoints ErrorAccessDenied.
    """
    token = bearer_token(ctx)
    if token is None:
        raise _invalid_token("Access token is empty.")
    caller = verify_token(ctx.world, token)
    ctx.caller = caller
    wanted = set(any_of)
    if wanted and not (caller.roles & wanted):
        if kind == "directory":
            raise GraphError(403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")
        raise GraphError(403, "ErrorAccessDenied", "Access is denied. Check credentials and try again.")
    return caller


# ---- token endpoint --------------------------------------------------------------------------

def oauth_error(status: int, error: str, description: str, code: int | None = None,
                headers: dict[str, str] | None = None) -> Response:
    """The identity platform's OAuth error body; with an AADSTS `code`, also its code fields."""
    trace_id, correlation_id = str(uuid.uuid4()), str(uuid.uuid4())
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")
    prefix = f"AADSTS{code}: " if code is not None else ""
    body: dict[str, object] = {
        "error": error,
        "error_description": f"{prefix}{description}\r\nTrace ID: {trace_id}\r\n"
                             f"Correlation ID: {correlation_id}\r\nTimestamp: {stamp}",
    }
    if code is not None:
        body["error_codes"] = [code]
    body.update({"timestamp": stamp, "trace_id": trace_id, "correlation_id": correlation_id})
    if code is not None:
        body["error_uri"] = f"https://login.microsoftonline.com/error?code={code}"
    return json_response(body, status=status, headers=headers)


def _aad_error(status: int, error: str, code: int, description: str) -> Response:
    return oauth_error(status, error, description, code)


def _unknown_tenant(name: str) -> Response:
    return _aad_error(400, "invalid_tenant", 90002,
                      f"Tenant '{name}' not found. Check to make sure you have the correct tenant ID and are "
                      "signing into the correct cloud. Check with your subscription administrator, this may "
                      "happen if there are no active subscriptions for the tenant.")


def _client_credentials(ctx: Ctx) -> tuple[str | None, str | None, str | None, str | None]:
    form = ctx.request.form
    client_id, secret = form.get("client_id"), form.get("client_secret")
    auth = ctx.request.headers.get("Authorization", "")
    if auth.lower().startswith("basic "):
        try:
            decoded = base64.b64decode(auth[6:].strip()).decode("utf-8")
            basic_id, _, basic_secret = decoded.partition(":")
            client_id = client_id or unquote_plus(basic_id)
            secret = secret or unquote_plus(basic_secret)
        except ValueError:
            pass
    return client_id, secret, form.get("client_assertion"), form.get("client_assertion_type")


def token_endpoint(ctx: Ctx) -> Response:
    world = ctx.world
    tenant_name = ctx.params["tenant"]
    with world.lock:
        tenant = world.find_tenant(tenant_name)
        if tenant_name.lower() in ("common", "organizations", "consumers"):
            return _aad_error(400, "invalid_request", 50059,
                              "No tenant-identifying information found in either the request or implied by any provided credentials.")
        if tenant is None:
            return _unknown_tenant(tenant_name)
        form = ctx.request.form
        if form.get("grant_type") != "client_credentials":
            return _aad_error(400, "unsupported_grant_type", 70003,
                              "The app requested an unsupported grant type.")
        client_id, secret, assertion, assertion_type = _client_credentials(ctx)
        if not client_id:
            return _aad_error(400, "invalid_request", 900144, "The request body must contain the following parameter: 'client_id'.")
        scope = form.get("scope", "")
        scopes = scope.split()
        if not scopes or any(not s.endswith("/.default") for s in scopes):
            return _aad_error(400, "invalid_scope", 1002012,
                              f"The provided value for scope {scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).")
        app = tenant.apps.get(client_id)
        if app is None:
            return _aad_error(400, "unauthorized_client", 700016,
                              f"Application with identifier '{client_id}' was not found in the directory '{tenant.display_name}'. "
                              "This can happen if the application has not been installed by the administrator of the tenant "
                              "or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.")
        if assertion:
            from devtools.graph_emulator import certificates
            problem = certificates.check_assertion(world, tenant, app, assertion, assertion_type, ctx.request.url)
            if problem:
                return _aad_error(401, "invalid_client", problem[0], problem[1])
        elif not secret:
            return _aad_error(401, "invalid_client", 7000218,
                              "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.")
        else:
            matching = [s for s in app.secrets if hmac.compare_digest(s.value.encode(), secret.encode())]
            if not matching:
                return _aad_error(401, "invalid_client", 7000215,
                                  "Invalid client secret provided. Ensure the secret being sent in the request is the client "
                                  f"secret value, not the client secret ID, for a secret added to app '{app.client_id}'.")
            now = world.clock.now()
            if all(s.expires_at is not None and s.expires_at <= now for s in matching):
                return _aad_error(401, "invalid_client", 7000222,
                                  f"The provided client secret keys for app '{app.client_id}' are expired. Visit the Azure "
                                  "portal to create new keys for your app: https://aka.ms/NewClientSecret, or consider using "
                                  "certificate credentials for added security: https://aka.ms/certCreds.")
        token, lifetime = issue_token(world, tenant, app)
    return json_response({"token_type": "Bearer", "expires_in": lifetime, "ext_expires_in": lifetime,
                          "access_token": token})


def openid_configuration(ctx: Ctx) -> Response:
    world = ctx.world
    tenant = world.find_tenant(ctx.params["tenant"])
    if tenant is None:
        return _unknown_tenant(ctx.params["tenant"])
    base = world.base_url
    return json_response({
        "token_endpoint": f"{base}/{tenant.id}/oauth2/v2.0/token",
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
        "jwks_uri": f"{base}/{tenant.id}/discovery/v2.0/keys",
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "issuer": f"{base}/{tenant.id}/v2.0",
        "authorization_endpoint": f"{base}/{tenant.id}/oauth2/v2.0/authorize",
        "device_authorization_endpoint": f"{base}/{tenant.id}/oauth2/v2.0/devicecode",
        "end_session_endpoint": f"{base}/{tenant.id}/oauth2/v2.0/logout",
        "tenant_region_scope": "EU",
        "cloud_instance_name": "microsoftonline.com",
    })


def instance_discovery(ctx: Ctx) -> Response:
    host = ctx.world.base_url.split("://", 1)[-1]
    # Entra answers with the discovery document of the tenant named in `authorization_endpoint`
    # (recorded responses: ".../{tenant}/v2.0/.well-known/openid-configuration"); MSAL then fetches
    # exactly that URL, so a fixed "common" here would fail every app that points its
    # `instance_discovery` at the emulator.
    tenant = "common"
    authorization_endpoint = ctx.request.args.get("authorization_endpoint", "")
    segments = [s for s in urlsplit(authorization_endpoint).path.split("/") if s]
    if segments:
        tenant = segments[0]
    return json_response({
        "tenant_discovery_endpoint": f"{ctx.world.base_url}/{tenant}/v2.0/.well-known/openid-configuration",
        "api-version": "1.1",
        "metadata": [{"preferred_network": host, "preferred_cache": host, "aliases": [host]}],
    })


def register(app: EmulatorApp) -> None:
    app.route("/<tenant>/oauth2/v2.0/token", ["POST"], token_endpoint, name="token")
    app.route("/<tenant>/v2.0/.well-known/openid-configuration", ["GET"], openid_configuration, name="openid-configuration")
    app.route("/common/discovery/instance", ["GET"], instance_discovery, name="instance-discovery")
