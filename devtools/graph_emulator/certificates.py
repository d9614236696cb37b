"""Certificate credentials for the token endpoint: a client assertion (a JWT signed with the
private key of a certificate registered on the app) instead of a client secret.

Checks follow Entra's documented client-assertion rules (certificate-credentials page): header
`x5t` (base64url SHA-1 thumbprint) or `x5t#S256`, RS256 or PS256 signature, `aud` = the token
endpoint, `iss` = `sub` = the client id, `exp`/`nbf` against the emulator clock. Refusals use the
AADSTS codes seen from the real service (700027 key not found / bad signature / expired key,
700024 time range, 700023 audience, 700021 client id mismatch, 50027 malformed).
"""
from __future__ import annotations

import binascii
import json
from datetime import datetime, timedelta, timezone

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from devtools.graph_emulator.clock import graph_datetime
from devtools.graph_emulator.identity import b64url_decode
from devtools.graph_emulator.state import AppRegistration, Tenant, World

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
# Entra tolerates a few minutes of clock skew on nbf.
ALLOWED_SKEW = timedelta(minutes=5)
DOCS = "Review the documentation at https://learn.microsoft.com/entra/identity-platform/certificate-credentials ."

Problem = tuple[int, str]


def _pem_bytes(certificate_pem: bytes | str) -> bytes:
    return certificate_pem.encode("ascii") if isinstance(certificate_pem, str) else certificate_pem


def sha1_thumbprint(certificate_pem: bytes | str) -> str:
    """Upper-case hex SHA-1 thumbprint, the form the Azure portal shows."""
    cert = x509.load_pem_x509_certificate(_pem_bytes(certificate_pem))
    return cert.fingerprint(hashes.SHA1()).hex().upper()


def register_certificate(world: World, app: AppRegistration, certificate_pem: bytes | str) -> str:
    """Adds a public certificate to the app's credentials; returns its SHA-1 thumbprint."""
    pem = _pem_bytes(certificate_pem)
    thumbprint = sha1_thumbprint(pem)
    with world.lock:
        app.certificates[thumbprint] = pem
    return thumbprint


def remove_certificate(world: World, app: AppRegistration, thumbprint: str) -> bool:
    with world.lock:
        return app.certificates.pop(thumbprint.upper(), None) is not None


def make_self_signed(common_name: str = "roomsync", days: int = 365,
                     not_before: datetime | None = None) -> tuple[bytes, bytes, str]:
    """A new RSA key and self-signed certificate: (private_key_pem, certificate_pem, thumbprint),
    as one would upload to an app registration."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    start = not_before or datetime.now(timezone.utc) - timedelta(minutes=5)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(start)
            .not_valid_after(start + timedelta(days=days)).sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    return key_pem, cert_pem, sha1_thumbprint(cert_pem)


def _moment(timestamp: float | None) -> str:
    return graph_datetime(datetime.fromtimestamp(timestamp or 0, tz=timezone.utc))


def _find_certificate(app: AppRegistration, header: dict) -> tuple[str, x509.Certificate | None]:
    """Looks the key up by x5t#S256 or x5t; returns (thumbprint as the client sent it, cert)."""
    candidates = {thumb: x509.load_pem_x509_certificate(pem) for thumb, pem in app.certificates.items()}
    if header.get("x5t#S256"):
        wanted = b64url_decode(header["x5t#S256"])
        for cert in candidates.values():
            if cert.fingerprint(hashes.SHA256()) == wanted:
                return wanted.hex().upper(), cert
        return wanted.hex().upper(), None
    wanted_hex = b64url_decode(header["x5t"]).hex().upper()
    return wanted_hex, candidates.get(wanted_hex)


def _signature_valid(cert: x509.Certificate, algorithm: str, signing_input: bytes, signature: bytes) -> bool:
    key = cert.public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        return False
    pad = (padding.PKCS1v15() if algorithm == "RS256" else
           padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.AUTO))
    try:
        key.verify(signature, signing_input, pad, hashes.SHA256())
        return True
    except InvalidSignature:
        return False


def _accepted_audiences(world: World, tenant: Tenant, token_url: str) -> set[str]:
    names = [tenant.id, *tenant.domains]
    bases = {world.base_url.rstrip("/").lower()}
    audiences = {token_url.split("?")[0].rstrip("/").lower()}
    for base in bases:
        for name in names:
            audiences.add(f"{base}/{name.lower()}/oauth2/v2.0/token")
            audiences.add(f"{base}/{name.lower()}/oauth2/token")
    return audiences


def check_assertion(world: World, tenant: Tenant, app: AppRegistration, assertion: str,
                    assertion_type: str | None, token_url: str) -> Problem | None:
    """None when the client assertion proves the app's identity, else (AADSTS code, description)."""
    if assertion_type != JWT_BEARER:
        # [unverified code] Entra refuses other assertion types for this grant.
        return 700022, f"The value provided for client_assertion_type is invalid. Expected '{JWT_BEARER}'."
    parts = assertion.split(".")
    try:
        if len(parts) != 3:
            raise ValueError("not three segments")
        header = json.loads(b64url_decode(parts[0]))
        claims = json.loads(b64url_decode(parts[1]))
        signature = b64url_decode(parts[2])
    except (ValueError, binascii.Error):
        return 50027, "JWT token is invalid or malformed."
    if not header.get("x5t") and not header.get("x5t#S256"):
        return 50027, "Invalid JWT token. No certificate thumbprint specified in token header."
    algorithm = header.get("alg")
    if algorithm not in ("RS256", "PS256"):
        return 50027, f"Invalid JWT token. Unsupported signing algorithm '{algorithm}'."
    if claims.get("iss") != app.client_id or claims.get("sub") != app.client_id:
        return 700021, f"Client assertion application identifier doesn't match 'client_id' parameter. {DOCS}"
    aud = claims.get("aud")
    audiences = aud if isinstance(aud, list) else [aud]
    accepted = _accepted_audiences(world, tenant, token_url)
    if not any(isinstance(a, str) and a.rstrip("/").lower() in accepted for a in audiences):
        return 700023, f"Client assertion audience claim does not match Realm issuer. {DOCS}"
    now = world.clock.now()
    exp, nbf = claims.get("exp"), claims.get("nbf")
    if (not isinstance(exp, (int, float)) or exp <= now.timestamp()
            or (isinstance(nbf, (int, float)) and nbf > (now + ALLOWED_SKEW).timestamp())):
        return 700024, (f"Client assertion is not within its valid time range. Current time: "
                        f"{_moment(now.timestamp())}, assertion valid from {_moment(nbf)}, expiry time of "
                        f"assertion {_moment(exp if isinstance(exp, (int, float)) else None)}. {DOCS}")
    thumbprint, cert = _find_certificate(app, header)
    see_keys = (f"Please visit the Azure Portal, Graph Explorer or directly use MS Graph to see configured "
                f"keys for app Id '{app.client_id}'.")
    if cert is None:
        return 700027, (f"Client assertion contains an invalid signature. [Reason - The key was not found., "
                        f"Thumbprint of key used by client: '{thumbprint}', {see_keys}]")
    found = (f"Found key 'Start={cert.not_valid_before_utc:%m/%d/%Y %H:%M:%S}, "
             f"End={cert.not_valid_after_utc:%m/%d/%Y %H:%M:%S}'")
    if not (cert.not_valid_before_utc <= now <= cert.not_valid_after_utc):
        return 700027, (f"Client assertion contains an invalid signature. [Reason - The key used is expired., "
                        f"Thumbprint of key used by client: '{thumbprint}', {found}, {see_keys}]")
    if not _signature_valid(cert, algorithm, (parts[0] + "." + parts[1]).encode("ascii"), signature):
        return 700027, (f"Client assertion contains an invalid signature. [Reason - Key was found, but use of "
                        f"the key to verify the signature failed., Thumbprint of key used by client: "
                        f"'{thumbprint}', {found}, {see_keys}]")
    return None

