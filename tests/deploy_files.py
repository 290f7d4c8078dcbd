"""Readers for the files in ``deploy/``, shared by the unit tests that check them and the
end-to-end tests that carry them out: systemd units, the Containerfile and compose.yaml.

Each reader follows the format's own rules closely enough for the files we ship, and refuses
(raises) what it does not understand rather than guessing.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
UNITS = ("oidc-provider.service", "oidc-provider-cleanup.service", "oidc-provider-cleanup.timer")


# ---- systemd units (systemd.syntax(7)) ----

def read_unit(path: Path) -> dict[str, dict[str, list[str]]]:
    """``{section: {key: [values in order]}}``: a key may repeat (``SystemCallFilter=``);
    ``#`` and ``;`` start comments; a trailing backslash continues the line."""
    sections: dict[str, dict[str, list[str]]] = {}
    current = None
    for line in path.read_text().replace("\\\n", " ").splitlines():
        line = line.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        key, sep, value = line.partition("=")
        if current is None or not sep:
            raise ValueError(f"{path.name}: cannot read {line!r}")
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


# ---- Containerfile (Dockerfile reference: instructions, exec and shell forms) ----

@dataclass
class Instruction:
    keyword: str
    flags: dict[str, str]  # --from=build, --interval=30s ...
    args: str  # the rest, unparsed

    def exec_form(self) -> list[str]:
        """The JSON array form (``["oidc-provider"]``); shell form is refused."""
        value = json.loads(self.args)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ValueError(f"{self.keyword} {self.args}: expected a JSON array of strings")
        return value


def read_containerfile(path: Path) -> list[Instruction]:
    text = path.read_text()
    text = re.sub(r"\\\n", " ", text)
    out = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, rest = line.partition(" ")
        flags = {}
        rest = rest.strip()
        while rest.startswith("--"):
            flag, _, rest = rest.partition(" ")
            name, _, value = flag[2:].partition("=")
            flags[name] = value
            rest = rest.strip()
        out.append(Instruction(keyword.upper(), flags, rest))
    return out


def stages(instructions: list[Instruction]) -> list[list[Instruction]]:
    """The instructions split at each ``FROM`` (the ``FROM`` first in each stage)."""
    out: list[list[Instruction]] = []
    for instruction in instructions:
        if instruction.keyword == "FROM":
            out.append([])
        elif not out:
            if instruction.keyword != "ARG":
                raise ValueError(f"{instruction.keyword} before the first FROM")
            continue
        out[-1].append(instruction)
    return out


def healthcheck_command(instruction: Instruction) -> list[str]:
    """``HEALTHCHECK [flags] CMD [...]``: the command, exec form."""
    keyword, _, rest = instruction.args.partition(" ")
    if keyword != "CMD":
        raise ValueError(f"HEALTHCHECK {instruction.args}: expected CMD")
    return Instruction("CMD", {}, rest.strip()).exec_form()



# ---- compose.yaml (Compose specification: interpolation, services) ----

_INTERPOLATION = re.compile(r"\$(?:\$|\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\})")


def interpolate(text: str, variables: dict[str, str]) -> str:
    """Compose's ``${VAR}``, ``${VAR:-default}``, ``${VAR:?error}`` and ``$$``."""

    def replace(match: re.Match) -> str:
        if match.group(0) == "$$":
            return "$"
        name, op, arg = match.group("name", "op", "arg")
        value = variables.get(name)
        empty = value is None or (value == "" and op and op.startswith(":"))
        if op and op.endswith("?") and empty:
            raise ValueError(f"${{{name}}} is required: {arg}")
        if op and op.endswith("-") and empty:
            return arg
        if value is None:
            raise ValueError(f"${{{name}}} is not set and has no default")
        return value

    return _INTERPOLATION.sub(replace, text)


def read_compose(path: Path, variables: dict[str, str]) -> dict:
    """The document, then interpolated: compose parses the YAML first and interpolates the
    string values, so the file must be valid YAML as written."""

    def walk(node):
        if isinstance(node, dict):
            return {key: walk(value) for key, value in node.items()}
        if isinstance(node, list):
            return [walk(value) for value in node]
        return interpolate(node, variables) if isinstance(node, str) else node

    return walk(yaml.safe_load(path.read_text()))


def compose_variables(path: Path) -> set[str]:
    """The names compose.yaml interpolates (what deploy/.env must or may set)."""
    return {m.group("name") for m in _INTERPOLATION.finditer(path.read_text()) if m.group("name")}


def read_env_file(path: Path) -> dict[str, str]:
    """``NAME=value`` lines, ``#`` comments: the subset shared by compose's ``.env`` and
    systemd's ``EnvironmentFile=`` (no quotes, no expansion)."""
    out = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, value = line.partition("=")
        if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise ValueError(f"{path.name}: cannot read {line!r}")
        out[name] = value
    return out


def environment(service: dict) -> dict[str, str]:
    """A service's ``environment``, as a mapping or a list of ``NAME=value``."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {name: str(value) for name, value in env.items()}


# ---- command lines against the real CLI ----

def parse_command_line(args: list[str]):
    """Parse ``oidc-provider ARGS`` with the real click commands, without running anything:
    unknown commands or options, and values of the wrong type, raise ``click.UsageError``.
    Returns the innermost command's context (its ``params`` are the parsed values)."""
    from oidc_provider.cli import main

    command, name, ctx, rest = main, "oidc-provider", None, list(args)
    while True:
        ctx = command.make_context(name, rest, parent=ctx)
        if not hasattr(command, "resolve_command"):
            return ctx
        # click keeps the subcommand and its arguments apart until it is resolved.
        rest = [*getattr(ctx, "_protected_args", []), *ctx.args]
        name, command, rest = command.resolve_command(ctx, rest)
