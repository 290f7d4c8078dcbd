"""Carry out a Containerfile on this machine, without a container engine (none runs here).

Each stage gets a directory standing for its filesystem. The paths the Containerfile itself
makes (``/src``, ``/wheels``, ``/opt/...``, ``/var/lib/...``: anything outside the base
system's ``/usr``, ``/etc``, ``/tmp``...) are mapped into that directory, in WORKDIR, COPY, ENV
and in the RUN command lines, which then run for real with ``sh -c``. The base image's Python
is a Python 3 of this machine that an unprivileged user can execute. Two things are not run:
``groupadd``/``useradd`` would change this machine's accounts, so they are read for the uid,
gid and home directory (made and given to that uid, as ``--create-home`` does); and nothing is
isolated: the image's processes see this machine's ``/usr`` and ``/tmp``.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from ..deploy_files import Instruction, healthcheck_command, stages

SYSTEM_DIRS = {"bin", "dev", "etc", "lib", "lib64", "proc", "run", "sbin", "sys", "tmp", "usr"}
ABSOLUTE_PATH = re.compile(r"(?<![\w./-])/[\w.@+-]+(?:/[\w.@+-]*)*")
RUN_TIMEOUT = 900


class BuildError(AssertionError):
    """A step of the Containerfile failed; the message has its output."""


@dataclass
class Stage:
    root: Path
    base_path: str
    name: str | None = None
    workdir: str = "/"
    env: dict[str, str] = field(default_factory=dict)
    user: str | None = None
    uid: int | None = None
    gid: int | None = None
    home: str | None = None
    exposed: list[str] = field(default_factory=list)
    entrypoint: list[str] = field(default_factory=list)
    cmd: list[str] = field(default_factory=list)
    healthcheck: list[str] = field(default_factory=list)

    def path(self, container_path: str) -> Path:
        """Where a path of this stage's filesystem is on this machine."""
        absolute = os.path.normpath(os.path.join(self.workdir, container_path))
        first = absolute.lstrip("/").split("/", 1)[0]
        if first in SYSTEM_DIRS:
            return Path(absolute)
        return self.root / absolute.lstrip("/")

    def map_text(self, text: str) -> str:
        return ABSOLUTE_PATH.sub(lambda m: str(self.path(m.group(0))), text)

    def environment(self) -> dict[str, str]:
        """The image's environment as its processes get it, paths mapped."""
        env = {"PATH": self.base_path, **self.env}
        return {name: self.map_text(value) for name, value in env.items()}


def build(containerfile_instructions: list[Instruction], *, context: Path, workdir: Path, python: str,
          build_args: dict[str, str] | None = None) -> Stage:
    """Run every stage; return the last one (the image)."""
    base_bin = workdir / "base-image-bin"
    base_bin.mkdir(parents=True)
    (base_bin / "python").symlink_to(python)
    (base_bin / "python3").symlink_to(python)
    base_path = f"{base_bin}:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin"
    done: dict[str, Stage] = {}
    stage = None
    for index, instructions in enumerate(stages(containerfile_instructions)):
        stage = Stage(root=workdir / f"stage-{index}", base_path=base_path)
        stage.root.mkdir()
        stage.root.chmod(0o755)
        for instruction in instructions:
            _step(stage, instruction, context=context, stages=done)
        if stage.name:
            done[stage.name] = stage
    return stage


def _step(stage: Stage, instruction: Instruction, *, context: Path, stages: dict[str, Stage]) -> None:
    keyword, args = instruction.keyword, instruction.args
    if keyword == "FROM":
        _, _, name = args.partition(" AS ")
        stage.name = name.strip() or None
    elif keyword == "WORKDIR":
        stage.workdir = os.path.normpath(os.path.join(stage.workdir, args))
        stage.path(".").mkdir(parents=True, exist_ok=True)
    elif keyword == "ENV":
        for pair in shlex.split(args):
            name, _, value = pair.partition("=")
            current = {"PATH": stage.base_path, **stage.env}
            stage.env[name] = re.sub(r"\$\{?(\w+)\}?", lambda m, current=current: current.get(m.group(1), ""), value)
    elif keyword == "COPY":
        *sources, target = shlex.split(args)
        source_stage = stages[instruction.flags["from"]] if "from" in instruction.flags else None
        for source in sources:
            _copy(source_stage.path(source) if source_stage else context / source, stage.path(target), target)
    elif keyword == "RUN":
        _run(stage, args)
    elif keyword == "USER":
        stage.user = args
    elif keyword == "EXPOSE":
        stage.exposed.append(args)
    elif keyword == "ENTRYPOINT":
        stage.entrypoint = instruction.exec_form()
    elif keyword == "CMD":
        stage.cmd = instruction.exec_form()
    elif keyword == "HEALTHCHECK":
        stage.healthcheck = healthcheck_command(instruction)
    else:
        raise BuildError(f"cannot carry out {keyword} {args}")


def _copy(source: Path, target: Path, written_target: str) -> None:
    if source.is_dir():
        shutil.copytree(source, target, dirs_exist_ok=True, symlinks=True)
    elif written_target.endswith("/") or target.is_dir():
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target / source.name)
    else:
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)


def _run(stage: Stage, command: str) -> None:
    """``RUN``: for real, paths mapped; accounts are read (see the module docstring)."""
    steps = [part.strip() for part in command.split("&&")]
    accounts = [s for s in steps if s.split()[0] in ("groupadd", "useradd")]
    if accounts:
        if len(accounts) != len(steps):
            raise BuildError(f"RUN mixes accounts with other work: {command}")
        _accounts(stage, accounts)
        return
    env = {**{k: v for k, v in os.environ.items() if k.startswith("PIP_")},  # this machine's index
           "HOME": str(stage.root), **stage.environment()}
    done = subprocess.run(["sh", "-ec", stage.map_text(command)], cwd=stage.path("."), env=env,
                          capture_output=True, text=True, timeout=RUN_TIMEOUT, check=False,
                          stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        raise BuildError(f"RUN {command} failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")


def _accounts(stage: Stage, steps: list[str]) -> None:
    for step in steps:
        words = shlex.split(step)
        options = dict(zip(words, words[1:], strict=False))  # --uid 10001 ...
        if words[0] == "groupadd":
            stage.gid = int(options["--gid"])
        else:
            stage.uid, stage.gid = int(options["--uid"]), int(options["--gid"])
            stage.home = options["--home-dir"]
            if "--create-home" in words:
                home = stage.path(stage.home)
                home.mkdir(parents=True, exist_ok=True)
                home.chmod(0o700)
                if os.geteuid() == 0:
                    os.chown(home, stage.uid, stage.gid)
