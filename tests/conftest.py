"""Shared fixtures live in tests/support; each module owns one part of the local world."""
import tempfile

from hypothesis.configuration import set_hypothesis_home_dir

# Hypothesis keeps its example database and constants cache outside the checkout, so a test run
# leaves nothing behind in the working tree.
set_hypothesis_home_dir(tempfile.mkdtemp(prefix="roomsync-hypothesis-"))

pytest_plugins = [
    "tests.support.azurite_fixture",
    "tests.support.emulator_fixture",
]
