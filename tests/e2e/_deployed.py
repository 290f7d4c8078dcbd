"""Running the provider the way deploy/ runs it, on this machine: as an unprivileged uid,
from a venv that uid can execute, then checking from the outside what a service manager or a
container engine would (the processes' uids, the endpoint, a sign-in)."""

from __future__ import annotations

import os
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import requests
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session
from live import START_TIMEOUT  # conformance/live.py

from .conftest import REDIRECT_URI, ROOT, TIMEOUT, Live, LiveBrowser


def as_user(uid: int | None, gid: int | None) -> list[str]:
    """The prefix that runs a command as ``uid:gid`` (no supplementary groups, no way to gain
    privileges) when we are root; nothing when we are not root already."""
    if os.geteuid() != 0 or uid is None:
        return []
    return ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups", "--no-new-privs"]


def python_for(uid: int | None, gid: int | None, candidates: list[str]) -> str:
    """The first of ``candidates`` that ``uid`` can run with ``venv`` (the interpreter of a
    venv that uid will use: the tests' own may live under a home only root can enter)."""
    for candidate in candidates:
        done = subprocess.run([*as_user(uid, gid), candidate, "-c", "import ensurepip, venv"],
                              capture_output=True, timeout=60, check=False)
        if done.returncode == 0:
            return candidate
    raise AssertionError(f"no Python 3 here that uid {uid} can run with venv and ensurepip: {candidates}")


def public_directory(prefix: str) -> Path:
    """A new directory other uids can enter (pytest's tmp_path sits in a root-only one)."""
    import tempfile

    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o755)
    return path


def clean_checkout(target: Path) -> Path:
    """The tracked (and new, not ignored) files of the checkout, as a clean clone has them."""
    listing = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                             capture_output=True, check=True).stdout
    for name in filter(None, listing.decode().split("\0")):
        source = ROOT / name
        if source.is_file() and not name.startswith(("tests/", "conformance/node_modules")):
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            (target / name).write_bytes(source.read_bytes())
    return target


def uids(pid: int) -> set[int]:
    """The real, effective, saved and filesystem uids of a process."""
    status = Path(f"/proc/{pid}/status").read_text()
    return {int(n) for n in next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1:]}


def children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(entry.name))
    return out


def workers(pid: int, count: int) -> list[int]:
    """gunicorn's ``count`` workers, children of ``pid``, once all are forked (bounded wait)."""
    deadline = time.monotonic() + START_TIMEOUT
    while len(found := children(pid)) < count and time.monotonic() < deadline:
        time.sleep(0.2)
    assert len(found) == count, found
    return found


def wait_for(url: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        assert process.poll() is None, f"serve exited with {process.returncode}:\n{log.read_text()[-3000:]}"
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.2)
    raise AssertionError(f"{url} did not answer within {START_TIMEOUT} s:\n{log.read_text()[-3000:]}")


def sign_in(issuer: str, client: dict, username: str, password: str) -> dict:
    """One authorization code flow with PKCE (OpenID Connect Core §3.1); the UserInfo claims."""
    live = Live(issuer=issuer, user=username, password=password)
    metadata = live.metadata()
    rp = OAuth2Session(client["client_id"], client["client_secret"], scope="openid profile",
                       redirect_uri=REDIRECT_URI, code_challenge_method="S256")
    verifier = generate_token(48)
    url, _ = rp.create_authorization_url(metadata["authorization_endpoint"], code_verifier=verifier,
                                         nonce=generate_token(20))
    callback = LiveBrowser(live).authorize(url)
    token = rp.fetch_token(metadata["token_endpoint"], authorization_response=callback, code_verifier=verifier)
    return requests.get(metadata["userinfo_endpoint"], timeout=TIMEOUT,
                        headers={"Authorization": f"Bearer {token['access_token']}"}).json()
