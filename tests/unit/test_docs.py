"""The documentation is kept true to the code.

STYLE rule 2: every ``Settings`` field has a docstring, and "these docstrings are checked
against ``docs/configuration.md``". The operator guide documents every ``oidc-provider``
command and option that ``--help`` shows.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import click
import pytest

from oidc_provider.cli import main
from oidc_provider.settings import NOT_SETTINGS, Settings

ROOT = Path(__file__).resolve().parents[2]
SETTINGS_PY = ROOT / "oidc_provider" / "settings.py"
CONFIGURATION = ROOT / "docs" / "configuration.md"
OPERATOR_GUIDE = ROOT / "docs" / "operator-guide.md"
# Variables that are not Settings fields but are allowed (settings.NOT_SETTINGS, and the test
# suite's reserved OIDC_TEST_ prefix).
NOT_FIELDS = {*NOT_SETTINGS, "OIDC_TEST_DATABASE_URL"}
# ``extra`` and ``connector_secrets`` are not settings (``Settings.from_env`` skips them).
INTERNAL_FIELDS = {"extra", "connector_secrets"}


def _settings_fields() -> list[tuple[str, str | None, ast.expr | None]]:
    """(name, docstring, default expression) for each annotated assignment in ``Settings``,
    the docstring being the string literal right after it, as in PEP 257's attribute
    docstrings."""
    tree = ast.parse(SETTINGS_PY.read_text())
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Settings")
    out = []
    for node, following in zip(cls.body, [*cls.body[1:], None], strict=True):
        if not isinstance(node, ast.AnnAssign) or not isinstance(node.target, ast.Name):
            continue
        doc = None
        if (isinstance(following, ast.Expr) and isinstance(following.value, ast.Constant)
                and isinstance(following.value.value, str)):
            doc = following.value.value
        out.append((node.target.id, doc, node.value))
    return out


FIELDS = [(name, doc) for name, doc, _ in _settings_fields() if name not in INTERNAL_FIELDS]


def _variable(name: str) -> str:
    return "OIDC_" + name.upper()


def _rendered_default(name: str) -> str:
    """The default as configuration.md writes it, inside backticks."""
    value = Settings.__dataclass_fields__[name].default
    if isinstance(value, bool):
        return "true" if value else "false"
    if value == "":
        return '""'
    return str(value)


def _table_row(text: str, variable: str) -> str | None:
    for line in text.splitlines():
        if line.startswith("|") and line.split("|")[1].strip().startswith(f"`{variable}`"):
            return line
    return None


def _documentation() -> dict[Path, str]:
    files = sorted((ROOT / "docs").glob("*.md")) + [ROOT / "README.md"]
    return {path: path.read_text() for path in files}


def test_settings_module_is_parsed():
    """The AST reading finds the fields the dataclass has (guards the parser itself)."""
    parsed = {name for name, _, _ in _settings_fields()}
    assert parsed == set(Settings.__dataclass_fields__)
    assert len(FIELDS) >= 18


@pytest.mark.parametrize("name,doc", FIELDS, ids=[name for name, _ in FIELDS])
def test_every_field_has_a_docstring_naming_its_variable(name, doc):
    """STYLE rule 2: "a docstring per field"; each starts with the variable that sets it."""
    assert doc is not None, f"Settings.{name} has no docstring"
    assert doc.split()[0] == _variable(name) + "."
    assert len(doc.split()) >= 3, f"Settings.{name} docstring says nothing beyond its name"


@pytest.mark.parametrize("name,doc", FIELDS, ids=[name for name, _ in FIELDS])
def test_every_field_is_in_configuration_md_with_its_default(name, doc):
    """Each field's variable has a row in docs/configuration.md giving its TOML key and its
    real default."""
    row = _table_row(CONFIGURATION.read_text(), _variable(name))
    assert row is not None, f"{_variable(name)} has no row in docs/configuration.md"
    assert f"(`{name}`)" in row, f"the row for {_variable(name)} does not name TOML key {name}"
    cells = [cell.strip() for cell in row.split("|")[1:-1]]
    default_cell = cells[2]
    assert f"`{_rendered_default(name)}`" in default_cell, (
        f"{_variable(name)}: default cell {default_cell!r} does not show "
        f"`{_rendered_default(name)}`"
    )


def test_configuration_md_has_no_rows_for_missing_fields():
    """Every settings row in the table is a real field."""
    known = {_variable(name) for name, _ in FIELDS}
    rows = re.findall(r"^\| `(OIDC_[A-Z0-9_]+)` \(", CONFIGURATION.read_text(), re.MULTILINE)
    assert rows, "no settings table found"
    assert set(rows) <= known
    assert len(rows) == len(set(rows)), "a setting has two rows"


def test_docs_mention_only_variables_that_exist():
    """No page documents an OIDC_* variable that Settings lacks (OIDC_CONFIG_FILE and the
    connectors' secret variables excepted)."""
    known = {_variable(name) for name, _ in FIELDS} | NOT_FIELDS
    unknown = {}
    for path, text in _documentation().items():
        text = re.sub(r"unknown setting OIDC_[A-Z0-9_]+", "", text)  # examples of a refused typo
        for variable in set(re.findall(r"\bOIDC_[A-Z0-9_]*[A-Z0-9]\b", text)):
            # A connector's secret: OIDC_CONNECTOR_<NAME>_CLIENT_SECRET (federation.config).
            if variable not in known and not re.fullmatch(r"OIDC_CONNECTOR_[A-Z0-9_]+_CLIENT_SECRET", variable):
                unknown.setdefault(path.relative_to(ROOT).as_posix(), []).append(variable)
    assert unknown == {}


def test_config_file_variable_is_the_one_settings_reads():
    """The documented OIDC_CONFIG_FILE is the variable ``Settings.from_env`` reads."""
    assert "OIDC_CONFIG_FILE" in SETTINGS_PY.read_text()
    assert "`OIDC_CONFIG_FILE`" in CONFIGURATION.read_text()


def _commands(group: click.Group, prefix: str) -> list[tuple[str, click.Command]]:
    out = []
    for name, command in sorted(group.commands.items()):
        path = f"{prefix} {name}"
        if isinstance(command, click.Group):
            out.extend(_commands(command, path))
        else:
            out.append((path, command))
    return out


COMMANDS = _commands(main, "oidc-provider")


def test_cli_introspection_finds_the_commands():
    """Guards the walk itself: the top-level commands and groups of ``oidc-provider``."""
    assert {"init", "serve", "dev", "cleanup", "user", "client", "service", "keys"} <= set(main.commands)
    assert len(COMMANDS) >= 15


@pytest.mark.parametrize("path,command", COMMANDS, ids=[p for p, _ in COMMANDS])
def test_every_command_is_in_the_operator_guide(path, command):
    """Every command ``oidc-provider --help`` (and each group's ``--help``) lists appears in
    docs/operator-guide.md by its full name."""
    assert path in OPERATOR_GUIDE.read_text(), f"`{path}` is not documented in docs/operator-guide.md"


@pytest.mark.parametrize("path,command", COMMANDS, ids=[p for p, _ in COMMANDS])
def test_every_option_is_in_the_operator_guide(path, command):
    """Every long option of every command appears in the operator guide's section for that
    command (from its heading to the next heading of the same or higher level)."""
    section = _section(OPERATOR_GUIDE.read_text(), path)
    assert section is not None, f"docs/operator-guide.md has no heading for `{path}`"
    missing = []
    for param in command.params:
        if not isinstance(param, click.Option):
            continue
        for opt in (*param.opts, *param.secondary_opts):
            if opt.startswith("--") and opt != "--help" and opt not in section:
                missing.append(opt)
    assert missing == [], f"`{path}`: options not documented: {missing}"


def _headings(lines: list[str]) -> dict[int, int]:
    """Line index -> heading level, ignoring ``#`` lines inside fenced code blocks."""
    out, fenced = {}, False
    for i, line in enumerate(lines):
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and (match := re.match(r"^(#+) ", line)):
            out[i] = len(match.group(1))
    return out


def _section(text: str, path: str) -> str | None:
    """The text under the heading that names ``path`` (in backticks), up to the next heading
    of the same or a higher level."""
    lines = text.splitlines()
    headings = _headings(lines)
    for i, level in headings.items():
        if re.search(rf"`{re.escape(path)}( |`)", lines[i]):
            end = next((j for j, lv in headings.items() if j > i and lv <= level), len(lines))
            return "\n".join(lines[i:end])
    return None


ENDPOINTS = ROOT / "docs" / "endpoints.md"


def _normalised(path: str) -> str:
    return re.sub(r"<[^>]*>", "<>", path)


def test_every_discovery_member_is_in_endpoints_md():
    """OIDC Discovery 1.0 §3: every metadata member the provider publishes is documented."""
    from oidc_provider.web.discovery import metadata

    document = metadata(Settings(issuer="https://id.example.test"))
    text = ENDPOINTS.read_text()
    assert [member for member in document if f"`{member}`" not in text] == []


def test_every_route_is_in_endpoints_md(tmp_path):
    """Every URL the app serves (static files aside) is documented in docs/endpoints.md."""
    from oidc_provider import create_app

    app = create_app(Settings(issuer="http://127.0.0.1:5000", secret_key="k" * 32,
                              database_url=f"sqlite:///{tmp_path / 'unused.db'}"))
    documented = {_normalised(p) for p in re.findall(r"`(?:[A-Z|]+ )?(/[^`\s]*)`", ENDPOINTS.read_text())}
    routes = {_normalised(rule.rule) for rule in app.url_map.iter_rules() if rule.endpoint != "static"}
    assert routes - documented == set()


def test_every_audit_event_is_in_the_operator_guide():
    """STYLE rule 9: the audit vocabulary is documented where operators read the logs."""
    from oidc_provider.audit.events import Event

    text = OPERATOR_GUIDE.read_text()
    missing = [e.value for e in Event if f"`{e.value}`" not in text]
    assert missing == []
