"""The locked build: every package that is installed comes from a lock file, pinned with hashes,
transitive ones included, and make refuses a Python other than the one the app is built for.

The closure checks read the metadata of the packages installed in this venv (which `make setup`
installs from requirements-dev.txt), so a dependency that a new release brings in and nobody
locked fails here instead of floating on the next deployment."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
RUNTIME, DEV, BENCH = "requirements.txt", "requirements-dev.txt", "requirements-bench.txt"
LOCKS = {RUNTIME: "requirements.in", DEV: "requirements-dev.in", BENCH: "requirements-bench.in"}
# Each lock holds the one below it, pin for pin.
LAYERS = [(RUNTIME, DEV), (DEV, BENCH)]


@dataclass(frozen=True)
class Pin:
    version: str
    hashes: frozenset[str]


def read_lock(name: str) -> dict[str, Pin]:
    """`name==version` blocks with their `--hash` lines, as pip-compile writes them."""
    pins: dict[str, Pin] = {}
    text = (ROOT / name).read_text()
    for block in re.split(r"\n(?=\S)", text):
        lines = [line.split("#", 1)[0].strip().rstrip("\\").strip() for line in block.splitlines()]
        lines = [line for line in lines if line]
        if not lines:
            continue
        head, *rest = lines
        assert not head.startswith("-"), f"{name}: option '{head}' in a lock file"
        match = re.fullmatch(r"([A-Za-z0-9._-]+)==([^\s;]+)", head)
        assert match, f"{name}: '{head}' is not pinned with =="
        hashes = frozenset(re.findall(r"--hash=(sha256:[0-9a-f]{64})", " ".join(rest)))
        assert hashes, f"{name}: {head} has no sha256 hash"
        pins[canonicalize_name(match[1])] = Pin(match[2], hashes)
    return pins


def roots(in_file: str) -> list[Requirement]:
    """The requirements an .in file names, following its -r includes (not its -c constraints)."""
    found = []
    for line in (ROOT / in_file).read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line.startswith("-r "):
            found += roots(line[3:].strip())
        elif line and not line.startswith("-"):
            found.append(Requirement(line))
    return found


def applies(requirement: Requirement, extras: frozenset[str]) -> bool:
    if requirement.marker is None:
        return True
    environment = default_environment()
    return any(requirement.marker.evaluate({**environment, "extra": extra}) for extra in extras | {""})


def closure(start: list[Requirement]) -> dict[str, set[str]]:
    """Every distribution the installed metadata says `start` needs, with who needs it."""
    needed: dict[str, set[str]] = {}
    todo = [(requirement, frozenset(requirement.extras), "(root)") for requirement in start]
    seen: set[tuple[str, frozenset[str]]] = set()
    while todo:
        requirement, extras, by = todo.pop()
        name = canonicalize_name(requirement.name)
        needed.setdefault(name, set()).add(by)
        if (name, extras) in seen:
            continue
        seen.add((name, extras))
        for text in metadata.requires(name) or []:
            child = Requirement(text)
            if applies(child, extras):
                todo.append((child, frozenset(child.extras), name))
    return needed


@pytest.mark.parametrize("lock", list(LOCKS))
def test_every_line_of_a_lock_is_pinned_with_a_hash(lock):
    assert read_lock(lock)


@pytest.mark.parametrize("lock", list(LOCKS))
def test_every_package_an_in_file_names_is_locked_at_a_version_it_allows(lock):
    pins = read_lock(lock)
    for requirement in roots(LOCKS[lock]):
        pin = pins.get(canonicalize_name(requirement.name))
        assert pin, f"{requirement.name} from {LOCKS[lock]} is missing from {lock}: run make lock"
        assert requirement.specifier.contains(pin.version, prereleases=True), (requirement, pin.version)


@pytest.mark.parametrize("lower, upper", LAYERS)
def test_each_lock_holds_the_one_below_it_pin_for_pin(lower, upper):
    below, above = read_lock(lower), read_lock(upper)
    for name, pin in below.items():
        assert above.get(name) == pin, f"{name} differs between {lower} and {upper}: run make lock"


@pytest.mark.parametrize("lock", [RUNTIME, DEV])
def test_transitive_dependencies_are_locked_and_installed_at_the_locked_version(lock):
    """The runtime lock alone must hold everything the deployed app imports (azure-core, urllib3,
    certifi...): Azure's remote build installs nothing else."""
    pins = read_lock(lock)
    missing = {}
    for name, needed_by in closure(roots(LOCKS[lock])).items():
        if name not in pins:
            missing[name] = sorted(needed_by)
            continue
        assert metadata.version(name) == pins[name].version, f"{name} installed differs from {lock}: run make setup"
    assert not missing, f"needed but not in {lock} (run make lock): {missing}"


# -- make: installs from the lock, on the Python the app is built for ---------------------------

def make_dry_run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["make", "--no-print-directory", "-n", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)


needs_make = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


@needs_make
@pytest.mark.parametrize("target, lock", [("test", DEV), ("start", DEV), ("bench", BENCH)])
def test_make_installs_from_the_lock_with_hashes_required(tmp_path, target, lock):
    # A venv that does not exist yet, so make lists the install steps.
    run = make_dry_run(target, f"VENV={tmp_path / 'venv'}", f"PYTHON={sys.executable}")
    assert run.returncode == 0, run.stderr
    installs = [line for line in run.stdout.splitlines() if "pip install" in line]
    assert installs and all("--require-hashes" in line for line in installs), installs
    assert any(f"-r {lock}" in line for line in installs), installs


def test_the_python_version_is_stated_and_is_the_one_running():
    version = (ROOT / ".python-version").read_text().strip()
    assert re.fullmatch(r"3\.\d+", version)
    assert f"{sys.version_info.major}.{sys.version_info.minor}" == version
    assert f"Python {version}" in (ROOT / "README.md").read_text()
    for lock in LOCKS:
        assert f"pip-compile with Python {version}" in (ROOT / lock).read_text()


@needs_make
@pytest.mark.parametrize("venv_exists", [False, True])
def test_make_refuses_another_python_with_one_line(tmp_path, venv_exists):
    other = tmp_path / "python"
    other.write_text("#!/bin/sh\necho 3.12\n")  # answers the version question as Python 3.12
    other.chmod(0o755)
    venv = tmp_path / "venv"
    if venv_exists:
        (venv / "bin").mkdir(parents=True)
        (venv / "bin" / "python").symlink_to(other)
        python = sys.executable  # the right interpreter, but the venv was made by another
    else:
        python = str(other)
    run = make_dry_run("test", f"PYTHON={python}", f"VENV={venv}")
    assert run.returncode != 0 and run.stdout == ""
    lines = run.stderr.splitlines()
    assert len(lines) == 1, run.stderr
    assert "Python 3.11" in lines[0] and "Python 3.12" in lines[0]
    assert ("make clean" in lines[0]) == venv_exists


@needs_make
def test_make_clean_still_runs_with_another_python(tmp_path):
    run = make_dry_run("clean", "PYTHON=/nonexistent/python", f"VENV={tmp_path / 'venv'}")
    assert run.returncode == 0, run.stderr


def test_tests_run_in_random_order(pytestconfig):
    """Order dependence shows up as a failure on some seed instead of hiding behind file order."""
    assert "-p randomly" in (ROOT / "pytest.ini").read_text()
    assert pytestconfig.pluginmanager.has_plugin("randomly")
