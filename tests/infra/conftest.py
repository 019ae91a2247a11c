"""Fixtures for the offline infrastructure checks.

The tools (pycep-parser, checkov) live in their own venv, `.venv-infra`, built here from
requirements-infra.txt when it is missing or the requirements changed (a digest is kept in
`.venv-infra/.installed`), and reused otherwise. The tests run under the project's venv and call
the tools as subprocesses; each tool runs once per session.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
INFRA_VENV = Path(os.environ.get("INFRA_VENV", ROOT / ".venv-infra"))
INFRA_REQUIREMENTS = ROOT / "requirements-infra.txt"

# Building .venv-infra from scratch downloads checkov and its dependencies (about a minute);
# the tests that need it get a longer timeout than the project's default.
INFRA_TIMEOUT = 900


def _venv_bin(name: str) -> Path:
    return INFRA_VENV / ("Scripts" if os.name == "nt" else "bin") / name


@pytest.fixture(scope="session")
def infra_python() -> Path:
    """The Python of .venv-infra, with pycep-parser and checkov installed as pinned."""
    python = _venv_bin("python")
    marker = INFRA_VENV / ".installed"
    digest = hashlib.sha256(INFRA_REQUIREMENTS.read_bytes()).hexdigest()
    if python.exists() and marker.exists() and marker.read_text().strip() == digest:
        return python
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(INFRA_VENV)], check=True)
    pip = [str(python), "-m", "pip", "--disable-pip-version-check"]
    subprocess.run([*pip, "install", "--quiet", "-r", str(INFRA_REQUIREMENTS)], check=True)
    subprocess.run([*pip, "check"], check=True, stdout=subprocess.DEVNULL)
    marker.write_text(digest + "\n")
    return python


@pytest.fixture(scope="session")
def parsed(infra_python: Path) -> dict[str, Any]:
    """pycep's JSON for every .bicep file and the parsed azure.yaml (see _dump.py)."""
    result = subprocess.run(
        [str(infra_python), str(Path(__file__).with_name("_dump.py")), str(ROOT)],
        check=True, capture_output=True, text=True, timeout=300,
    )
    data: dict[str, Any] = json.loads(result.stdout)
    return data


@pytest.fixture(scope="session")
def bicep(parsed: dict[str, Any]) -> dict[str, Any]:
    """pycep's JSON per .bicep file, keyed by path relative to the repo (e.g. 'infra/app/api.bicep')."""
    files: dict[str, Any] = parsed["bicep"]
    return files


@pytest.fixture(scope="session")
def checkov_report(infra_python: Path) -> dict[str, Any]:
    """checkov's JSON report for `checkov --framework bicep -d infra` (run once per session)."""
    checkov = _venv_bin("checkov")
    result = subprocess.run(
        [str(checkov), "--framework", "bicep", "-d", str(INFRA), "--output", "json", "--skip-download"],
        capture_output=True, text=True, timeout=600, cwd=ROOT,
        env={**os.environ, "LOG_LEVEL": "WARNING"},
    )
    if not result.stdout.strip():
        pytest.fail(f"checkov printed no report (exit {result.returncode}):\n{result.stderr[-4000:]}")
    report = json.loads(result.stdout)
    if isinstance(report, list):  # one entry per framework when several ran
        report = next(r for r in report if r.get("check_type") == "bicep")
    report["_exit_code"] = result.returncode
    data: dict[str, Any] = report
    return data
