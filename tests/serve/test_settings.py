"""Settings, keys and start-up refusals: each bad configuration fails before binding, with the fix."""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
from pathlib import Path

import pytest
from starlette.datastructures import Headers

from agentwatch.serve import ApiKeys, ServeSettings
from agentwatch.serve.auth import AuthConfigError, require_safe_exposure

from .conftest import KEY_A, KEYS

REPO = Path(__file__).resolve().parents[2]


def test_every_setting_is_read_from_its_variable_and_documented_in_the_readme() -> None:
    readme = (REPO / "README.md").read_text()
    for f in dataclasses.fields(ServeSettings):
        assert f"`{f.metadata['env']}`" in readme, f.metadata["env"]
    settings = ServeSettings.from_env(
        {"AGENTWATCH_SERVE_PORT": "9001", "AGENTWATCH_SERVE_SIM": "yes", "AGENTWATCH_SERVE_METADATA_ATTRIBUTES": "a, b"}
    )
    assert (settings.port, settings.sim, settings.metadata_attributes) == (9001, True, ("a", "b"))


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ({"AGENTWATCH_SERVE_PORT": "eighty"}, "AGENTWATCH_SERVE_PORT='eighty' is invalid"),
        ({"AGENTWATCH_SERVE_SIM": "maybe"}, "write true or false"),
        ({"AGENTWATCH_SERVE_MAX_RUNS": "0"}, "AGENTWATCH_SERVE_MAX_RUNS must be at least 1"),
        ({"AGENTWATCH_SERVE_SIM_FAULT_RATE": "2"}, "between 0 and 1"),
    ],
)
def test_bad_settings_name_the_variable(env: dict[str, str], fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        ServeSettings.from_env(env)


def test_keys_map_to_tenants_from_the_variable_and_the_file(tmp_path: Path) -> None:
    keys_file = tmp_path / "keys.txt"
    keys_file.write_text("# ops team\ngamma:gamma-key-0123456789abcdef\n\n")
    keys = ApiKeys.load(KEYS, str(keys_file))
    assert keys.tenant_for(Headers({"authorization": f"Bearer {KEY_A}"})) == "alpha"
    assert keys.tenant_for(Headers({"x-api-key": "gamma-key-0123456789abcdef"})) == "gamma"
    assert keys.tenant_for(Headers({"authorization": f"Bearer {KEY_A}x"})) is None
    assert KEY_A not in repr(keys) and KEY_A not in repr(ServeSettings(api_keys=KEYS))


@pytest.mark.parametrize(
    ("inline", "fragment"),
    [
        ("alpha", "item 1 is not 'tenant:key'"),
        ("alpha:short", "at least 16 characters"),
        ("a:0123456789abcdef0,b:0123456789abcdef0", "the same API key is configured twice"),
    ],
)
def test_bad_keys_are_rejected_without_showing_them(inline: str, fragment: str) -> None:
    with pytest.raises(AuthConfigError, match=fragment) as caught:
        ApiKeys.load(inline)
    assert "0123456789abcdef0" not in str(caught.value) and "short" not in str(caught.value)


def test_no_keys_is_allowed_only_on_loopback_or_when_insecure() -> None:
    for host in ("127.0.0.1", "::1", "localhost"):
        require_safe_exposure(ApiKeys(), host, insecure_no_auth=False)
    require_safe_exposure(ApiKeys(), "0.0.0.0", insecure_no_auth=True)
    with pytest.raises(AuthConfigError, match=re.escape("refusing to serve on 0.0.0.0 without API keys")):
        require_safe_exposure(ApiKeys(), "0.0.0.0", insecure_no_auth=False)


def _serve(*args: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(REPO)}
    command = [sys.executable, "-m", "agentwatch.cli", "serve", *args]
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=60)


def test_the_command_refuses_to_start_open_on_a_public_address_and_bad_references() -> None:
    open_service = _serve("agentwatch.demo:demo_agent", "--sim", "--host", "0.0.0.0", "--port", "0")
    assert open_service.returncode != 0
    assert "refusing to serve on 0.0.0.0 without API keys" in open_service.stderr
    assert "--insecure-no-auth" in open_service.stderr
    missing = _serve("agentwatch.demo:no_such_agent", "--port", "0")
    assert missing.returncode != 0 and "has no attribute 'no_such_agent'" in missing.stderr
