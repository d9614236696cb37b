"""Shared fixtures live in tests/support; each module owns one part of the local world."""
import os

# A REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE in the environment silently overrides `verify=` in
# requests; our code passes the emulator's CA explicitly, so tests must not depend on them.
pytest_plugins = [
    "tests.support.azurite_fixture",
    "tests.support.emulator_fixture",
]
