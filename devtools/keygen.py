"""SECRET_ENCRYPTION_KEY: make a new one, or check one before it is deployed.

    python3 devtools/keygen.py                  print a new key (base64 of 32 random bytes)
    python3 devtools/keygen.py --check          check $SECRET_ENCRYPTION_KEY (and $SECRET_ENCRYPTION_OLD_KEYS)
    python3 devtools/keygen.py --preprovision   the azd hook: stop `azd provision` when a first
                                                deployment has no key, or a key is malformed

Standard library only, so it runs with any Python 3 before `make setup` and from azd's hook.
Its notion of a valid key is the app's (sync.settings.decode_key); a test holds the two together.
Nothing here ever prints a key it was given.
"""
from __future__ import annotations

import argparse
import base64
import binascii
import os
import re
import secrets
import sys
from typing import Mapping

KEY_BYTES = 32
KEY = "SECRET_ENCRYPTION_KEY"
OLD_KEYS = "SECRET_ENCRYPTION_OLD_KEYS"
# An output of infra/main.bicep, saved in the azd environment once a provision has run.
VAULT_OUTPUT = "AZURE_KEY_VAULT_NAME"


def new_key() -> str:
    """Standard base64 of 32 bytes from the operating system's CSPRNG."""
    return base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode("ascii")


def decoded_length(text: str) -> int | None:
    """Bytes the text decodes to as base64 or base64url (padded or not); None if it is neither."""
    if not re.fullmatch(r"[A-Za-z0-9+/_-]+={0,2}", text):
        return None
    if re.search(r"[+/]", text) and re.search(r"[-_]", text):
        return None
    body = text.rstrip("=").replace("-", "+").replace("_", "/")
    if len(body) % 4 == 1:
        return None
    try:
        return len(base64.b64decode(body + "=" * (-len(body) % 4), validate=True))
    except binascii.Error:
        return None


def key_problem(text: str) -> str | None:
    """Why `text` is not a usable key, or None when it is one."""
    length = decoded_length(text.strip())
    if length is None:
        return "is not base64 or base64url"
    if length != KEY_BYTES:
        return f"decodes to {length} bytes, not {KEY_BYTES}"
    return None


def check(environ: Mapping[str, str]) -> list[str]:
    """Problems with the keys in `environ`, one line each, naming the setting but never the value."""
    problems = []
    key = environ.get(KEY, "").strip()
    if key and (problem := key_problem(key)):
        problems.append(f"{KEY} {problem}")
    old = [item.strip() for item in environ.get(OLD_KEYS, "").split(",") if item.strip()]
    for position, item in enumerate(old, start=1):
        if problem := key_problem(item):
            problems.append(f"{OLD_KEYS} item {position} {problem}")
        elif key and item == key:
            problems.append(f"{OLD_KEYS} item {position} is the current key")
    return problems


def preprovision(environ: Mapping[str, str]) -> list[str]:
    """The hook's verdict: a first provision needs a key; a later one may keep the vault's."""
    problems = check(environ)
    if not environ.get(KEY, "").strip() and not environ.get(VAULT_OUTPUT, "").strip():
        problems.append(
            f"{KEY} is not set and this environment has not been provisioned before. "
            f"Run: azd env set {KEY} \"$(python3 devtools/keygen.py)\" "
            f"(if the deployment exists already, run azd env refresh instead: a new key would "
            "make the stored client secrets unreadable)")
    return problems


def main(argv: list[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true", help=f"check ${KEY} and ${OLD_KEYS}")
    mode.add_argument("--preprovision", action="store_true", help="azd preprovision hook")
    args = parser.parse_args(argv)
    environ = os.environ if environ is None else environ
    if not (args.check or args.preprovision):
        print(new_key())
        return 0
    problems = preprovision(environ) if args.preprovision else check(environ)
    for problem in problems:
        print(f"roomsync: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
