"""The production install as the operator guide gives it: a wheel built from the checkout,
installed (not editable) into a fresh virtual environment outside the checkout, then ``init``,
``user create``, ``client create`` and ``serve`` run from yet another directory with the
default relative SQLite URL, and one person signs in through an RP (OpenID Connect Core §3.1).

It proves that migrations, templates and static files ship inside the package, and that a
relative ``sqlite:///instance/...`` path is the working directory's, not the package's.
"""

from __future__ import annotations

import secrets
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import requests
from live import LiveServer  # conformance/live.py, on sys.path via tests/e2e/conftest.py

from ._deployed import clean_checkout, sign_in
from .conftest import REDIRECT_URI, ROOT, TIMEOUT

pytestmark = pytest.mark.e2e

PIP_TIMEOUT = 600


def run(*command, cwd=None):
    # Never from the checkout: `python -c` puts the working directory first on sys.path.
    done = subprocess.run([str(c) for c in command], cwd=cwd or tempfile.gettempdir(), capture_output=True, text=True,
                          timeout=PIP_TIMEOUT, check=False, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, f"{command}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """``pip wheel .`` then ``pip install <wheel>`` into a new venv; returns its bin/."""
    base = tmp_path_factory.mktemp("wheel-install")
    dist = base / "dist"
    # Build from a copy of the tracked files, as a clean clone would (no .venv, no build/).
    source = clean_checkout(base / "source")
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", dist, source)
    wheels = list(dist.glob("oidc_provider-*.whl"))
    assert len(wheels) == 1, wheels
    venv = base / "venv"
    run(sys.executable, "-m", "venv", venv)
    run(venv / "bin" / "python", "-m", "pip", "install", "-q", wheels[0])
    return venv / "bin"


def test_the_wheel_holds_migrations_templates_and_static_files(installed):
    listing = run(installed / "python", "-c",
                  "import oidc_provider, pathlib; p = pathlib.Path(oidc_provider.__file__).parent; "
                  "print('\\n'.join(str(f.relative_to(p)) for f in p.rglob('*') if f.is_file()))").stdout
    files = set(listing.split())
    for needed in ("migrations/alembic.ini", "migrations/env.py", "migrations/script.py.mako",
                   "migrations/versions/0001_initial_schema.py", "templates/base.html",
                   "templates/login/login.html", "templates/static/site.css", "templates/static/passkeys.js",
                   "wsgi.py"):
        assert needed in files, needed
    where = run(installed / "python", "-c", "import oidc_provider; print(oidc_provider.__file__)").stdout
    assert "site-packages" in where and str(ROOT) not in where, where  # the wheel, not the checkout


def test_init_serve_and_sign_in_from_another_directory(installed, tmp_path):
    """The default ``OIDC_DATABASE_URL`` (``sqlite:///instance/oidc-provider.db``) lands in the
    working directory of the commands, here ``tmp_path/site``; the server signs a person in."""
    site = tmp_path / "site"
    site.mkdir()
    server = LiveServer(database_url="sqlite:///instance/oidc-provider.db", command=str(installed / "oidc-provider"),
                        cwd=str(site), workers=1)
    try:
        server.prepare()
        assert (site / "instance" / "oidc-provider.db").is_file()
        password = secrets.token_urlsafe(18)
        server.create_user("alice", password)
        client = server.create_client("Installed", [REDIRECT_URI])
        server.start()

        claims = sign_in(server.issuer, client, "alice", password)
        assert claims["preferred_username"] == "alice"
        page = requests.get(server.issuer + "/static/site.css", timeout=TIMEOUT)
        assert page.status_code == 200 and page.text.strip()
    finally:
        server.stop()
