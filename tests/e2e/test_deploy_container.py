"""deploy/Containerfile and deploy/compose.yaml, carried out as far as this machine allows
(no container engine runs here; tests/e2e/_containerfile.py says what is mapped and what is
not): the build stage's ``pip wheel`` and the runtime stage's venv install run for real; then
compose's ``init`` service and its ``provider`` service run the image's ENTRYPOINT with their
``command:`` and the environment compose.yaml gives them, as the image's uid (not root), against
a scratch PostgreSQL database standing for the ``db`` service. A person signs in through an RP
(OpenID Connect Core §3.1), the operator's ``docker compose exec provider oidc-provider ...``
commands work, both health checks answer as the HTTP endpoints they probe, and ``docker stop``'s
SIGTERM ends the server within compose's ``stop_grace_period``.

Port 8000 becomes a free port (in the command line and the health checks); the ``db`` host of
``OIDC_DATABASE_URL`` becomes the scratch database. Nothing else is changed.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import requests
from live import ScratchPostgres, free_port  # conformance/live.py
from sqlalchemy.engine import make_url

from ..deploy_files import DEPLOY, ROOT, environment, parse_command_line, read_compose, read_containerfile
from ._containerfile import build
from ._deployed import as_user, public_directory, python_for, sign_in, uids, wait_for, workers
from .conftest import REDIRECT_URI, TIMEOUT

pytestmark = pytest.mark.e2e

POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"  # bin/test's server


def postgres_base() -> str:
    url = os.environ.get("OIDC_TEST_DATABASE_URL", "")
    return url if url.startswith("postgresql") else POSTGRES


class Container:
    """The built image's processes: as its uid, in its WORKDIR, with its environment."""

    def __init__(self, image, env: dict[str, str]):
        self.image = image
        self.env = {**image.environment(), "HOME": str(image.path(image.home)), **env}

    def run(self, *command: str, stdin: str | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([*as_user(self.image.uid, self.image.gid), *command], input=stdin, env=self.env,
                              cwd=self.image.path("."), capture_output=True, text=True, timeout=120, check=False)

    def exec(self, *args: str, stdin: str | None = None) -> str:
        """``docker compose exec provider oidc-provider ARGS``."""
        done = self.run(*self.image.entrypoint, *args, stdin=stdin)
        assert done.returncode == 0, f"oidc-provider {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
        return done.stdout

    def start(self, command: list[str], log: Path) -> subprocess.Popen:
        with open(log, "wb") as out:
            return subprocess.Popen([*as_user(self.image.uid, self.image.gid), *self.image.entrypoint, *command],
                                    env=self.env, cwd=self.image.path("."), stdout=out, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True)


def check_exit(container: Container, command: list[str], port: int) -> int:
    """A health check's exit status, run inside the "container" like the engine runs it."""
    command = [part.replace(":8000/", f":{port}/") for part in command]
    return container.run(*command).returncode


def answers_200(url: str) -> bool:
    return requests.get(url, timeout=TIMEOUT).status_code == 200


@pytest.fixture
def image():
    workdir = public_directory("oidc-containerfile-")  # the image's uid must reach in
    try:
        instructions = read_containerfile(DEPLOY / "Containerfile")
        account = next(i.args for i in instructions if i.keyword == "RUN" and "useradd" in i.args)
        uid = int(account.split("--uid ")[1].split()[0])
        python = python_for(uid, uid, [sys._base_executable, "/usr/bin/python3"])
        yield build(instructions, context=ROOT, workdir=workdir, python=python)
    finally:
        subprocess.run(["rm", "-rf", str(workdir)], check=False)


def test_image_builds_inits_serves_a_sign_in_and_stops_as_its_non_root_user(image, tmp_path):
    # The build: wheels only in the runtime stage, removed after the install; a non-root user.
    venv = image.path("/opt/oidc-provider/venv")
    assert (venv / "bin" / "oidc-provider").is_file()
    assert not image.path("/wheels").exists()
    assert image.uid and image.uid != 0 and image.user == f"{image.uid}:{image.gid}"
    where = subprocess.run([str(venv / "bin" / "python"), "-c", "import oidc_provider; print(oidc_provider.__file__)"],
                           capture_output=True, text=True, cwd=tempfile.gettempdir(), check=True).stdout
    assert where.startswith(str(venv)), where  # the installed wheel, not this checkout

    # compose.yaml's environment, with the db service's host replaced by a scratch database.
    port = free_port()
    variables = {"OIDC_ISSUER": f"http://127.0.0.1:{port}", "OIDC_SECRET_KEY": secrets.token_urlsafe(48),
                 "POSTGRES_PASSWORD": secrets.token_urlsafe(24)}
    services = read_compose(DEPLOY / "compose.yaml", variables)["services"]
    scratch = ScratchPostgres(postgres_base())
    env = environment(services["provider"])
    assert environment(services["init"]) == env
    assert make_url(env["OIDC_DATABASE_URL"]).drivername == make_url(scratch.url).drivername
    env["OIDC_DATABASE_URL"] = scratch.create()
    container = Container(image, env)
    process = None
    log = tmp_path / "serve.log"
    try:
        # depends_on: init runs to completion first.
        container.exec(*services["init"]["command"])
        command = [str(port) if part == "8000" else part for part in services["provider"]["command"]]
        assert command != services["provider"]["command"], "the port to replace is in the command"
        process = container.start(command, log)
        wait_for(variables["OIDC_ISSUER"] + "/.well-known/openid-configuration", process, log)

        # The server and each gunicorn worker run as the image's uid, never root.
        serve = parse_command_line(services["provider"]["command"])
        for pid in [process.pid, *workers(process.pid, serve.params["workers"])]:
            assert uids(pid) == {image.uid}, pid

        # The operator's commands, as `docker compose exec provider oidc-provider ...` runs them.
        password = secrets.token_urlsafe(18)
        container.exec("user", "create", "alice", "--email", "alice@example.com", "--email-verified",
                       "--password-stdin", stdin=password + "\n")
        client = json.loads(container.exec("client", "create", "--name", "Container", "--redirect-uri",
                                           REDIRECT_URI, "--json"))
        claims = sign_in(variables["OIDC_ISSUER"], client, "alice", password)
        assert claims["preferred_username"] == "alice"

        # Each health check exits 0 exactly when its endpoint answers 200.
        checks = {"/healthz": image.healthcheck, "/readyz": services["provider"]["healthcheck"]["test"][1:]}
        for path, check in checks.items():
            assert f"'http://127.0.0.1:8000{path}'" in check[-1]
            healthy = answers_200(f"{variables['OIDC_ISSUER']}{path}")
            assert (check_exit(container, check, port) == 0) == healthy, (path, healthy)

        # `docker stop`: SIGTERM, then SIGKILL after stop_grace_period.
        grace = int(services["provider"]["stop_grace_period"].removesuffix("s"))
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=grace) == 0, log.read_text()[-3000:]
        for check in checks.values():
            assert check_exit(container, check, port) != 0
    finally:
        if process is not None and process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        scratch.drop()
