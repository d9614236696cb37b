"""`make start` brings up Azurite, the Graph emulator (demo tenant) and the app, and the app's
health endpoint answers 200 through the local host: the README's first command, end to end."""
import os
import subprocess
import sys
from pathlib import Path

from devtools.ports import free_port

ROOT = Path(__file__).resolve().parents[2]


def test_start_check_answers_health_200_from_the_local_host():
    env = {k: v for k, v in os.environ.items() if not k.startswith("AzureWebJobsStorage")}
    env.pop("PUBLIC_BASE_URL", None)
    result = subprocess.run(
        [sys.executable, "-m", "devtools.start", "--check",
         "--port", str(free_port()), "--emulator-port", str(free_port())],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=180,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert "/api/health" in output and "200" in output, output[-3000:]
    assert '"status": "ok"' in output or '"status":"ok"' in output, output[-3000:]
