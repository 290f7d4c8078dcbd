"""Signing keys are sealed under OIDC_SECRET_KEY: starting with another secret is a clear
operator error at init/serve/dev, never a server that answers 500 on every token request."""

import json

from click.testing import CliRunner

from oidc_provider.cli import main


def test_init_with_a_changed_secret_key_names_the_problem(tmp_path):
    env = {
        "OIDC_ISSUER": "http://127.0.0.1:5000", "OIDC_SECRET_KEY": "first-secret-" + "a" * 32,
        "OIDC_DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite'}", "OIDC_CONFIG_FILE": "",
    }
    runner = CliRunner()
    first = runner.invoke(main, ["init", "--json"], env=env, catch_exceptions=False)
    assert first.exit_code == 0, first.stderr
    assert len(json.loads(first.stdout)["keys_created"]) == 6
    changed = runner.invoke(main, ["init"], env={**env, "OIDC_SECRET_KEY": "second-secret-" + "b" * 32},
                            catch_exceptions=False)
    assert changed.exit_code == 1
    last = changed.stderr.strip().splitlines()[-1]
    assert last.startswith("Error: OIDC_SECRET_KEY does not open the signing keys stored in this database "
                           "(sealed under another key)")
    assert "nothing was changed" in last
