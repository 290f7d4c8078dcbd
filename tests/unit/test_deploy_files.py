"""The files in ``deploy/`` read right and agree with the code: the systemd units run the
provider as a non-root user inside a sandbox, every ``OIDC_*`` variable compose.yaml sets is a
real setting and the whole environment passes ``Settings.validate()``, and every command line
(ExecStart=, ENTRYPOINT + CMD, compose ``command:``) parses with the real ``oidc-provider``
commands. ``systemd-analyze verify`` and carrying out the Containerfile are end-to-end tests
(tests/e2e/test_deploy_systemd.py, tests/e2e/test_deploy_container.py).
"""

from __future__ import annotations

import dataclasses
import re

import pytest
from sqlalchemy.engine import make_url

from oidc_provider.settings import INTERNAL, Settings

from ..deploy_files import (
    DEPLOY,
    ROOT,
    UNITS,
    compose_variables,
    environment,
    healthcheck_command,
    interpolate,
    parse_command_line,
    read_compose,
    read_containerfile,
    read_env_file,
    read_unit,
    stages,
)

SETTING_VARIABLES = {"OIDC_" + f.name.upper() for f in dataclasses.fields(Settings) if f.name not in INTERNAL}
VENV_BIN = "/opt/oidc-provider/venv/bin/"  # where docs/operator-guide.md installs it
GRACEFUL_TIMEOUT = 30  # OIDC_SERVE_GRACEFUL_TIMEOUT's default
# systemd.exec(5) sandboxing every service unit here must have, with its value.
HARDENING = {
    "NoNewPrivileges": "yes",
    "CapabilityBoundingSet": "",
    "AmbientCapabilities": "",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "PrivateDevices": "yes",
    "ReadWritePaths": "/var/lib/oidc-provider",
    "StateDirectory": "oidc-provider",
    "ProtectKernelTunables": "yes",
    "ProtectKernelModules": "yes",
    "ProtectKernelLogs": "yes",
    "ProtectControlGroups": "yes",
    "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
    "RestrictNamespaces": "yes",
    "RestrictRealtime": "yes",
    "RestrictSUIDSGID": "yes",
    "LockPersonality": "yes",
    "SystemCallArchitectures": "native",
    "UMask": "0077",
}
SERVICES = [name for name in UNITS if name.endswith(".service")]


def one(unit: dict, section: str, key: str) -> str:
    values = unit[section].get(key)
    assert values and len(values) == 1, f"[{section}] {key}= should be set once, is {values}"
    return values[0]


def command_of(line: str) -> list[str]:
    """An ExecStart= line as the oidc-provider arguments, checking the binary's path."""
    binary, *args = line.split()
    assert binary == VENV_BIN + "oidc-provider", line
    return args


# ---- systemd ----

@pytest.mark.parametrize("name", SERVICES)
def test_services_run_as_the_dedicated_non_root_user(name):
    unit = read_unit(DEPLOY / name)
    assert one(unit, "Service", "User") == "oidc-provider"
    assert one(unit, "Service", "Group") == "oidc-provider"
    assert one(unit, "Service", "EnvironmentFile") == "/etc/oidc-provider/env"
    assert one(unit, "Service", "WorkingDirectory") == "/var/lib/oidc-provider"


@pytest.mark.parametrize("name", SERVICES)
def test_services_are_sandboxed(name):
    unit = read_unit(DEPLOY / name)
    for key, value in HARDENING.items():
        assert one(unit, "Service", key) == value, key
    filters = unit["Service"]["SystemCallFilter"]
    assert filters[0] == "@system-service", "an allow-list first"
    assert "~@privileged @resources" in filters[1:]
    assert "User" in unit["Service"] and "DynamicUser" not in unit["Service"]


def test_the_server_unit_initialises_then_serves_and_stops_gracefully():
    unit = read_unit(DEPLOY / "oidc-provider.service")
    assert command_of(one(unit, "Service", "ExecStartPre")) == ["init"]
    serve = parse_command_line(command_of(one(unit, "Service", "ExecStart")))
    assert serve.command.name == "serve"
    assert serve.params["host"] == "127.0.0.1", "behind the reverse proxy, never on every interface"
    assert one(unit, "Service", "Restart") == "on-failure"
    assert one(unit, "Service", "KillSignal") == "SIGTERM"  # serve's graceful stop
    stop = re.fullmatch(r"(\d+)s", one(unit, "Service", "TimeoutStopSec"))
    assert stop and int(stop.group(1)) > GRACEFUL_TIMEOUT
    assert one(unit, "Install", "WantedBy") == "multi-user.target"


def test_the_cleanup_timer_runs_the_cleanup_service_daily():
    service = read_unit(DEPLOY / "oidc-provider-cleanup.service")
    assert one(service, "Service", "Type") == "oneshot"
    cleanup = parse_command_line(command_of(one(service, "Service", "ExecStart")))
    assert cleanup.command.name == "cleanup"
    timer = read_unit(DEPLOY / "oidc-provider-cleanup.timer")
    # A timer starts the service of the same name unless Unit= says otherwise.
    assert "Unit" not in timer["Timer"]
    assert one(timer, "Timer", "OnCalendar") == "daily"
    assert one(timer, "Timer", "Persistent") == "yes"
    assert one(timer, "Install", "WantedBy") == "timers.target"


def test_the_environment_file_example_holds_real_settings_and_no_secret():
    env = read_env_file(DEPLOY / "oidc-provider.env.example")
    assert set(env) <= SETTING_VARIABLES, set(env) - SETTING_VARIABLES
    assert env["OIDC_SECRET_KEY"] == ""
    Settings.from_env({**env, "OIDC_SECRET_KEY": "s" * 48}).validate()


def test_the_units_use_the_install_path_of_the_operator_guide():
    guide = (ROOT / "docs" / "operator-guide.md").read_text()
    assert f"python3 -m venv {VENV_BIN.removesuffix('/bin/')}" in guide


# ---- Containerfile ----

def containerfile():
    return stages(read_containerfile(DEPLOY / "Containerfile"))


def final_stage(keyword: str):
    found = [i for i in containerfile()[-1] if i.keyword == keyword]
    assert found, f"no {keyword} in the final stage"
    return found[-1]


def test_containerfile_builds_in_one_stage_and_runs_from_a_slim_python():
    instructions = read_containerfile(DEPLOY / "Containerfile")
    base = next(i for i in instructions if i.keyword == "ARG").args
    image = re.fullmatch(r"PYTHON_IMAGE=docker\.io/library/python:3\.(\d+)-slim-\w+", base)
    assert image and int(image.group(1)) >= 11, base  # pyproject: requires-python >= 3.11
    froms = [i.args for i in instructions if i.keyword == "FROM"]
    assert froms == ["${PYTHON_IMAGE} AS build", "${PYTHON_IMAGE}"]
    build, runtime = containerfile()
    assert any("pip wheel" in i.args for i in build if i.keyword == "RUN")
    copies = [i for i in runtime if i.keyword == "COPY"]
    assert [c.flags for c in copies] == [{"from": "build"}], "only the wheels reach the runtime image"
    for copy in (i for i in build if i.keyword == "COPY"):
        source = copy.args.split()[0]
        assert (ROOT / source).exists(), source


def test_containerfile_runs_as_a_fixed_non_root_uid():
    account = next(i.args for i in containerfile()[-1] if i.keyword == "RUN" and "useradd" in i.args)
    uid = re.search(r"useradd .*--uid (\d+)", account).group(1)
    gid = re.search(r"groupadd .*--gid (\d+)", account).group(1)
    assert re.search(rf"useradd .*--gid {gid}\b", account)
    assert int(uid) >= 1000 and int(gid) >= 1000
    assert final_stage("USER").args == f"{uid}:{gid}"


def test_containerfile_serves_on_the_exposed_port_with_a_health_check():
    assert final_stage("ENTRYPOINT").exec_form() == ["oidc-provider"]
    serve = parse_command_line(final_stage("CMD").exec_form())
    assert serve.command.name == "serve"
    assert serve.params["host"] == "0.0.0.0"
    assert final_stage("EXPOSE").args == str(serve.params["port"])
    check = healthcheck_command(final_stage("HEALTHCHECK"))
    assert check[:2] == ["python", "-c"]  # the slim image has no curl
    assert f"'http://127.0.0.1:{serve.params['port']}/healthz'" in check[2]


# ---- compose.yaml ----

EXAMPLE = read_env_file(DEPLOY / "env.example")
SAMPLE = {"OIDC_ISSUER": "https://id.example.com", "OIDC_SECRET_KEY": "s" * 48, "POSTGRES_PASSWORD": "p" * 32}


def compose():
    return read_compose(DEPLOY / "compose.yaml", SAMPLE)


@pytest.mark.parametrize("text,variables,expected", [
    ("${A}", {"A": "x"}, "x"),
    ("${A:-d}", {"A": ""}, "d"),
    ("${A-d}", {"A": ""}, ""),
    ("${A-d}", {}, "d"),
    ("$${A}", {}, "${A}"),
    ("u:${A:?need A}@h", {"A": "p"}, "u:p@h"),
])
def test_interpolation_follows_the_compose_specification(text, variables, expected):
    """The reader the compose tests use: Compose Specification, "Interpolation"."""
    assert interpolate(text, variables) == expected


@pytest.mark.parametrize("text,variables", [("${A:?need A}", {"A": ""}), ("${A?need A}", {}), ("${A}", {})])
def test_interpolation_refuses_a_missing_variable(text, variables):
    """Required ones as compose does; an unset one without a default too (compose would warn
    and use ""), so that a test cannot miss a variable compose.yaml uses."""
    with pytest.raises(ValueError):
        interpolate(text, variables)


def test_env_example_names_every_variable_compose_needs():
    assert compose_variables(DEPLOY / "compose.yaml") == set(EXAMPLE) == set(SAMPLE)
    assert "deploy/.env" in (ROOT / ".gitignore").read_text().split(), "deploy/.env holds secrets: never commit it"


def test_compose_refuses_to_start_without_the_secrets():
    with pytest.raises(ValueError, match="OIDC_SECRET_KEY"):
        read_compose(DEPLOY / "compose.yaml", {**SAMPLE, "OIDC_SECRET_KEY": ""})


@pytest.mark.parametrize("service", ["init", "provider"])
def test_compose_sets_only_real_settings_and_they_validate(service):
    env = environment(compose()["services"][service])
    oidc = {name for name in env if name.startswith("OIDC_")}
    assert oidc <= SETTING_VARIABLES, oidc - SETTING_VARIABLES
    assert set(env) == oidc, "the provider reads nothing but OIDC_* variables"
    Settings.from_env(env).validate()


def test_compose_database_url_is_the_postgresql_service():
    services = compose()["services"]
    db = environment(services["db"])
    url = make_url(environment(services["provider"])["OIDC_DATABASE_URL"])
    assert url.drivername == "postgresql+psycopg"
    assert (url.host, url.port) == ("db", 5432)
    assert (url.username, url.password, url.database) == (db["POSTGRES_USER"], SAMPLE["POSTGRES_PASSWORD"],
                                                          db["POSTGRES_DB"])
    assert services["db"]["image"] == "docker.io/library/postgres:16"


def test_compose_keeps_postgresql_on_a_named_volume():
    document = compose()
    volume, _, target = document["services"]["db"]["volumes"][0].partition(":")
    assert target == "/var/lib/postgresql/data"
    assert volume in document["volumes"]


def test_compose_init_then_serve_from_the_containerfile_image():
    services = compose()["services"]
    program, *arguments = final_stage("ENTRYPOINT").exec_form()
    assert program == "oidc-provider"
    for name in ("init", "provider"):
        assert services[name]["image"] == "oidc-provider:latest"
        assert services[name]["build"] == {"context": "..", "dockerfile": "deploy/Containerfile"}
        assert (DEPLOY / services[name]["build"]["context"] / services[name]["build"]["dockerfile"]).is_file()
    assert parse_command_line(arguments + services["init"]["command"]).command.name == "init"
    assert services["init"]["restart"] == "no"
    serve = parse_command_line(arguments + services["provider"]["command"])
    assert serve.command.name == "serve" and serve.params["host"] == "0.0.0.0"
    assert final_stage("EXPOSE").args == str(serve.params["port"])


def test_compose_starts_in_order_of_health():
    services = compose()["services"]
    assert services["init"]["depends_on"] == {"db": {"condition": "service_healthy"}}
    assert services["provider"]["depends_on"] == {"db": {"condition": "service_healthy"},
                                                  "init": {"condition": "service_completed_successfully"}}
    assert services["db"]["healthcheck"]["test"][:2] == ["CMD", "pg_isready"]
    check = services["provider"]["healthcheck"]["test"]
    assert check[0] == "CMD" and "'http://127.0.0.1:8000/readyz'" in check[-1]


def test_compose_publishes_the_provider_on_loopback_only():
    services = compose()["services"]
    ports = services["provider"]["ports"]
    assert ports == ["127.0.0.1:8000:8000"]
    assert all("ports" not in services[name] for name in ("db", "init"))
