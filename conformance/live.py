"""Start a real ``oidc-provider serve`` process on a free loopback port, for the conformance
runner (``run_live.py``) and the end-to-end tests (``tests/e2e/conftest.py``).

Everything goes through the operator CLI, as a person would do it: ``init``, ``user create
--password-stdin --json``, ``client create --json``, ``service create --json``, then ``serve``.
The database is a fresh SQLite file in a temporary directory or, when given a PostgreSQL URL,
a scratch database created next to it and dropped afterwards. Nothing here touches the
internet; every loop is bounded.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

CHEAP_ARGON2 = {
    "OIDC_ARGON2_TIME_COST": "1",
    "OIDC_ARGON2_MEMORY_COST": "1024",
    "OIDC_ARGON2_PARALLELISM": "1",
}
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0


class LiveServerError(RuntimeError):
    """The server could not be prepared or did not come up; the message says why."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _cli_path() -> str:
    """The ``oidc-provider`` script next to the running interpreter (the project's venv)."""
    candidate = Path(sys.executable).parent / "oidc-provider"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("oidc-provider")
    if found is None:
        raise LiveServerError("cannot find the oidc-provider command; install the project first")
    return found


class ScratchPostgres:
    """A throwaway database on the PostgreSQL server named by ``base_url``."""

    def __init__(self, base_url: str):
        self.base_url = base_url
        self.name = f"oidc_e2e_{int(time.time())}_{secrets.token_hex(4)}"

    def _admin_dsn(self) -> str:
        parts = urlsplit(self.base_url.replace("postgresql+psycopg://", "postgresql://", 1))
        return urlunsplit(parts._replace(path="/postgres"))

    @property
    def url(self) -> str:
        parts = urlsplit(self.base_url)
        return urlunsplit(parts._replace(path="/" + self.name))

    def _execute(self, statement: str) -> None:
        import psycopg

        with psycopg.connect(self._admin_dsn(), autocommit=True, connect_timeout=10) as conn:
            conn.execute(statement)

    def create(self) -> str:
        self._execute(f'CREATE DATABASE "{self.name}"')
        return self.url

    def drop(self) -> None:
        self._execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


@dataclass
class LiveServer:
    """One provider process. Use ``prepare()``, register users and clients, ``start()``,
    and always ``stop()`` (or use it as a context manager)."""

    database_url: str | None = None
    workers: int = 2
    env_overrides: dict = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    tls: bool = False  # serve https itself with a self-signed certificate made at start
    command: str | None = None  # the oidc-provider script; default: the one beside this Python
    cwd: str | None = None  # the working directory of every command (relative SQLite paths)
    serve_options: tuple[str, ...] = ()  # more options for ``serve``, e.g. ("--migrate",)

    def __post_init__(self):
        # ``url``: where this process listens; ``issuer``: what it calls itself (the same
        # unless it is a ``twin`` of another instance).
        self.url = f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"
        self.issuer = self.url
        self.workdir = Path(tempfile.mkdtemp(prefix="oidc-live-"))
        self.certfile = self.workdir / "cert.pem" if self.tls else None
        self.process: subprocess.Popen | None = None
        self._scratch: ScratchPostgres | None = None
        self._log = None

    # ---- environment ----
    def _database(self) -> str:
        url = self.database_url
        if url and url.startswith("postgresql"):
            self._scratch = ScratchPostgres(url)
            return self._scratch.create()
        if url:
            return url
        return f"sqlite:///{self.workdir / 'provider.db'}"

    def _env(self) -> dict:
        env = {k: v for k, v in os.environ.items() if not k.startswith("OIDC_")}
        env.update(CHEAP_ARGON2)
        env.update({
            "OIDC_ISSUER": self.issuer,
            "OIDC_SECRET_KEY": secrets.token_urlsafe(48),
            "OIDC_DATABASE_URL": self.db_url,
            "OIDC_LOG_LEVEL": "WARNING",
        })
        env.update(self.env_overrides)
        return env

    # ---- the operator CLI ----
    def cli(self, *args: str, stdin: str | None = None, as_json: bool = True):
        command = [self.command or _cli_path(), *args, *(["--json"] if as_json else [])]
        done = subprocess.run(command, input=stdin, env=self.env, capture_output=True, text=True,
                              timeout=120, check=False, cwd=self.cwd)
        if done.returncode != 0:
            raise LiveServerError(f"`oidc-provider {' '.join(args)}` failed ({done.returncode}): "
                                  f"{done.stderr.strip() or done.stdout.strip()}")
        return json.loads(done.stdout) if as_json else done.stdout

    def popen_cli(self, *args: str) -> subprocess.Popen:
        """A CLI command started, not waited for (``communicate()`` gives its output)."""
        return subprocess.Popen([self.command or _cli_path(), *args], env=self.env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True, cwd=self.cwd)

    def prepare(self) -> LiveServer:
        if self.tls:
            _self_signed_certificate(self.certfile, self.workdir / "key.pem")
        self.db_url = self._database()
        self.env = self._env()
        self.cli("init")
        return self

    def create_user(self, username: str, password: str, *, email: str | None = None,
                    name: str | None = None) -> dict:
        return self.cli("user", "create", username, "--email", email or f"{username}@example.com",
                        "--name", name or username.title(), "--email-verified", "--password-stdin",
                        stdin=password + "\n")

    def create_client(self, name: str, redirect_uris: list[str], *,
                      post_logout_redirect_uris: list[str] = (), grants: list[str] = (),
                      auth_method: str | None = None, extra: list[str] = ()) -> dict:
        args = ["client", "create", "--name", name]
        for uri in redirect_uris:
            args += ["--redirect-uri", uri]
        for uri in post_logout_redirect_uris:
            args += ["--post-logout-redirect-uri", uri]
        for grant in grants:
            args += ["--grant", grant]
        if auth_method:
            args += ["--auth-method", auth_method]
        return self.cli(*args, *extra)

    def create_service(self, name: str) -> dict:
        return self.cli("service", "create", name)

    # ---- the server process ----
    def start(self) -> LiveServer:
        self._log = open(self.workdir / "serve.log", "wb")
        self.process = subprocess.Popen(
            [self.command or _cli_path(), "serve", "--host", "127.0.0.1", "--port", str(self.port),
             "--workers", str(self.workers),
             *(["--certfile", str(self.certfile), "--keyfile", str(self.workdir / "key.pem")] if self.tls else []),
             *self.serve_options],
            env=self.env, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=self.cwd,
            start_new_session=True,  # its own process group, so stop() reaches the workers too
        )
        self._wait_until_ready()
        return self

    def _wait_until_ready(self) -> None:
        url = self.url + "/.well-known/openid-configuration"
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise LiveServerError(f"oidc-provider serve exited with {self.process.returncode}:\n"
                                      + self.log_tail())
            try:
                context = ssl.create_default_context(cafile=str(self.certfile)) if self.tls else None
                with urllib.request.urlopen(url, timeout=2, context=context) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.2)
        raise LiveServerError(f"{url} did not answer within {START_TIMEOUT:.0f} s:\n" + self.log_tail())

    def log_text(self) -> str:
        """Everything ``serve`` has written so far (standard output and error)."""
        path = self.workdir / "serve.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=STOP_TIMEOUT)
        if self._log is not None:
            self._log.close()
            self._log = None
        if self._scratch is not None:
            self._scratch.drop()
            self._scratch = None
        shutil.rmtree(self.workdir, ignore_errors=True)

    def twin(self) -> LiveServer:
        """A second instance of this provider, as behind a load balancer: its own process and
        port (``url``) on the same database, secret key and issuer. Call ``start()`` after this
        instance's ``prepare()``; its ``stop()`` leaves the shared database alone."""
        other = LiveServer(database_url=self.db_url, workers=self.workers, tls=self.tls,
                           command=self.command, cwd=self.cwd, serve_options=self.serve_options)
        if self.tls:
            shutil.copy(self.certfile, other.certfile)
            shutil.copy(self.workdir / "key.pem", other.workdir / "key.pem")
        other.db_url = self.db_url
        other.env = dict(self.env)
        other.issuer = self.issuer
        return other

    def __enter__(self) -> LiveServer:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def _self_signed_certificate(certfile: Path, keyfile: Path) -> None:
    """A throwaway certificate for 127.0.0.1, made at start (no key is ever committed)."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                       critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    certfile.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    keyfile.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    keyfile.chmod(0o600)
