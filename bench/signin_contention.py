"""Does signing in stall everyone else? (issue 12, "No write lock during slow work")

One live ``oidc-provider serve`` (2 workers, the production argon2id settings) and a token
client that makes ``client_credentials`` requests one at a time, measured in each phase of a
round, side by side:

* ``alone``      the token client and nothing else;
* ``sign-in``    while a browser-like loop signs in over and over (GET /login, POST /login with
                 the right password, a new session each time: argon2id on every sign-in);
* ``login-page`` control: the same loop fetching the login page only (sessions, CSRF, a template;
                 no password, no argon2id);
* ``cpu``        control: no second client, but the same argon2id hashing, back to back, in a
                 process of its own here: what CPU contention alone costs on this machine.

The slowdown is a phase's median token latency over ``alone``'s. A write lock held across
argon2id shows as ``sign-in`` far above ``cpu``; CPU contention alone (2 cores, argon2id uses
them all) shows as ``sign-in`` close to ``cpu``.

    .venv/bin/python bench/signin_contention.py --rounds 3 --duration 10
    .venv/bin/python bench/signin_contention.py --database-url postgresql://postgres@127.0.0.1:5432/postgres

``--database-url``: a PostgreSQL server URL; a scratch database is created there and dropped.
Default: a SQLite file in a temporary directory. Prints a table, exits 0.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import re
import secrets
import statistics
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "conformance"))

from live import LiveServer  # noqa: E402

from oidc_provider.settings import Settings  # noqa: E402

PHASES = ("alone", "sign-in", "login-page", "cpu")
TIMEOUT = 60


def production_argon2() -> dict:
    """The argon2id settings a deployment gets by default (LiveServer makes them cheap)."""
    defaults = Settings.__dataclass_fields__
    return {f"OIDC_{name.upper()}": str(defaults[name].default)
            for name in ("argon2_time_cost", "argon2_memory_cost", "argon2_parallelism")}


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html) or \
        re.search(r'value="([^"]+)"[^>]*name="csrf_token"', html)
    if match is None:
        raise RuntimeError("no CSRF token on the login page")
    return match.group(1)


def browser_loop(base: str, username: str, password: str, sign_in: bool, stop, counter) -> None:
    """Sign in over and over (or only fetch the login page), each time as a new browser."""
    while not stop.is_set():
        http = requests.Session()
        page = http.get(f"{base}/login", timeout=TIMEOUT)
        if sign_in:
            done = http.post(f"{base}/login", data={"csrf_token": _csrf(page.text), "username": username,
                                                    "password": password}, allow_redirects=False, timeout=TIMEOUT)
            if done.status_code != 302:
                raise RuntimeError(f"sign-in refused: {done.status_code}")
        with counter.get_lock():
            counter.value += 1


def cpu_loop(argon2: dict, stop, counter) -> None:
    from argon2 import PasswordHasher

    hasher = PasswordHasher(time_cost=int(argon2["OIDC_ARGON2_TIME_COST"]),
                            memory_cost=int(argon2["OIDC_ARGON2_MEMORY_COST"]),
                            parallelism=int(argon2["OIDC_ARGON2_PARALLELISM"]))
    stored = hasher.hash("correct horse battery staple")
    while not stop.is_set():
        hasher.verify(stored, "correct horse battery staple")
        with counter.get_lock():
            counter.value += 1


def token_client(base: str, client: tuple[str, str], duration: float) -> list[float]:
    """client_credentials requests one at a time for ``duration`` seconds; latencies in ms."""
    http = requests.Session()
    times = []
    end = time.monotonic() + duration
    while time.monotonic() < end:
        started = time.perf_counter()
        answer = http.post(f"{base}/token", data={"grant_type": "client_credentials"}, auth=client, timeout=TIMEOUT)
        times.append((time.perf_counter() - started) * 1000)
        if answer.status_code != 200:
            raise RuntimeError(f"token: {answer.status_code} {answer.text[:200]}")
    return times


def phase(name: str, server: LiveServer, setup: dict, duration: float, argon2: dict) -> dict:
    stop, counter = multiprocessing.Event(), multiprocessing.Value("i", 0)
    background = None
    if name in ("sign-in", "login-page"):
        background = multiprocessing.Process(target=browser_loop, args=(
            server.url, *setup["user"], name == "sign-in", stop, counter), daemon=True)
    elif name == "cpu":
        background = multiprocessing.Process(target=cpu_loop, args=(argon2, stop, counter), daemon=True)
    if background is not None:
        background.start()
        time.sleep(0.5)  # the loop is running before the measurement starts
    try:
        times = token_client(server.url, setup["service"], duration)
    finally:
        stop.set()
        if background is not None:
            background.join(TIMEOUT)
    if background is not None and background.exitcode not in (0, None):
        raise RuntimeError(f"the {name} loop failed (exit {background.exitcode})")
    ordered = sorted(times)
    return {"requests": len(times), "median_ms": statistics.median(times),
            "p99_ms": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))],
            "loop_per_s": counter.value / duration if background is not None else None}


def run(args) -> dict:
    argon2 = production_argon2()
    server = LiveServer(database_url=args.database_url, workers=args.workers, env_overrides=argon2,
                        command=args.command)
    try:
        server.prepare()
        password = secrets.token_urlsafe(18)
        server.create_user("bench", password)
        service = server.create_service("bench-service")
        server.start()
        setup = {"user": ("bench", password), "service": (service["client_id"], service["client_secret"])}
        token_client(server.url, setup["service"], 1.0)  # warm-up: keys loaded, connections open
        rounds = []
        for number in range(args.rounds):
            order = PHASES if number % 2 == 0 else tuple(reversed(PHASES))
            rounds.append({name: phase(name, server, setup, args.duration, argon2) for name in order})
            print(f"round {number + 1}/{args.rounds}: " + ", ".join(
                f"{name} {rounds[-1][name]['median_ms']:.1f} ms" for name in PHASES), file=sys.stderr)
    finally:
        server.stop()
    return {"database": "postgresql" if args.database_url else "sqlite", "workers": args.workers,
            "rounds": rounds, "argon2": argon2, "duration_s": args.duration}


def summarize(results: dict) -> list[dict]:
    rounds = results["rounds"]
    alone = statistics.median(r["alone"]["median_ms"] for r in rounds)
    rows = []
    for name in PHASES:
        median = statistics.median(r[name]["median_ms"] for r in rounds)
        loop = [r[name]["loop_per_s"] for r in rounds if r[name]["loop_per_s"] is not None]
        rows.append({"phase": name, "median_ms": median,
                     "p99_ms": statistics.median(r[name]["p99_ms"] for r in rounds),
                     "requests": statistics.median(r[name]["requests"] for r in rounds),
                     "slowdown": median / alone, "loop_per_s": statistics.median(loop) if loop else None})
    return rows


def render(results: dict, rows: list[dict]) -> str:
    lines = [f"database {results['database']}, {results['workers']} workers, {len(results['rounds'])} rounds x "
             f"{results['duration_s']} s, argon2id {json.dumps(results['argon2'])}",
             f"{'phase':<11} {'token median':>12} {'p99':>9} {'requests':>9} {'slowdown':>9} {'loop/s':>7}"]
    for row in rows:
        loop = f"{row['loop_per_s']:.1f}" if row["loop_per_s"] is not None else "-"
        lines.append(f"{row['phase']:<11} {row['median_ms']:>9.1f} ms {row['p99_ms']:>6.1f} ms "
                     f"{row['requests']:>9.0f} {row['slowdown']:>8.2f}x {loop:>7}")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per phase")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--database-url", default=None,
                        help="a PostgreSQL server URL (a scratch database is made there); default SQLite")
    parser.add_argument("--command", default=None,
                        help="the oidc-provider command to run (another checkout's, for a before/after "
                             "comparison); default: the one beside this Python")
    parser.add_argument("--json", action="store_true", help="print the raw results as JSON as well")
    args = parser.parse_args(argv)
    results = run(args)
    rows = summarize(results)
    print(render(results, rows))
    if args.json:
        print(json.dumps({**results, "summary": rows}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
