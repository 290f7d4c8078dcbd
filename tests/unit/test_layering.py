"""Dependencies point one way (STYLE "Layout"): the pure policy module imports no framework,
and only ``oidc_provider/oauth/`` imports Authlib's OAuth/OIDC packages."""

import ast
import shutil
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "oidc_provider"
PURE_MODULES = ["authn/interaction.py", "authn/levels.py", "access/evaluator.py"]
# Published for relying parties to copy (docs/authorization.md): the standard library only.
STANDALONE_MODULES = ["access/evaluator.py"]
FRAMEWORKS = ("flask", "sqlalchemy", "authlib", "werkzeug", "joserfc", "oidc_provider")


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            names.add("." * node.level + (node.module or ""))
    return names


def test_pure_policy_modules_import_no_framework_or_package_code():
    for relative in PURE_MODULES:
        imported = _imports(PACKAGE / relative)
        # Pure modules may import each other, nothing else from the package.
        pure_siblings = {"." + Path(m).stem for m in PURE_MODULES}
        offending = {n for n in imported
                     if (n.startswith(".") and n not in pure_siblings) or n.split(".")[0] in FRAMEWORKS}
        assert offending == set(), f"{relative} imports {offending}"


def test_standalone_modules_import_only_the_standard_library():
    for relative in STANDALONE_MODULES:
        imported = _imports(PACKAGE / relative)
        # No relative import at all (not even a pure sibling): the file must work on its own.
        offending = {n for n in imported if n.startswith(".") or n.split(".")[0] not in sys.stdlib_module_names}
        assert offending == set(), f"{relative} imports {offending}"


def test_the_evaluator_runs_as_a_copied_file_without_site_packages(tmp_path):
    # What a relying party does: copy the file next to its code. -I -S leaves out site-packages
    # and the working directory, so any import of oidc_provider or a third-party package fails.
    shutil.copy(PACKAGE / "access/evaluator.py", tmp_path / "evaluator.py")
    script = ("import sys; sys.path.insert(0, sys.argv[1]); import evaluator; "
              "s = [{'actions': ['dashboards:*'], 'resources': ['team:*']}]; "
              "print(bool(evaluator.allows(s, 'dashboards:read', 'team:ops', audience='grafana')), "
              "bool(evaluator.allows(s, 'users:delete', 'team:ops', audience='grafana')))")
    result = subprocess.run([sys.executable, "-I", "-S", "-c", script, str(tmp_path)],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "False"]


def test_only_the_oauth_package_imports_authlib_protocol_code():
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if path.is_relative_to(PACKAGE / "oauth"):
            continue
        for name in _imports(path):
            if name.startswith(("authlib.oauth2", "authlib.oidc", "authlib.integrations")):
                offenders.append(f"{path.relative_to(PACKAGE)}: {name}")
    assert offenders == []


def test_only_settings_reads_the_environment():
    offenders = [
        str(path.relative_to(PACKAGE)) for path in PACKAGE.rglob("*.py")
        if path.name != "settings.py" and ("os.environ" in path.read_text() or "os.getenv" in path.read_text())
    ]
    assert offenders == []
