"""docs/authorization.md stays true to the code: its JavaScript ``allows`` decides exactly as
``oidc_provider/access/evaluator.py`` on a table of cases (run with node), and its Python
snippet imports names that exist."""

from __future__ import annotations

import itertools
import json
import re
import subprocess
from pathlib import Path

from oidc_provider.access.evaluator import allows

DOC = Path(__file__).resolve().parents[2] / "docs" / "authorization.md"
PATTERNS = ["*", "read", "re*", "read*", "priority:*", "priority:high", "", "a*b", "*x", "has space", "x" * 201]
VALUES = ["read", "ready", "re", "priority:high", "priority:", "prio", "", "READ"]


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", DOC.read_text(), re.DOTALL)


def _cases() -> list[dict]:
    cases = []
    for action_pattern, resource_pattern in itertools.product(PATTERNS, ["*", "priority:*", "read"]):
        statements = [{"actions": [action_pattern], "resources": [resource_pattern]}]
        for action, resource in itertools.product(VALUES, ["priority:high", "read", ""]):
            cases.append({"statements": statements, "action": action, "resource": resource})
    malformed = [[], [{}], [{"actions": "read", "resources": ["*"]}], [{"actions": [], "resources": ["*"]}],
                 [{"actions": ["read"], "resources": ["*"], "effect": "deny"}], [None], [[1]],
                 [{"actions": ["read"] * 51, "resources": ["*"]}], [{"actions": ["re\x00d"], "resources": ["*"]}],
                 [{"actions": ["nope"], "resources": ["*"]}, {"actions": ["read"], "resources": ["*"]}]]
    cases += [{"statements": s, "action": "read", "resource": "x"} for s in malformed]
    cases += [{"statements": [{"actions": ["*"], "resources": ["*"]}], "action": a, "resource": "x"}
              for a in (None, 3, "")]
    return cases


def test_the_javascript_allows_decides_like_the_evaluator():
    (code,) = [b for b in _blocks("js") if "function allows" in b]
    cases = _cases()
    script = code + "\nconst cases = JSON.parse(require('fs').readFileSync(0, 'utf8'));\n" \
                    "process.stdout.write(JSON.stringify(cases.map(c => allows(c.statements, c.action, c.resource))));"
    done = subprocess.run(["node", "-e", script], input=json.dumps(cases), capture_output=True, text=True,
                          timeout=60, check=True)
    from_js = json.loads(done.stdout)
    from_python = [bool(allows(c["statements"], c["action"], c["resource"])) for c in cases]
    differing = [c for c, js, py in zip(cases, from_js, from_python, strict=True) if js != py]
    assert differing == []
    assert sum(from_python) > 50 and not all(from_python)  # the table exercises both answers


def test_the_python_snippet_compiles_and_imports_real_names():
    (snippet,) = [b for b in _blocks("python") if "allows" in b]
    compile(snippet, "authorization.md", "exec")
    imports = "\n".join(line for line in snippet.splitlines() if line.startswith(("import ", "from ")))
    exec(imports.replace("from evaluator import", "from oidc_provider.access.evaluator import"), {})  # noqa: S102
