"""``systemd-analyze verify`` on the units in ``deploy/``: every key known to this systemd,
every value well-formed, the timer's service present, and the commands executable.

verify refuses a unit whose ExecStart= binary does not exist, so the units are copied into a
temporary directory with ``/opt/oidc-provider/venv/bin/oidc-provider`` replaced by the
``oidc-provider`` of the venv running the tests; nothing else changes. verify reports unknown
keys and bad values as warnings with exit status 0, so any output at all fails the test.
bin/test installs Debian's ``systemd`` package (which ships systemd-analyze) when it is missing;
a missing systemd-analyze fails here rather than skipping.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ..deploy_files import DEPLOY, UNITS

pytestmark = pytest.mark.e2e

INSTALLED = "/opt/oidc-provider/venv/bin/oidc-provider"


def verify(directory: Path) -> subprocess.CompletedProcess:
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze is missing: install Debian's systemd package (bin/test does)"
    return subprocess.run([analyze, "verify", "--man=no", *(str(directory / name) for name in UNITS)],
                          capture_output=True, text=True, timeout=60, check=False, stdin=subprocess.DEVNULL)


def copy_units(directory: Path) -> None:
    here = Path(sys.executable).parent / "oidc-provider"
    assert here.is_file(), here
    for name in UNITS:
        text = (DEPLOY / name).read_text()
        (directory / name).write_text(text.replace(INSTALLED, str(here)))


def test_units_verify_without_a_single_warning(tmp_path):
    copy_units(tmp_path)
    done = verify(tmp_path)
    assert (done.returncode, done.stdout + done.stderr) == (0, "")


def test_verify_would_report_a_mistake(tmp_path):
    """The check above is sensitive: a misspelt sandbox key and a bad value are reported."""
    copy_units(tmp_path)
    unit = tmp_path / "oidc-provider.service"
    unit.write_text(unit.read_text().replace("ProtectHome=yes", "ProtectHome=yes\nProtectHomes=yes\n"
                                             "RestrictAddressFamilies=AF_NOPE"))
    done = verify(tmp_path)
    output = done.stdout + done.stderr
    assert "Unknown key 'ProtectHomes'" in output, output
    assert "Failed to parse address family, ignoring: AF_NOPE" in output, output
