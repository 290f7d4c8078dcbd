"""Throughput and latency of a live ``oidc-provider serve`` on loopback, next to a floor.

    python bench/run.py [--duration S] [--connections C] [--rounds N] [--workers W]
                        [--db sqlite|postgresql]

Creates a throw-away instance (SQLite file in a temp dir, or a scratch PostgreSQL database),
runs ``oidc-provider init``, creates two service accounts (RS256 and EdDSA access tokens), a
trusted relying party and a user, then starts ``oidc-provider serve --workers W`` and the floor
(bench/floor_app.py: one Flask route under the same gunicorn settings) on free 127.0.0.1
ports. Each round runs every scenario once with wrk for ``--duration`` seconds, the order
reversed every other round so that the floor and the token endpoint are always measured side
by side. It prints the medians across rounds, the ratio of each scenario to the floor, and the
median latency of one sequential client, writes bench/results/<stamp>-<db>.json and stops both
servers whatever happens. See bench/README.md.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
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
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import requests

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
CLI = str(Path(sys.executable).with_name("oidc-provider"))
REDIRECT_URI = "http://127.0.0.1:9/cb"  # never contacted: the Location header is read, not followed
SCOPE = "openid profile email"
SEQUENTIAL_TOKENS = 500
SEQUENTIAL_ROUNDTRIPS = 200
WARMUP = 20
SCENARIOS = ("floor", "token_cc_eddsa", "token_cc_rs256", "discovery", "jwks", "userinfo", "introspect",
             "authcode")


# ---------------------------------------------------------------------------- processes

def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """A server process in its own process group, always terminated by ``stop()``."""

    def __init__(self, name: str, argv: list[str], env: dict, log_path: Path):
        self.name, self.log_path = name, log_path
        self._log = open(log_path, "wb")
        self.proc = subprocess.Popen(argv, env=env, cwd=ROOT, stdin=subprocess.DEVNULL,
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

    def stop(self) -> None:
        if self.proc.poll() is None:
            # gunicorn's master stops its workers on SIGTERM; the group catches stragglers.
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


def cli(env: dict, *args: str, stdin: str | None = None) -> dict | None:
    result = subprocess.run([CLI, *args], env=env, cwd=ROOT, input=stdin, capture_output=True,
                            text=True, timeout=120)
    if result.returncode != 0:
        raise RuntimeError(f"oidc-provider {' '.join(args)} failed:\n{result.stdout}{result.stderr}")
    return json.loads(result.stdout) if "--json" in args else None


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


def provision(env: dict) -> dict:
    """Create what the scenarios need with the operator's own commands."""
    cli(env, "init", "--json")
    services = {}
    for alg in ("RS256", "EdDSA"):
        created = cli(env, "service", "create", f"bench-{alg.lower()}", "--json")
        if alg != "RS256":
            # The client's id_token_signed_response_alg also selects the access-token alg.
            cli(env, "client", "update", created["client_id"], "--id-token-alg", alg, "--json")
        services[alg] = (created["client_id"], created["client_secret"])
    rp = cli(env, "client", "create", "--name", "bench-rp", "--redirect-uri", REDIRECT_URI,
             "--trusted", "--json")
    password = secrets.token_urlsafe(18)
    cli(env, "user", "create", "bench", "--email", "bench@example.com", "--email-verified",
        "--password-stdin", "--json", stdin=password + "\n")
    return {"services": services, "rp": (rp["client_id"], rp["client_secret"]),
            "user": ("bench", password)}


def log_in(base: str, username: str, password: str) -> requests.Session:
    """Log in once through the login form; the session cookie is all later requests need."""
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
    return browser


class CodeFlow:
    """Everything an authorize -> code -> token round trip sends."""

    def __init__(self, base: str, rp: tuple[str, str], cookie: str):
        self.base, self.rp_id = base, rp[0]
        self.verifier, challenge = pkce_pair()
        self.authorize_path = "/authorize?" + urlencode({
            "response_type": "code", "client_id": rp[0], "redirect_uri": REDIRECT_URI, "scope": SCOPE,
            "state": "bench-state", "nonce": "bench-nonce", "code_challenge": challenge,
            "code_challenge_method": "S256",
        })
        self.cookie = f"oidc_session={cookie}"
        self.token_body = urlencode({"grant_type": "authorization_code", "redirect_uri": REDIRECT_URI,
                                     "code_verifier": self.verifier}) + "&code="
        self.authorization = basic(*rp)

    def round_trip(self, http: requests.Session) -> dict:
        answer = http.get(self.base + self.authorize_path, headers={"Cookie": self.cookie},
                          allow_redirects=False, timeout=10)
        location = answer.headers.get("Location", "")
        code = parse_qs(urlsplit(location).query).get("code")
        if answer.status_code != 302 or not code:
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
    trips = re.search(r"BENCH roundtrips=(\d+) failures=(\d+)", output)
    if trips:
        result["http_rps"] = result["rps"]
        result["roundtrips"], result["failures"] = int(trips.group(1)), int(trips.group(2))
        result["rps"] = result["roundtrips"] / result["seconds"]
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
    children = Path(f"/proc/{server.proc.pid}/task/{server.proc.pid}/children").read_text().split()
    if not children:
        raise RuntimeError("no gunicorn worker to sample")
    argv = [spy, "record", "--pid", children[0], "--duration", str(max(1, duration - 1)), "--rate", "250",
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


# ---------------------------------------------------------------------------- scenarios

def scenarios(base: str, floor: str, setup: dict, flow: CodeFlow, user_token: str,
              service_token: str) -> dict:
    """name -> (what it measures, wrk keyword arguments)."""
    rs, ed = setup["services"]["RS256"], setup["services"]["EdDSA"]
    return {
        "floor": ("GET /ok on the floor app (same gunicorn settings)", dict(url=f"{floor}/ok")),
        "token_cc_eddsa": ("POST /token client_credentials, EdDSA access token",
                           dict(url=f"{base}/token", script="post.lua",
                                args=("grant_type=client_credentials", basic(*ed)))),
        "token_cc_rs256": ("POST /token client_credentials, RS256 access token",
                           dict(url=f"{base}/token", script="post.lua",
                                args=("grant_type=client_credentials", basic(*rs)))),
        "discovery": ("GET /.well-known/openid-configuration",
                      dict(url=f"{base}/.well-known/openid-configuration")),
        "jwks": ("GET /jwks.json", dict(url=f"{base}/jwks.json")),
        "userinfo": ("GET /userinfo with a user's RS256 bearer token",
                     dict(url=f"{base}/userinfo", headers=(f"Authorization: Bearer {user_token}",))),
        "introspect": ("POST /introspect of a service's access token by that service",
                       dict(url=f"{base}/introspect", script="post.lua",
                            args=(urlencode({"token": service_token}), basic(*rs)))),
        "authcode": ("authorize -> code -> token (PKCE, RS256 ID + access token), logged-in session",
                     dict(url=base + flow.authorize_path, script="authcode.lua",
                          args=(flow.authorize_path, flow.cookie, flow.token_body, flow.authorization))),
    }


def sequential(base: str, setup: dict, flow: CodeFlow) -> dict:
    """One client, one request at a time: median and p99 of the full response time (ms)."""
    out = {}
    http = requests.Session()
    for alg, client in setup["services"].items():
        times = []
        for i in range(WARMUP + SEQUENTIAL_TOKENS):
            start = time.perf_counter()
            response = client_credentials(base, http, client)
            elapsed = (time.perf_counter() - start) * 1e3
            if response.status_code != 200:
                raise RuntimeError(f"token: {response.status_code} {response.text[:200]}")
            if i >= WARMUP:
                times.append(elapsed)
        out[f"token_cc_{alg.lower()}"] = _summary(times)
    times = []
    for i in range(WARMUP + SEQUENTIAL_ROUNDTRIPS):
        start = time.perf_counter()
        flow.round_trip(http)
        if i >= WARMUP:
            times.append((time.perf_counter() - start) * 1e3)
    out["authcode"] = _summary(times)
    return out


def _summary(times: list[float]) -> dict:
    ordered = sorted(times)
    return {"count": len(times), "p50_ms": round(statistics.median(ordered), 3),
            "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))], 3)}


# ---------------------------------------------------------------------------- report

def medians(runs: list[dict]) -> dict:
    keys = ("rps", "p50_ms", "p99_ms")
    return {k: round(statistics.median(r[k] for r in runs), 3) for k in keys}


def render(results: dict) -> str:
    lines = [f"{'scenario':<16} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'/floor':>7}   "
             f"req/s per round"]
    for name, entry in results["concurrent"].items():
        m = entry["median"]
        ratio = entry.get("ratio_to_floor")
        per_round = " ".join(f"{r['rps']:.0f}" for r in entry["rounds"])
        lines.append(f"{name:<16} {m['rps']:>9.0f} {m['p50_ms']:>8.2f} {m['p99_ms']:>8.2f} "
                     f"{(f'{ratio:.0%}' if ratio is not None else ''):>7}   {per_round}")
    lines.append("(authcode: round trips/s; its latencies are per HTTP request, authorize or token)")
    lines.append("")
    lines.append("sequential client (one request at a time, new TCP connection each: gunicorn sync "
                 "workers close it):")
    for name, entry in results["sequential"].items():
        lines.append(f"  {name:<16} p50 {entry['p50_ms']:.2f} ms   p99 {entry['p99_ms']:.2f} ms   "
                     f"(n={entry['count']})")
    targets = results["targets"]
    lines.append("")
    for name, entry in targets.items():
        lines.append(f"target {name}: {entry['value']} (want {entry['want']}) -> "
                     f"{'met' if entry['met'] else 'MISSED'}")
    return "\n".join(lines)


def machine() -> dict:
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                            text=True).stdout.strip()
    return {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
            "wrk": subprocess.run(["wrk", "--version"], capture_output=True, text=True).stdout.split("\n")[0]
            .strip(), "load_before": os.getloadavg(), "commit": commit}


# ---------------------------------------------------------------------------- main

def _interrupt(*_):
    raise KeyboardInterrupt


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Benchmark oidc-provider against a floor.")
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run (default 5)")
    parser.add_argument("--connections", type=int, default=8, help="wrk connections (default 8)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of every scenario (default 3)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers for both servers")
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--pg-server", default="postgres@127.0.0.1:5432",
                        help="user@host:port of the PostgreSQL server for --db postgresql")
    parser.add_argument("--only", help="comma-separated scenarios to run (floor is always included)")
    parser.add_argument("--py-spy", metavar="SCENARIO",
                        help="sample one provider worker with py-spy during SCENARIO's last round and "
                             "summarise where its time went (py-spy must be installed)")
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        parser.error("wrk is not installed (Debian: apt-get install wrk)")
    unknown = set((args.only or "").split(",") + [args.py_spy or ""]) - set(SCENARIOS) - {""}
    if unknown:
        parser.error(f"unknown scenario(s) {', '.join(sorted(unknown))}; choose from {', '.join(SCENARIOS)}")
    spy = None
    if args.py_spy:
        spy = shutil.which("py-spy", path=f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}")
        if spy is None:
            parser.error("--py-spy needs py-spy (pip install py-spy, into the venv only)")

    # SIGTERM unwinds like Ctrl-C, so the servers and the scratch database are always cleaned up.
    signal.signal(signal.SIGTERM, _interrupt)
    started = datetime.now(timezone.utc)
    host = machine()
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="oidc-bench-")))
        if args.db == "postgresql":
            database_url = stack.enter_context(PostgresScratch(args.pg_server))
        else:
            database_url = f"sqlite:///{tmp}/oidc.db"
        port, floor_port = free_port(), free_port()
        base, floor = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{floor_port}"
        env = {**os.environ, "OIDC_ISSUER": base, "OIDC_SECRET_KEY": secrets.token_urlsafe(48),
               "OIDC_DATABASE_URL": database_url, "OIDC_LOG_LEVEL": "WARNING"}
        print(f"setting up {args.db} instance in {tmp} ...", flush=True)
        setup = provision(env)

        servers = []
        stack.callback(lambda: [s.stop() for s in servers])
        servers.append(Server("oidc-provider", [CLI, "serve", "--host", "127.0.0.1", "--port", str(port),
                                                "--workers", str(args.workers)], env, tmp / "provider.log"))
        servers.append(Server("floor", [sys.executable, str(BENCH / "floor_app.py"), "--host", "127.0.0.1",
                                        "--port", str(floor_port), "--workers", str(args.workers)],
                              env, tmp / "floor.log"))
        servers[0].wait_ready(f"{base}/.well-known/openid-configuration")
        servers[1].wait_ready(f"{floor}/ok")

        browser = log_in(base, *setup["user"])
        flow = CodeFlow(base, setup["rp"], browser.cookies["oidc_session"])
        user_token = flow.round_trip(requests.Session())["access_token"]
        service = client_credentials(base, requests.Session(), setup["services"]["RS256"])
        service_token = service.json()["access_token"]
        checks = {"userinfo": requests.get(f"{base}/userinfo", timeout=10,
                                           headers={"Authorization": f"Bearer {user_token}"}),
                  "introspect": requests.post(f"{base}/introspect", data={"token": service_token}, timeout=10,
                                              headers={"Authorization": basic(*setup["services"]["RS256"])})}
        if checks["userinfo"].status_code != 200 or checks["introspect"].json().get("active") is not True:
            raise RuntimeError(f"sanity check failed: { {k: v.text[:200] for k, v in checks.items()} }")

        print("sequential client ...", flush=True)
        seq = sequential(base, setup, flow)

        plan = scenarios(base, floor, setup, flow, user_token, service_token)
        if args.only:
            wanted = {"floor", *args.only.split(",")}
            plan = {k: v for k, v in plan.items() if k in wanted}
        runs: dict[str, list[dict]] = {name: [] for name in plan}
        out_dir = BENCH / "results"
        out_dir.mkdir(exist_ok=True)
        stamp = f"{started.strftime('%Y%m%dT%H%M%SZ')}-{args.db}"
        profile_text = None
        order = list(plan)
        for round_no in range(args.rounds):
            # Reverse every other round: drift on a shared machine hits every scenario alike.
            for name in order if round_no % 2 == 0 else order[::-1]:
                sampler = None
                if name == args.py_spy and round_no == args.rounds - 1:
                    sampler = start_py_spy(spy, servers[0], args.duration, out_dir / f"{stamp}-{name}.stacks")
                result = wrk(duration=args.duration, connections=args.connections, **plan[name][1])
                if sampler is not None:
                    profile_text = finish_py_spy(*sampler)
                result["round"] = round_no + 1
                runs[name].append(result)
                print(f"  round {round_no + 1} {name:<16} {result['rps']:8.0f} req/s  "
                      f"p50 {result['p50_ms']:.2f} ms  p99 {result['p99_ms']:.2f} ms"
                      + (f"  non-2xx/3xx {result['non_2xx_3xx']}" if result["non_2xx_3xx"] else "")
                      + (f"  failures {result['failures']}" if result.get("failures") else ""), flush=True)
        for server in servers:
            if server.proc.poll() is not None:
                raise RuntimeError(f"{server.name} died during the run:\n{server.tail()}")

    floor_runs = runs["floor"]
    concurrent = {}
    for name, results in runs.items():
        entry = {"measures": plan[name][0], "median": medians(results), "rounds": results}
        if name != "floor":
            entry["ratio_to_floor"] = round(entry["median"]["rps"] / medians(floor_runs)["rps"], 3)
            # The same ratio computed within each round (floor measured next to it), then median.
            entry["ratio_to_floor_per_round"] = round(statistics.median(
                r["rps"] / f["rps"] for r, f in zip(results, floor_runs, strict=True)), 3)
        concurrent[name] = entry
    targets = {}
    for name in ("token_cc_eddsa", "token_cc_rs256"):
        if name in concurrent:
            ratio = concurrent[name]["ratio_to_floor"]
            targets[f"{name} throughput / floor"] = {"value": f"{ratio:.0%}", "want": ">= 40%",
                                                     "met": ratio >= 0.40}
        p50 = seq[name]["p50_ms"]
        targets[f"{name} sequential p50"] = {"value": f"{p50:.2f} ms", "want": "< 5 ms", "met": p50 < 5}
    errors = sum(r["non_2xx_3xx"] + r["socket_errors"] + r.get("failures", 0)
                 for results in runs.values() for r in results)
    results = {
        "date": started.isoformat(timespec="seconds"), "command": " ".join([Path(sys.argv[0]).as_posix(),
                                                                           *sys.argv[1:]]),
        "options": {"duration": args.duration, "connections": args.connections, "rounds": args.rounds,
                    "workers": args.workers, "db": args.db, "wrk_threads": 1},
        "machine": host, "concurrent": concurrent, "sequential": seq, "targets": targets,
        "error_responses": errors, "load_after": os.getloadavg(),
    }
    out = out_dir / f"{stamp}.json"
    out.write_text(json.dumps(results, indent=2))
    print()
    print(render(results))
    if profile_text:
        print(f"\npy-spy, {args.py_spy}, last round:\n{profile_text}")
    if errors:
        print(f"WARNING: {errors} error responses or socket errors during the wrk runs")
    print(f"\nresults written to {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted; servers stopped", file=sys.stderr)
        sys.exit(130)
