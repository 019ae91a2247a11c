"""Runs inside .venv-infra (not the project venv): parses every infra/**/*.bicep with pycep-parser
and azure.yaml with PyYAML, and prints one JSON document for the tests in this folder.

Output: {"bicep": {"<path relative to the repo>": <pycep JSON> | {"__error__": "..."}},
         "azure_yaml": <parsed azure.yaml> | null}
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import yaml
from pycep import BicepParser


def main(root: Path) -> None:
    parser = BicepParser()
    bicep: dict[str, object] = {}
    for path in sorted((root / "infra").rglob("*.bicep")):
        key = path.relative_to(root).as_posix()
        try:
            bicep[key] = parser.parse(file_path=path)
        except Exception as error:  # report every broken file, not just the first
            bicep[key] = {"__error__": f"{type(error).__name__}: {error}"}
    azure_yaml_path = root / "azure.yaml"
    azure_yaml = yaml.safe_load(azure_yaml_path.read_text()) if azure_yaml_path.exists() else None
    json.dump({"bicep": bicep, "azure_yaml": azure_yaml}, sys.stdout, default=str)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
