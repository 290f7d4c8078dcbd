"""Summarise py-spy "raw" (collapsed stack) output of one gunicorn worker.

    python bench/spy_summary.py bench/results/<file>.stacks

Prints where the worker's busy samples went: inclusive shares for the stages of a request
(a sample counts for every stage on its stack) and the package of the innermost Python frame.
py-spy samples only Python frames, so time inside C code (OpenSSL, sqlite3, the socket calls)
is charged to the Python function that called it.
"""

from __future__ import annotations

import re
import sys
from collections import Counter
from pathlib import Path

FRAME = re.compile(r"^(?P<func>.*) \((?P<path>[^()]*):\d+\)$")

# (label, pattern matched against "func (path" of any frame on the stack), most specific first.
STAGES = [
    ("client authentication (client query, secret check)", r"authenticate_client|query_client"),
    ("  of which: client query", r"query_client"),
    ("access token signing (joserfc + cryptography)", r"KeyStore\.sign"),
    ("ID token building and signing", r"TokenService\.id_token"),
    ("token storage (INSERT + COMMIT)", r"TokenService\.save"),
    ("authorization code issue (INSERT + audit)", r"issue_code|AuthorizationCodeGrant\.save_authorization_code"),
    ("authorization code redeem (UPDATE)", r"codes\.py|query_authorization_code"),
    ("access token validation (verify + SELECT)", r"validate_access_token"),
    ("audit rows", r"audit/record\.py"),
    ("browser session load/save", r"open_session|save_session"),
    ("database session teardown (rollback, pool)", r"_teardown_session|do_teardown_appcontext"),
    ("Flask request dispatch (incl. all above)", r"Flask\.full_dispatch_request"),
    ("gunicorn: accept, parse, write (outside Flask)", None),
]


def parse(path: Path) -> list[tuple[list[tuple[str, str]], int]]:
    samples = []
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = []
        for raw in stack.split(";"):
            match = FRAME.match(raw)
            frames.append((match["func"], match["path"]) if match else (raw, ""))
        samples.append((frames, int(count)))
    return samples


def package(path: str) -> str:
    if not path:
        return "(no source)"
    if path.startswith("oidc_provider/"):
        return "/".join(path.split("/")[:2])
    if path.startswith("<") or "/python3." in path or "/" not in path:
        return "python stdlib"
    return path.split("/")[0]


def summarise(path: Path) -> str:
    samples = parse(path)
    total = sum(count for _, count in samples)
    if not total:
        return "no samples"
    lines = [f"{total} busy samples of one worker ({path.name})", "", "stage (inclusive share):"]
    for label, pattern in STAGES:
        if pattern is None:
            inside = sum(c for frames, c in samples if any("full_dispatch_request" in f for f, _ in frames)
                         or any(f.endswith("wsgi_app") for f, _ in frames))
            share = (total - inside) / total
        else:
            regex = re.compile(pattern)
            share = sum(c for frames, c in samples
                        if any(regex.search(f"{func} ({p}") for func, p in frames)) / total
        lines.append(f"  {share:6.1%}  {label}")
    leaves = Counter()
    for frames, count in samples:
        leaves[package(frames[-1][1])] += count
    lines += ["", "innermost Python frame, by package:"]
    lines += [f"  {count / total:6.1%}  {name}" for name, count in leaves.most_common(12)]
    return "\n".join(lines)


if __name__ == "__main__":
    print(summarise(Path(sys.argv[1])))
