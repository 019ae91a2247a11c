"""host.json, requirements.txt and the hook scripts are what Flex Consumption and azd expect."""

from __future__ import annotations

import json
import re
import subprocess
import tomllib

import pytest

from .conftest import ROOT

SCRIPTS = sorted((ROOT / "infra" / "scripts").glob("*.sh"))


def test_host_json_is_v2_with_an_extension_bundle_range() -> None:
    host = json.loads((ROOT / "host.json").read_text())
    assert host["version"] == "2.0"
    bundle = host["extensionBundle"]
    assert bundle["id"] == "Microsoft.Azure.Functions.ExtensionBundle"
    # A version range such as "[4.*, 5.0.0)": Flex runs extension bundle 4.x.
    assert re.fullmatch(r"\[\s*4(\.[\d*]+)*\s*,\s*5(\.\d+)*\s*\)", bundle["version"]), bundle["version"]


def test_requirements_are_pinned_and_include_azure_functions() -> None:
    pins = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        assert not line.startswith("-"), f"requirements.txt is deployed alone; no options or includes: {line}"
        match = re.fullmatch(r"([A-Za-z0-9_.\-\[\]]+)==([\w.\-+]+)", line)
        assert match, f"not pinned with ==: {line}"
        pins[match.group(1).lower()] = match.group(2)
    assert "azure-functions" in pins


def test_infra_requirements_are_pinned() -> None:
    for line in (ROOT / "requirements-infra.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            assert re.fullmatch(r"[A-Za-z0-9_.\-\[\]]+==[\w.\-+]+", line), line


def test_runtime_version_matches_the_project() -> None:
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert ">=3.11" in requires and "<3.12" in requires
    assert re.search(r"runtime:\s*\{\s*name:\s*'python'\s*version:\s*'3\.11'", re.sub(
        r"\s+", " ", (ROOT / "infra" / "app" / "api.bicep").read_text()))


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_hook_scripts_are_valid_bash(script) -> None:  # type: ignore[no-untyped-def]
    subprocess.run(["bash", "-n", str(script)], check=True)


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_hook_scripts_never_trace_or_echo_secrets(script) -> None:  # type: ignore[no-untyped-def]
    text = script.read_text()
    assert not re.search(r"set -[a-z]*x|set -o xtrace", text), "tracing would print secret material"
    for line in text.splitlines():
        if re.search(r"(echo|printf|log)\b.*\$\{?(api_key|password|client_secret)\b", line, re.IGNORECASE):
            assert re.search(r'>\s*"\$file"\s*$', line), f"{script.name} may print a secret: {line.strip()}"
