"""Throughput and latency of a live ``oidc-provider serve`` on loopback, next to node
oidc-provider (a peer doing the same job) and a floor (an app that does nothing).

    python bench/run.py [--duration S] [--connections C] [--rounds N] [--workers W]
                        [--db sqlite|postgresql] [--server granian|gunicorn] [--no-node]
                        [--volume N] [--rss-requests N] [--only a,b]

Creates a throw-away instance (SQLite file in a temp dir, or a scratch PostgreSQL database),
runs ``oidc-provider init``, creates two service accounts (RS256 and EdDSA access tokens), a
trusted relying party and a user, then starts ``oidc-provider serve --workers W``, node
oidc-provider (bench/node/server.mjs, W cluster workers, configured alike) and the floor
(bench/floor_app.py: one Flask route under the same server settings) on free 127.0.0.1 ports.
Each round runs every scenario on the three, one after the other, the order rotated round by
round. It prints the medians across rounds, the ratio of ours to node and to the floor, and
the median latency of one sequential client; fails (exit 1) on any error response or socket
error; writes bench/results/<stamp>-<db>.json and stops every server whatever happens.
``--volume`` and ``--rss-requests`` add the database-volume and memory-growth measurements.
See bench/README.md.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import math
import os
import platform
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import requests

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
NODE_DIR = BENCH / "node"
CLI = str(Path(sys.executable).with_name("oidc-provider"))
REDIRECT_URI = "http://127.0.0.1:9/cb"  # never contacted: the Location header is read, not followed
SCOPE = "openid profile email"
NODE_RESOURCE = "urn:oidc-bench:api"  # node's default resource: what makes its access tokens JWTs
SEQUENTIAL_TOKENS = 500
SEQUENTIAL_ROUNDTRIPS = 200
WARMUP = 20
SCENARIOS = ("token_cc_eddsa", "token_cc_rs256", "userinfo", "introspect", "discovery", "jwks", "authcode")
VOLUME_BASE = 1000  # rows per table during the main measurement when --volume is given
RSS_SCENARIO = "token_cc_eddsa"


# ---------------------------------------------------------------------------- processes

def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """A server process in its own process group, always terminated by ``stop()``."""

    def __init__(self, name: str, argv: list[str], env: dict, log_path: Path, cwd: Path = ROOT):
        self.name, self.log_path = name, log_path
        self._log = open(log_path, "wb")
        self.proc = subprocess.Popen(argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL,
                                     stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)

    def wait_ready(self, url: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{self.tail()}")
            try:
                if requests.get(url, timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} not ready after {timeout:.0f}s:\n{self.tail()}")

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def processes(self) -> list[dict]:
        """The server's process tree (the master first): pid, role and resident set size."""
        parents = {}
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            parents.setdefault(int(fields[1]), []).append(int(stat.parent.name))
        tree, queue = [], [self.proc.pid]
        while queue:
            pid = queue.pop(0)
            tree.append(pid)
            queue.extend(sorted(parents.get(pid, [])))
        out = []
        for pid in tree:
            rss = _rss_kib(pid)
            if rss is not None:
                out.append({"pid": pid, "role": "master" if pid == self.proc.pid else "worker",
                            "rss_kib": rss})
        return out

    def stop(self) -> None:
        if self.proc.poll() is None:
            # The master (gunicorn, granian, node's cluster primary) stops its workers on
            # SIGTERM; the group catches stragglers.
            for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
                try:
                    os.killpg(self.proc.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    self.proc.wait(timeout=wait)
                    break
                except subprocess.TimeoutExpired:
                    continue
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)  # workers left behind by a dead master
        except (ProcessLookupError, PermissionError):
            pass
        self._log.close()


def _rss_kib(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def cli(env: dict, *args: str, stdin: str | None = None) -> dict | None:
    result = subprocess.run([CLI, *args], env=env, cwd=ROOT, input=stdin, capture_output=True,
                            text=True, timeout=120)
    if result.returncode != 0:
        raise RuntimeError(f"oidc-provider {' '.join(args)} failed:\n{result.stdout}{result.stderr}")
    return json.loads(result.stdout) if "--json" in args else None


def serve_accepts_server() -> bool:
    """Whether the installed ``oidc-provider serve`` has a ``--server`` choice."""
    done = subprocess.run([CLI, "serve", "--help"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    return done.returncode == 0 and re.search(r"^\s+--server\b", done.stdout, re.M) is not None


# ---------------------------------------------------------------------------- database

class PostgresScratch:
    def __init__(self, server: str):
        self.server = server
        self.name = f"oidc_bench_{os.getpid()}_{secrets.token_hex(3)}"

    def _admin(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(f"postgresql://{self.server}/postgres", autocommit=True) as conn:
            conn.execute(sql)

    def __enter__(self) -> str:
        self._admin(f'CREATE DATABASE "{self.name}"')
        return f"postgresql+psycopg://{self.server}/{self.name}"

    def __exit__(self, *exc) -> None:
        self._admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


# ---------------------------------------------------------------------------- setup

def basic(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def set_client_alg(database_url: str, client_id: str, alg: str) -> None:
    """The client's id_token_signed_response_alg, which also selects its access tokens' alg.
    ``client update --id-token-alg`` refuses a system account's client and ``service update``
    has no such option, so the bench sets the column itself (before the server starts)."""
    import sqlalchemy as sa

    engine = sa.create_engine(database_url)
    try:
        with engine.begin() as conn:
            done = conn.execute(sa.text("UPDATE client SET id_token_signed_response_alg = :alg "
                                        "WHERE client_id = :client_id"), {"alg": alg, "client_id": client_id})
            if done.rowcount != 1:
                raise RuntimeError(f"client {client_id} not found to set its alg")
    finally:
        engine.dispose()


def provision(env: dict) -> dict:
    """Create what the scenarios need with the operator's own commands."""
    cli(env, "init", "--json")
    services = {}
    for alg in ("RS256", "EdDSA"):
        created = cli(env, "service", "create", f"bench-{alg.lower()}", "--json")
        if alg != "RS256":
            set_client_alg(env["OIDC_DATABASE_URL"], created["client_id"], alg)
        services[alg] = (created["client_id"], created["client_secret"])
    rp = cli(env, "client", "create", "--name", "bench-rp", "--redirect-uri", REDIRECT_URI,
             "--trusted", "--json")
    password = secrets.token_urlsafe(18)
    cli(env, "user", "create", "bench", "--email", "bench@example.com", "--email-verified",
        "--password-stdin", "--json", stdin=password + "\n")
    return {"services": services, "rp": (rp["client_id"], rp["client_secret"]),
            "user": ("bench", password)}


def log_in(base: str, username: str, password: str) -> str:
    """Log in once through the login form; returns the Cookie header later requests send."""
    browser = requests.Session()
    page = browser.get(f"{base}/login", timeout=10)
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page.text) or \
        re.search(r'value="([^"]+)"[^>]*name="csrf_token"', page.text)
    if page.status_code != 200 or match is None:
        raise RuntimeError(f"login page: {page.status_code}")
    done = browser.post(f"{base}/login", data={"csrf_token": match.group(1), "username": username,
                                               "password": password}, allow_redirects=False, timeout=30)
    if done.status_code != 302 or "oidc_session" not in browser.cookies:
        raise RuntimeError(f"login failed: {done.status_code} {done.text[:200]}")
    return f"oidc_session={browser.cookies['oidc_session']}"


class CodeFlow:
    """Everything an authorize -> code -> token round trip sends."""

    def __init__(self, base: str, rp: tuple[str, str], cookie: str = ""):
        self.base, self.rp_id = base, rp[0]
        self.verifier, challenge = pkce_pair()
        self.authorize_path = "/authorize?" + urlencode({
            "response_type": "code", "client_id": rp[0], "redirect_uri": REDIRECT_URI, "scope": SCOPE,
            "state": "bench-state", "nonce": "bench-nonce", "code_challenge": challenge,
            "code_challenge_method": "S256",
        })
        self.cookie = cookie
        self.token_body = urlencode({"grant_type": "authorization_code", "redirect_uri": REDIRECT_URI,
                                     "code_verifier": self.verifier}) + "&code="
        self.authorization = basic(*rp)

    def round_trip(self, http: requests.Session) -> dict:
        answer = http.get(self.base + self.authorize_path, headers={"Cookie": self.cookie},
                          allow_redirects=False, timeout=10)
        location = answer.headers.get("Location", "")
        code = parse_qs(urlsplit(location).query).get("code")
        if answer.status_code not in (302, 303) or not code:  # node answers 303 See Other
            raise RuntimeError(f"authorize: {answer.status_code} {location[:200]}")
        token = http.post(self.base + "/token", data=self.token_body + code[0],
                          headers={"Authorization": self.authorization,
                                   "Content-Type": "application/x-www-form-urlencoded"}, timeout=10)
        if token.status_code != 200 or "id_token" not in token.json():
            raise RuntimeError(f"token: {token.status_code} {token.text[:200]}")
        return token.json()


def client_credentials(base: str, http: requests.Session, client: tuple[str, str]) -> requests.Response:
    return http.post(f"{base}/token", data="grant_type=client_credentials",
                     headers={"Authorization": basic(*client),
                              "Content-Type": "application/x-www-form-urlencoded"}, timeout=10)


# ---------------------------------------------------------------------------- node oidc-provider

def node_version() -> dict:
    package = NODE_DIR / "node_modules" / "oidc-provider" / "package.json"
    node = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()
    try:
        provider = json.loads(package.read_text())["version"]
    except OSError:
        provider = None
    return {"node": node, "oidc-provider": provider}


def node_install() -> None:
    """``npm ci`` in bench/node when its node_modules is missing (the lockfile is committed)."""
    if (NODE_DIR / "node_modules" / "oidc-provider" / "package.json").exists():
        return
    print("npm ci in bench/node ...", flush=True)
    done = subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=NODE_DIR, capture_output=True,
                          text=True, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"npm ci failed in {NODE_DIR}:\n{done.stdout}{done.stderr}")


def node_start(tmp: Path, port: int, workers: int) -> tuple[Server, dict]:
    """Start bench/node/server.mjs with fresh clients; returns it and what the scenarios need."""
    clients = {name: (f"bench-{name.replace('_', '-')}", secrets.token_urlsafe(32))
               for name in ("service_rs256", "service_eddsa", "service_opaque", "rp", "rp_opaque")}
    base = f"http://127.0.0.1:{port}"
    config = {"issuer": base, "clients": clients, "redirect_uri": REDIRECT_URI, "resource": NODE_RESOURCE,
              "account": {"sub": "bench", "email": "bench@example.com", "name": "Bench User"}}
    path = tmp / "node.json"
    path.write_text(json.dumps(config))
    env = {**os.environ, "NODE_ENV": "production"}
    server = Server("node oidc-provider", ["node", str(NODE_DIR / "server.mjs"), "--host", "127.0.0.1",
                                           "--port", str(port), "--workers", str(workers),
                                           "--config", str(path)], env, tmp / "node.log", cwd=NODE_DIR)
    return server, {"base": base, "clients": clients}


def node_log_in(base: str, rp: tuple[str, str]) -> str:
    """Log the bench user in at node (its interaction page completes at once); returns the
    Cookie header of the logged-in session."""
    browser = requests.Session()
    url = base + CodeFlow(base, rp).authorize_path
    for _ in range(6):
        answer = browser.get(url, allow_redirects=False, timeout=10)
        location = answer.headers.get("Location", "")
        if answer.status_code not in (302, 303) or not location:
            raise RuntimeError(f"node login: {answer.status_code} {answer.text[:200]}")
        if location.startswith(REDIRECT_URI):
            break
        url = location if location.startswith("http") else base + location
    else:
        raise RuntimeError("node login: too many redirects")
    return "; ".join(f"{c.name}={c.value}" for c in browser.cookies if c.path == "/")


# ---------------------------------------------------------------------------- targets

@dataclass
class Target:
    """One OpenID provider under test and the credentials its scenarios send."""

    name: str
    base: str
    services: dict  # alg -> (client_id, secret): client_credentials clients
    flow: CodeFlow  # the authcode scenario
    user_flow: CodeFlow  # gives the token for userinfo
    introspector: tuple[str, str]  # introspects a token of its own
    user_token: str = ""
    service_token: str = ""

    def prepare(self) -> None:
        """Get a user and a service token and check that userinfo and introspection take them."""
        self.user_token = self.user_flow.round_trip(requests.Session())["access_token"]
        self.flow.round_trip(requests.Session())
        self.service_token = client_credentials(self.base, requests.Session(),
                                                self.introspector).json()["access_token"]
        for alg, client in self.services.items():
            token = client_credentials(self.base, requests.Session(), client).json()["access_token"]
            header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
            if header.get("alg") != alg:
                raise RuntimeError(f"{self.name}: {alg} client got a {header.get('alg')} access token")
        userinfo = requests.get(f"{self.base}/userinfo", timeout=10,
                                headers={"Authorization": f"Bearer {self.user_token}"})
        introspect = requests.post(f"{self.base}/introspect", data={"token": self.service_token}, timeout=10,
                                   headers={"Authorization": basic(*self.introspector)})
        if userinfo.status_code != 200 or introspect.json().get("active") is not True:
            raise RuntimeError(f"{self.name}: sanity check failed: userinfo {userinfo.status_code} "
                               f"{userinfo.text[:200]}; introspect {introspect.text[:200]}")

    def scenarios(self) -> dict:
        """name -> wrk keyword arguments."""
        rs, ed = self.services["RS256"], self.services["EdDSA"]
        flow = self.flow
        return {
            "token_cc_eddsa": dict(url=f"{self.base}/token", script="post.lua",
                                   args=("grant_type=client_credentials", basic(*ed))),
            "token_cc_rs256": dict(url=f"{self.base}/token", script="post.lua",
                                   args=("grant_type=client_credentials", basic(*rs))),
            "userinfo": dict(url=f"{self.base}/userinfo",
                             headers=(f"Authorization: Bearer {self.user_token}",)),
            "introspect": dict(url=f"{self.base}/introspect", script="post.lua",
                               args=(urlencode({"token": self.service_token}), basic(*self.introspector))),
            "discovery": dict(url=f"{self.base}/.well-known/openid-configuration"),
            "jwks": dict(url=f"{self.base}/jwks.json"),
            "authcode": dict(url=self.base + flow.authorize_path, script="authcode.lua",
                             args=(flow.authorize_path, flow.cookie, flow.token_body, flow.authorization)),
        }


DESCRIBE = {
    "token_cc_eddsa": "POST /token client_credentials, Basic auth, EdDSA JWT access token",
    "token_cc_rs256": "POST /token client_credentials, Basic auth, RS256 JWT access token",
    "userinfo": "GET /userinfo with a user's bearer token (ours: RS256 JWT; node: opaque)",
    "introspect": "POST /introspect of a service's access token by that service (ours: JWT; node: opaque)",
    "discovery": "GET /.well-known/openid-configuration",
    "jwks": "GET /jwks.json",
    "authcode": "authorize -> code -> token (PKCE, RS256 ID token), logged-in session; req/s = round trips/s",
    "floor": "GET /ok on the floor app (same server settings as ours)",
}


def sequential(target: Target) -> dict:
    """One client, one request at a time: median and p99 of the full response time (ms)."""
    out = {}
    http = requests.Session()
    for alg, client in target.services.items():
        times = []
        for i in range(WARMUP + SEQUENTIAL_TOKENS):
            start = time.perf_counter()
            response = client_credentials(target.base, http, client)
            elapsed = (time.perf_counter() - start) * 1e3
            if response.status_code != 200:
                raise RuntimeError(f"{target.name} token: {response.status_code} {response.text[:200]}")
            if i >= WARMUP:
                times.append(elapsed)
        out[f"token_cc_{alg.lower()}"] = _summary(times)
    times = []
    for i in range(WARMUP + SEQUENTIAL_ROUNDTRIPS):
        start = time.perf_counter()
        target.flow.round_trip(http)
        if i >= WARMUP:
            times.append((time.perf_counter() - start) * 1e3)
    out["authcode"] = _summary(times)
    return out


def _summary(times: list[float]) -> dict:
    ordered = sorted(times)
    return {"count": len(times), "p50_ms": round(statistics.median(ordered), 3),
            "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))], 3)}


# ---------------------------------------------------------------------------- wrk

UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()
    return float(number) * UNITS[unit]


def parse_wrk(output: str) -> dict:
    """Requests/s, p50/p99 (ms), request and error counts from ``wrk --latency`` output."""
    result = {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),
        "p50_ms": _ms(re.search(r"^\s+50%\s+(\S+)", output, re.M).group(1)),
        "p99_ms": _ms(re.search(r"^\s+99%\s+(\S+)", output, re.M).group(1)),
    }
    total = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)", output)
    result["requests"] = int(total.group(1))
    result["seconds"] = _ms(total.group(2) + total.group(3)) / 1e3
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    result["non_2xx_3xx"] = int(bad.group(1)) if bad else 0
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    result["socket_errors"] = sum(int(g) for g in sock.groups()) if sock else 0
    result["errors"] = result["non_2xx_3xx"] + result["socket_errors"]
    trips = re.search(r"BENCH roundtrips=(\d+) failures=(\d+)", output)
    if trips:
        result["http_rps"] = result["rps"]
        result["roundtrips"], result["failures"] = int(trips.group(1)), int(trips.group(2))
        result["rps"] = result["roundtrips"] / result["seconds"]
        result["errors"] += result["failures"]
    return result


def wrk(url: str, *, duration: int, connections: int, script: str | None = None,
        args: tuple[str, ...] = (), headers: tuple[str, ...] = ()) -> dict:
    argv = ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--timeout", "10s", "--latency"]
    for header in headers:
        argv += ["-H", header]
    if script:
        argv += ["-s", str(BENCH / script)]
    argv.append(url)
    if args:
        argv += ["--", *args]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 60)
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr}")
    try:
        return parse_wrk(done.stdout)
    except (AttributeError, ValueError) as exc:
        raise RuntimeError(f"cannot parse wrk output:\n{done.stdout}\n{done.stderr}") from exc


def start_py_spy(spy: str, server: Server, duration: int, out: Path):
    """Sample the first worker of ``server`` for most of one wrk run (collapsed stacks)."""
    children = [p["pid"] for p in server.processes() if p["role"] == "worker"]
    if not children:
        raise RuntimeError("no worker to sample")
    argv = [spy, "record", "--pid", str(children[0]), "--duration", str(max(1, duration - 1)), "--rate", "250",
            "--format", "raw", "--nonblocking", "--output", str(out)]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True), out


def finish_py_spy(proc: subprocess.Popen, out: Path) -> str:
    try:
        log, _ = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        log, _ = proc.communicate()
    if proc.returncode != 0 or not out.exists():
        return f"py-spy failed ({proc.returncode}): {log.strip()[-500:]}"
    from spy_summary import summarise

    return summarise(out)


# ---------------------------------------------------------------------------- measuring

def measure(make_plans, names: list[str], *, rounds: int, duration: int, connections: int,
            label: str = "", spy: tuple | None = None) -> dict:
    """Every scenario on every peer, ``rounds`` times. ``make_plans()`` gives
    {peer: {scenario: wrk kwargs}} with fresh tokens; it is called at the start of each round,
    so that no token expires during a long run (ours live OIDC_ACCESS_TOKEN_TTL, 15 min).

    Within a round each scenario runs on the peers one after the other, the peers' order rotated
    round by round (ours/node/floor, node/floor/ours, ...) and the scenarios' order reversed every
    other round, so that drift on a shared machine hits every peer alike.
    Returns {scenario: {peer: [wrk result per round]}}."""
    runs = None
    for round_no in range(rounds):
        plans = make_plans()
        peers = list(plans)
        if runs is None:
            runs = {name: {peer: [] for peer in peers} for name in names}
        shift = round_no % len(peers)
        for name in names if round_no % 2 == 0 else names[::-1]:
            for peer in peers[shift:] + peers[:shift]:
                kwargs = plans[peer]["floor"] if peer == "floor" else plans[peer][name]
                sampler = None
                if spy and peer == "ours" and name == spy[0] and round_no == rounds - 1:
                    _, exe, server, prefix, _ = spy
                    sampler = start_py_spy(exe, server, duration, prefix.with_name(f"{prefix.name}-{name}.stacks"))
                result = wrk(duration=duration, connections=connections, **kwargs)
                if sampler is not None:
                    spy[4].append(finish_py_spy(*sampler))
                result["round"] = round_no + 1
                runs[name][peer].append(result)
                print(f"  {label}round {round_no + 1} {name:<15} {peer:<5} {result['rps']:8.0f} req/s  "
                      f"p50 {result['p50_ms']:.2f} ms  p99 {result['p99_ms']:.2f} ms"
                      + (f"  ERRORS {result['errors']}" if result["errors"] else ""), flush=True)
    return runs


def medians(runs: list[dict]) -> dict:
    keys = ("rps", "p50_ms", "p99_ms")
    return {k: round(statistics.median(r[k] for r in runs), 3) for k in keys}


def _ratio(runs: dict, a: str, b: str) -> dict | None:
    """a / b by req/s: the median of the per-round ratios, and the ratio of the medians."""
    if a not in runs or b not in runs:
        return None
    per_round = [x["rps"] / y["rps"] for x, y in zip(runs[a], runs[b], strict=True) if y["rps"]]
    return {"per_round": round(statistics.median(per_round), 3) if per_round else None,
            "of_medians": round(medians(runs[a])["rps"] / medians(runs[b])["rps"], 3)
            if medians(runs[b])["rps"] else None}


def summarise(runs: dict) -> dict:
    out = {}
    for name, by_peer in runs.items():
        entry = {"measures": DESCRIBE[name], "floor_measures": DESCRIBE["floor"]}
        for peer, results in by_peer.items():
            entry[peer] = {"median": medians(results), "rounds": results}
        entry["ours_to_node"] = _ratio(by_peer, "ours", "node")
        entry["ours_to_floor"] = _ratio(by_peer, "ours", "floor")
        entry["node_to_floor"] = _ratio(by_peer, "node", "floor")
        out[name] = entry
    return out


def errors_in(runs: dict, phase: str) -> list[str]:
    return [f"{phase} round {r['round']} {name} {peer}: non-2xx/3xx {r['non_2xx_3xx']}, socket errors "
            f"{r['socket_errors']}, failed round trips {r.get('failures', 0)}"
            for name, by_peer in runs.items() for peer, results in by_peer.items() for r in results
            if r["errors"]]


def rss_growth(servers: dict, make_plans, concurrent: dict, *, requests_wanted: int,
               connections: int) -> dict:
    """RSS of every process of each server before and after about ``requests_wanted`` requests
    of RSS_SCENARIO (wrk runs for as long as the measured median rate needs, +15 %)."""
    out = {}
    for peer, server in servers.items():
        plans = make_plans()
        rate = concurrent[RSS_SCENARIO][peer]["median"]["rps"] if RSS_SCENARIO in concurrent else 500
        before = {p["pid"]: p for p in server.processes()}
        done, seconds, errors = 0, 0.0, 0
        # wrk runs for a time, not a count: run until the count is reached, each run as long as
        # the rate seen so far needs for what is left (+10 %).
        for _ in range(20):
            if done >= requests_wanted:
                break
            duration = min(1800, max(2, math.ceil((requests_wanted - done) * 1.1 / max(rate, 1))))
            print(f"  rss {peer}: {RSS_SCENARIO} for {duration} s ({done}/{requests_wanted} requests so far)",
                  flush=True)
            result = wrk(duration=duration, connections=connections, **plans[peer][RSS_SCENARIO])
            done, seconds, errors = done + result["requests"], seconds + result["seconds"], errors + result["errors"]
            rate = result["requests"] / max(result["seconds"], 0.001)
        after = server.processes()
        rows = []
        for proc in after:
            was = before.get(proc["pid"])
            rows.append({**proc, "rss_before_kib": was["rss_kib"] if was else None,
                         "growth_kib": proc["rss_kib"] - was["rss_kib"] if was else None})
        out[peer] = {"scenario": RSS_SCENARIO, "requests": done, "seconds": round(seconds, 1),
                     "errors": errors, "processes": rows,
                     "restarted": sorted(set(before) - {p["pid"] for p in after})}
    return out


# ---------------------------------------------------------------------------- report

def _pct(ratio: dict | None, key: str = "per_round") -> str:
    return f"{ratio[key]:.0%}" if ratio and ratio.get(key) is not None else "-"


def render(results: dict) -> str:
    concurrent = results["concurrent"]
    has_node = any("node" in e for e in concurrent.values())
    head = f"{'scenario':<15} {'ours req/s':>10} {'p50':>7} {'p99':>7}"
    if has_node:
        head += f" {'node req/s':>10} {'p50':>7} {'p99':>7} {'ours/node':>10} {'(medians)':>9}"
    head += f" {'floor':>7} {'ours/floor':>10}" + (f" {'node/floor':>10}" if has_node else "")
    lines = [head]
    for name, e in concurrent.items():
        o = e["ours"]["median"]
        line = f"{name:<15} {o['rps']:>10.0f} {o['p50_ms']:>7.2f} {o['p99_ms']:>7.2f}"
        if has_node:
            n = e["node"]["median"]
            line += (f" {n['rps']:>10.0f} {n['p50_ms']:>7.2f} {n['p99_ms']:>7.2f}"
                     f" {_pct(e['ours_to_node']):>10} {_pct(e['ours_to_node'], 'of_medians'):>9}")
        line += f" {e['floor']['median']['rps']:>7.0f} {_pct(e['ours_to_floor']):>10}"
        if has_node:
            line += f" {_pct(e['node_to_floor']):>10}"
        lines.append(line)
    lines.append("(p50/p99 in ms; ratios: median of the per-round ratios, '(medians)': ratio of the median "
                 "req/s; authcode: round trips/s, its latencies per HTTP request)")
    lines.append("")
    lines.append("sequential client (one request at a time, one kept-alive connection):")
    for peer, seq in results["sequential"].items():
        for name, entry in seq.items():
            lines.append(f"  {peer:<5} {name:<16} p50 {entry['p50_ms']:.2f} ms   p99 {entry['p99_ms']:.2f} ms   "
                         f"(n={entry['count']})")
    volume = results.get("volume")
    if volume:
        lines.append("")
        lines.append(f"volume: p50 of ours with {volume['base_rows']} vs {volume['rows']} rows per table "
                     f"(fill: {volume['fill_seconds']:.0f} s)")
        for name, v in volume["scenarios"].items():
            lines.append(f"  {name:<15} p50 {v['p50_ms_base']:.2f} -> {v['p50_ms_volume']:.2f} ms "
                         f"({v['p50_change']:+.0%})   req/s {v['rps_base']:.0f} -> {v['rps_volume']:.0f}   "
                         f"floor {v['floor_rps_base']:.0f} -> {v['floor_rps_volume']:.0f}   "
                         f"ours/floor {v['ours_to_floor_base']:.1%} -> {v['ours_to_floor_volume']:.1%}")
    rss = results.get("rss")
    if rss:
        lines.append("")
        lines.append("RSS per process before -> after the long run (MiB):")
        for peer, r in rss.items():
            procs = ", ".join(
                f"{p['role']} {p['pid']}: {p['rss_before_kib'] / 1024:.1f} -> {p['rss_kib'] / 1024:.1f} "
                f"({p['growth_kib'] / 1024:+.1f})" if p["growth_kib"] is not None else
                f"{p['role']} {p['pid']} (new): {p['rss_kib'] / 1024:.1f}" for p in r["processes"])
            lines.append(f"  {peer:<5} {r['requests']} requests of {r['scenario']} in {r['seconds']:.0f} s: {procs}")
    lines.append("")
    for name, entry in results["targets"].items():
        lines.append(f"target {name}: {entry['value']} (want {entry['want']}) -> "
                     f"{'met' if entry['met'] else 'MISSED'}")
    return "\n".join(lines)


def machine(args) -> dict:
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                            text=True).stdout.strip()
    host = {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
            "wrk": subprocess.run(["wrk", "--version"], capture_output=True, text=True).stdout.split("\n")[0]
            .strip(), "load_before": os.getloadavg(), "commit": commit}
    if not args.no_node:
        host.update(node_version())
    return host


def targets_met(concurrent: dict, seq: dict, volume: dict | None) -> dict:
    targets = {}
    for name in ("token_cc_eddsa", "token_cc_rs256"):
        if name in concurrent:
            ratio = concurrent[name]["ours_to_floor"]["per_round"]
            targets[f"{name} throughput / floor"] = {"value": f"{ratio:.0%}", "want": ">= 40%",
                                                     "met": ratio >= 0.40}
        p50 = seq["ours"][name]["p50_ms"]
        targets[f"{name} sequential p50"] = {"value": f"{p50:.2f} ms", "want": "< 5 ms", "met": p50 < 5}
    if volume:
        for name, v in volume["scenarios"].items():
            targets[f"{name} p50 with {volume['rows']} rows"] = {
                "value": f"{v['p50_change']:+.0%}", "want": "within 20 %", "met": v["p50_change"] <= 0.20}
    return targets


# ---------------------------------------------------------------------------- main

def _interrupt(*_):
    raise KeyboardInterrupt


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Benchmark oidc-provider against node oidc-provider and a floor.")
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run (default 5)")
    parser.add_argument("--connections", type=int, default=8, help="wrk connections (default 8)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of every scenario (default 3)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes of each server (default 2)")
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--pg-server", default="postgres@127.0.0.1:5432",
                        help="user@host:port of the PostgreSQL server for --db postgresql")
    parser.add_argument("--server", choices=("granian", "gunicorn"),
                        help="passed to `oidc-provider serve --server` (and used for the floor); only when "
                             "the installed CLI has that option (default: serve's own default)")
    parser.add_argument("--no-node", action="store_true", help="leave node oidc-provider out")
    parser.add_argument("--only", help=f"comma-separated scenarios to run, of: {', '.join(SCENARIOS)}")
    parser.add_argument("--volume", type=int, metavar="N",
                        help=f"measure with {VOLUME_BASE} rows per table, then fill to N accounts, refresh "
                             "tokens, audit events (and access-token records while that table exists) and "
                             "measure ours again")
    parser.add_argument("--rss-requests", type=int, default=0, metavar="N",
                        help=f"after the rounds, RSS of every server process before and after about N "
                             f"{RSS_SCENARIO} requests (e.g. 100000)")
    parser.add_argument("--py-spy", metavar="SCENARIO",
                        help="sample one provider worker with py-spy during SCENARIO's last round and "
                             "summarise where its time went (py-spy must be installed)")
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        parser.error("wrk is not installed (Debian: apt-get install wrk)")
    if not args.no_node and (shutil.which("node") is None or shutil.which("npm") is None):
        parser.error("node and npm are needed for the node peer (or pass --no-node)")
    names = [n for n in (args.only or "").split(",") if n and n != "floor"] or list(SCENARIOS)
    unknown = set(names + [args.py_spy or SCENARIOS[0]]) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenario(s) {', '.join(sorted(unknown))}; choose from {', '.join(SCENARIOS)}")
    names = [n for n in SCENARIOS if n in names]
    if args.volume is not None and args.volume <= VOLUME_BASE:
        parser.error(f"--volume must be more than {VOLUME_BASE}")
    spy = None
    if args.py_spy:
        spy = shutil.which("py-spy", path=f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}")
        if spy is None:
            parser.error("--py-spy needs py-spy (pip install py-spy, into the venv only)")
    serve_extra = []
    if args.server:
        if not serve_accepts_server():
            parser.error("the installed `oidc-provider serve` has no --server option")
        serve_extra = ["--server", args.server]

    # SIGTERM unwinds like Ctrl-C, so the servers and the scratch database are always cleaned up.
    signal.signal(signal.SIGTERM, _interrupt)
    started = datetime.now(timezone.utc)
    host = machine(args)
    if not args.no_node:
        node_install()
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="oidc-bench-")))
        if args.db == "postgresql":
            database_url = stack.enter_context(PostgresScratch(args.pg_server))
        else:
            database_url = f"sqlite:///{tmp}/oidc.db"
        port, floor_port, node_port = free_port(), free_port(), free_port()
        base, floor = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{floor_port}"
        env = {**os.environ, "OIDC_ISSUER": base, "OIDC_SECRET_KEY": secrets.token_urlsafe(48),
               "OIDC_DATABASE_URL": database_url, "OIDC_LOG_LEVEL": "WARNING"}
        print(f"setting up {args.db} instance in {tmp} ...", flush=True)
        setup = provision(env)
        if args.volume:
            from volume import fill

            print(f"filling {VOLUME_BASE} rows per table ...", flush=True)
            fill(database_url, VOLUME_BASE, client_id=setup["rp"][0])

        servers: dict[str, Server] = {}
        stack.callback(lambda: [s.stop() for s in servers.values()])
        servers["ours"] = Server("oidc-provider", [CLI, "serve", "--host", "127.0.0.1", "--port", str(port),
                                                   "--workers", str(args.workers), *serve_extra],
                                 env, tmp / "provider.log")
        servers["floor"] = Server("floor", [sys.executable, str(BENCH / "floor_app.py"), "--host", "127.0.0.1",
                                            "--port", str(floor_port), "--workers", str(args.workers),
                                            *serve_extra], env, tmp / "floor.log")
        if not args.no_node:
            servers["node"], node = node_start(tmp, node_port, args.workers)
        servers["ours"].wait_ready(f"{base}/.well-known/openid-configuration")
        servers["floor"].wait_ready(f"{floor}/ok")

        flow = CodeFlow(base, setup["rp"], log_in(base, *setup["user"]))
        # ours: the service token introspected is the RS256 service's own
        targets = {"ours": Target("ours", base, setup["services"], flow, flow, setup["services"]["RS256"])}
        if not args.no_node:
            servers["node"].wait_ready(f"{node['base']}/.well-known/openid-configuration")
            ids = node["clients"]
            node_cookie = node_log_in(node["base"], ids["rp"])
            targets["node"] = Target("node", node["base"],
                                     {"RS256": ids["service_rs256"], "EdDSA": ids["service_eddsa"]},
                                     CodeFlow(node["base"], ids["rp"], node_cookie),
                                     CodeFlow(node["base"], ids["rp_opaque"], node_cookie),
                                     ids["service_opaque"])
        for target in targets.values():
            target.prepare()

        seq = {}
        for peer, target in targets.items():
            print(f"sequential client, {peer} ...", flush=True)
            seq[peer] = sequential(target)

        def make_plans(peers=tuple(targets)) -> dict:
            plans = {}
            for peer in peers:
                targets[peer].prepare()  # fresh tokens, checked again
                plans[peer] = targets[peer].scenarios()
            plans["floor"] = {"floor": dict(url=f"{floor}/ok")}
            return plans

        out_dir = BENCH / "results"
        out_dir.mkdir(exist_ok=True)
        stamp = f"{started.strftime('%Y%m%dT%H%M%SZ')}-{args.db}"
        profiles: list[str] = []
        # py-spy: (scenario, py-spy executable, server, output path prefix, where summaries go)
        spy_plan = (args.py_spy, spy, servers["ours"], out_dir / stamp, profiles) if spy else None
        runs = measure(make_plans, names, rounds=args.rounds, duration=args.duration,
                       connections=args.connections, spy=spy_plan)
        problems = errors_in(runs, "main")
        concurrent = summarise(runs)

        rss = None
        if args.rss_requests:
            rss = rss_growth({p: servers[p] for p in targets}, make_plans, concurrent,
                             requests_wanted=args.rss_requests, connections=args.connections)
            problems += [f"rss {peer}: {r['errors']} errors" for peer, r in rss.items() if r["errors"]]

        volume = None
        if args.volume:
            from volume import fill

            print(f"filling to {args.volume} rows per table ...", flush=True)
            began = time.monotonic()
            filled = fill(database_url, args.volume - VOLUME_BASE, start=VOLUME_BASE, client_id=setup["rp"][0])
            fill_seconds = time.monotonic() - began
            big = measure(lambda: make_plans(("ours",)), names, rounds=args.rounds,
                          duration=args.duration, connections=args.connections, label="volume ")
            problems += errors_in(big, "volume")
            volume = {"base_rows": VOLUME_BASE, "rows": args.volume, "fill_seconds": round(fill_seconds, 1),
                      "filled": filled, "scenarios": {}}
            for name in names:
                was, now = concurrent[name]["ours"]["median"], medians(big[name]["ours"])
                volume["scenarios"][name] = {
                    "p50_ms_base": was["p50_ms"], "p50_ms_volume": now["p50_ms"],
                    "p50_change": round(now["p50_ms"] / was["p50_ms"] - 1, 3),
                    "rps_base": was["rps"], "rps_volume": now["rps"],
                    "floor_rps_base": concurrent[name]["floor"]["median"]["rps"],
                    "floor_rps_volume": medians(big[name]["floor"])["rps"],
                    # The machine may change between the two phases; the floor shows it, and the
                    # ratio to the floor measured alongside is the steadier comparison.
                    "ours_to_floor_base": concurrent[name]["ours_to_floor"]["per_round"],
                    "ours_to_floor_volume": _ratio(big[name], "ours", "floor")["per_round"],
                    "rounds": big[name]}

        for server in servers.values():
            if server.proc.poll() is not None:
                raise RuntimeError(f"{server.name} died during the run:\n{server.tail()}")

    results = {
        "date": started.isoformat(timespec="seconds"), "command": " ".join([Path(sys.argv[0]).as_posix(),
                                                                           *sys.argv[1:]]),
        "options": {"duration": args.duration, "connections": args.connections, "rounds": args.rounds,
                    "workers": args.workers, "db": args.db, "server": args.server or "serve's default",
                    "wrk_threads": 1, "node": not args.no_node, "volume": args.volume,
                    "rss_requests": args.rss_requests},
        "machine": host, "concurrent": concurrent, "sequential": seq, "volume": volume, "rss": rss,
        "targets": targets_met(concurrent, seq, volume), "errors": problems, "load_after": os.getloadavg(),
    }
    out = out_dir / f"{stamp}.json"
    out.write_text(json.dumps(results, indent=2))
    print()
    print(render(results))
    for text in profiles:
        print(f"\npy-spy, {args.py_spy}, last round:\n{text}")
    print(f"\nresults written to {out.relative_to(ROOT)}")
    if problems:
        print(f"FAILED: {len(problems)} wrk runs had error responses, socket errors or failed round trips:")
        print("\n".join(f"  {p}" for p in problems))
        return 1
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted; servers stopped", file=sys.stderr)
        sys.exit(130)
