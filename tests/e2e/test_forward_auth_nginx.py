"""Forward-auth behind the real nginx (issue 5: "a test runs the real nginx (Debian package) in
front of a tiny app on loopback"): nginx's ``auth_request`` asks a live ``oidc-provider serve``
about each request; the app echoes what nginx passed it.

The nginx configuration is the snippet in docs/forward-auth.md, with only its host names and
ports replaced, so the documentation stays true. Everything listens on 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from live import LiveServer, free_port  # conformance/live.py, on sys.path via tests/e2e/conftest.py

from .conftest import ROOT, TIMEOUT, Live, LiveBrowser

DOC = ROOT / "docs" / "forward-auth.md"
AUDIENCE = "https://app.example.test"
ACTION = "http:access"
READY_TIMEOUT = 15.0


class Echo(BaseHTTPRequestHandler):
    """The app behind nginx: answers with the method, path, body and headers it received."""

    def _echo(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        data = json.dumps({"method": self.command, "path": self.path, "body": body,
                           "headers": {k.lower(): v for k, v in self.headers.items()}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = _echo

    def log_message(self, *args):
        pass


def nginx_conf(workdir: Path, port: int, app_port: int, provider: str) -> str:
    """The documented snippet, pointed at this test's ports, inside a minimal nginx.conf whose
    temporary files stay in ``workdir`` (the Debian build's defaults are under /var/lib/nginx)."""
    text = DOC.read_text()
    start = text.index("```nginx\n") + len("```nginx\n")
    snippet = text[start:text.index("```", start)]
    for old, new in [("listen 443 ssl;", f"listen 127.0.0.1:{port};"),
                     ("X-Forwarded-Host app.example.com;", f"X-Forwarded-Host 127.0.0.1:{port};"),
                     ("http://127.0.0.1:8000", provider),
                     ("http://127.0.0.1:3000", f"http://127.0.0.1:{app_port}")]:
        assert snippet.count(old) == 1, f"docs/forward-auth.md's nginx snippet no longer has {old!r} once"
        snippet = snippet.replace(old, new)
    temp = "\n".join(f"    {kind}_temp_path {workdir / kind};" for kind in
                     ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    return f"events {{}}\nhttp {{\n{temp}\n    access_log off;\n{snippet}\n}}\n"


def _nginx_binary() -> str:
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
    assert found, "nginx is not installed (bin/test installs the Debian package)"
    return found


def _wait_for_port(port: int, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"nginx exited with {process.returncode}:\n{log.read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"nginx did not listen on {port} within {READY_TIMEOUT:.0f} s:\n{log.read_text()}")


def _roles_and_tokens(server: LiveServer) -> dict:
    """Roles and personal tokens, written to the live server's database the way the services
    do it (create_app on the server's own settings)."""
    from oidc_provider import create_app
    from oidc_provider.access import personal_tokens
    from oidc_provider.access import roles as role_service
    from oidc_provider.admin.accounts import find_account
    from oidc_provider.extensions import db
    from oidc_provider.settings import Settings

    app = create_app(Settings.from_env(server.env))
    with app.app_context():
        role_service.define("app-user", role_service.parse_statements(
            [{"audience": AUDIENCE, "actions": [ACTION], "resources": ["/public*"]}]))
        role_service.grant(find_account("alice"), "app-user")
        tokens = {name: personal_tokens.create(find_account(name), audience=AUDIENCE)[1] for name in ("alice", "bob")}
        db.session.commit()
        db.session.remove()
        db.engine.dispose()
    return tokens


@pytest.fixture(scope="module")
def stack():
    port, app_port = free_port(), free_port()
    url = f"http://127.0.0.1:{port}"
    rules = {f"127.0.0.1:{port}": {"audience": AUDIENCE, "action": ACTION}}
    server = LiveServer(database_url=os.environ.get("OIDC_TEST_DATABASE_URL"),
                        env_overrides={"OIDC_FORWARD_AUTH": json.dumps(rules)})
    app = ThreadingHTTPServer(("127.0.0.1", app_port), Echo)
    workdir = Path(tempfile.mkdtemp(prefix="oidc-nginx-"))
    workdir.chmod(0o755)  # nginx workers may run as another user when the tests run as root
    nginx = None
    try:
        server.prepare()
        password = "forward-auth-" + os.urandom(8).hex()
        server.create_user("alice", password, name="Alice Example")
        server.create_user("bob", password)
        tokens = _roles_and_tokens(server)
        server.start()
        threading.Thread(target=app.serve_forever, daemon=True).start()
        conf = workdir / "nginx.conf"
        conf.write_text(nginx_conf(workdir, port, app_port, server.issuer))
        log = workdir / "nginx.log"
        with open(log, "wb") as err:
            nginx = subprocess.Popen(
                [_nginx_binary(), "-p", str(workdir), "-c", str(conf),
                 "-g", f"daemon off; pid {workdir / 'nginx.pid'}; error_log stderr;"],
                stdout=err, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        _wait_for_port(port, nginx, log)
        yield {"url": url, "issuer": server.issuer, "tokens": tokens,
               "live": Live(issuer=server.issuer, user="alice", password=password)}
    finally:
        if nginx is not None:
            nginx.terminate()
            try:
                nginx.wait(timeout=10)
            except subprocess.TimeoutExpired:
                nginx.kill()
                nginx.wait(timeout=10)
        app.shutdown()
        app.server_close()
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def _echoed(response) -> dict:
    assert response.status_code == 200, (response.status_code, response.text[:300])
    return response.json()


def test_a_personal_token_with_the_role_reaches_the_app_with_who_it_is(stack):
    response = requests.get(stack["url"] + "/public/report?week=3", timeout=TIMEOUT, headers={
        "Authorization": f"Bearer {stack['tokens']['alice']}",
        "X-Auth-User": "mallory", "X-Auth-Context": '{"roles":["admin"]}'})  # forged: replaced by nginx
    seen = _echoed(response)
    assert (seen["method"], seen["path"]) == ("GET", "/public/report?week=3")
    assert seen["headers"]["x-auth-user"] == "alice"
    assert seen["headers"]["x-auth-email"] == "alice@example.com"
    assert json.loads(seen["headers"]["x-auth-context"]) == {
        "roles": ["app-user"], "statements": [{"actions": [ACTION], "resources": ["/public*"]}]}


def test_a_personal_token_without_the_role_is_forbidden(stack):
    response = requests.get(stack["url"] + "/public/report", timeout=TIMEOUT,
                            headers={"Authorization": f"Bearer {stack['tokens']['bob']}"})
    assert response.status_code == 403


def test_rfc6750_3_1_an_invalid_token_is_refused_with_the_providers_challenge(stack):
    response = requests.get(stack["url"] + "/public/report", timeout=TIMEOUT,
                            headers={"Authorization": "Bearer oidcpat_" + "x" * 43})
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith('Bearer realm="forward-auth", error="invalid_token"')


def test_rfc6750_3_1_an_api_client_without_credentials_gets_a_bare_401(stack):
    response = requests.get(stack["url"] + "/public/report", timeout=TIMEOUT, allow_redirects=False,
                            headers={"Accept": "application/json"})
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="forward-auth"'
    assert "Location" not in response.headers


def test_a_browser_without_a_session_is_sent_to_the_providers_login_page(stack):
    response = requests.get(stack["url"] + "/public/report?week=3", timeout=TIMEOUT, allow_redirects=False,
                            headers={"Accept": "text/html,application/xhtml+xml"})
    assert response.status_code == 302
    location = urlsplit(response.headers["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == stack["issuer"] + "/login"
    assert parse_qs(location.query)["next"] == [stack["url"] + "/public/report?week=3"]


def test_a_browser_signs_in_comes_back_and_its_session_cookie_lets_it_through(stack):
    browser = LiveBrowser(stack["live"])
    browser.http.cookies.set("theme", "dark", domain="127.0.0.1")  # the app's own cookie
    back = browser.go(stack["url"] + "/public/report?week=3", headers={"Accept": "text/html"})
    assert browser.pages_seen == ["login"]
    assert (back.status_code, back.headers["Location"]) == (302, stack["url"] + "/public/report?week=3")

    seen = _echoed(browser.http.get(back.headers["Location"], timeout=TIMEOUT, headers={"Accept": "text/html"}))
    assert seen["headers"]["x-auth-user"] == "alice"
    # The provider's session cookie stops at nginx; the app's own cookies go on.
    assert seen["headers"]["cookie"].strip("; ") == "theme=dark"

    # nginx asks with GET (proxy_method) whatever the method; the app gets the real request.
    posted = _echoed(browser.http.post(stack["url"] + "/public/form", data={"a": "1"}, timeout=TIMEOUT))
    assert (posted["method"], posted["body"], posted["headers"]["x-auth-user"]) == ("POST", "a=1", "alice")

    refused = browser.http.get(stack["url"] + "/private", timeout=TIMEOUT, allow_redirects=False,
                               headers={"Accept": "text/html"})
    assert refused.status_code == 403
