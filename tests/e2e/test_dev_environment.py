"""``oidc-provider dev`` tells the truth about where it keeps things (issue 11, "Configuration"):
the line it prints makes every other command, run from another directory with nothing else
set, act on the instance it serves; the demo credentials' path it prints is the real one."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from live import free_port  # conformance/live.py (tests/e2e/conftest.py puts it on sys.path)

from .conftest import TIMEOUT as HTTP_TIMEOUT

pytestmark = pytest.mark.e2e
START_TIMEOUT = 60
SOURCE_LINE = re.compile(r"^\s*set -a; \. (\S+); set \+a$", re.MULTILINE)


def cli() -> str:
    return str(Path(sys.executable).parent / "oidc-provider")


def bare_env() -> dict:
    """The test's environment without any OIDC_* variable."""
    return {k: v for k, v in os.environ.items() if not k.startswith("OIDC_")}


@pytest.fixture
def dev_server(tmp_path):
    """``oidc-provider dev --instance inst --port P`` started from ``tmp_path/project``."""
    project = tmp_path / "project"
    project.mkdir()
    port = free_port()
    out = tmp_path / "dev.out"
    env = {**bare_env(), "OIDC_ARGON2_MEMORY_COST": "1024", "OIDC_ARGON2_TIME_COST": "1"}
    with open(out, "wb") as sink:
        process = subprocess.Popen([cli(), "dev", "--instance", "inst", "--port", str(port)], cwd=project,
                                   env=env, stdout=sink, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   start_new_session=True)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not SOURCE_LINE.search(out.read_text()):
            assert process.poll() is None and time.monotonic() < deadline, out.read_text()
            time.sleep(0.2)
        yield project, port, out
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=10)


def run_sourced(env_file: str, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    """Run an ``oidc-provider`` command in a shell that ran exactly the printed line."""
    script = f"set -a; . {env_file}; set +a; exec {cli()} " + " ".join(args)
    return subprocess.run(["bash", "-c", script], cwd=cwd, env=bare_env(), capture_output=True, text=True,
                          timeout=120, check=False)


def test_the_printed_line_points_other_commands_at_the_dev_instance(dev_server, tmp_path):
    project, port, out = dev_server
    printed = out.read_text()
    env_file = SOURCE_LINE.search(printed).group(1)
    instance = (project / "inst").resolve()
    assert env_file == str(instance / "dev.env")
    assert oct(Path(env_file).stat().st_mode & 0o777) == "0o600"  # it holds the secret key

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    listed = run_sourced(env_file, elsewhere, "user", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert [user["username"] for user in json.loads(listed.stdout)] == ["demo"]
    assert not (elsewhere / "instance").exists() and not (elsewhere / "inst").exists()

    checked = run_sourced(env_file, elsewhere, "config", "check", "--json")
    assert checked.returncode == 0, checked.stdout
    rows = {row["key"]: row for row in json.loads(checked.stdout)["settings"]}
    assert rows["issuer"]["value"] == f"http://127.0.0.1:{port}"
    assert rows["database_url"]["value"] == f"sqlite:///{instance / 'oidc-provider.db'}"
    assert rows["secret_key"]["value"] == "********"
    # The server dev started is the one the printed environment names.
    discovery = requests.get(f"{rows['issuer']['value']}/.well-known/openid-configuration", timeout=HTTP_TIMEOUT)
    assert discovery.json()["issuer"] == rows["issuer"]["value"]


def test_the_demo_credentials_path_printed_is_the_real_one(dev_server):
    project, _, out = dev_server
    printed = out.read_text()
    path = Path(re.search(r"\(Demo credentials are kept in (\S+)\.\)", printed).group(1))
    assert path == (project / "inst" / "demo-credentials.json").resolve()
    demo = json.loads(path.read_text())
    assert f"demo user:     demo / {demo['password']}" in printed
