"""The local stack's app settings: `local.settings.sample.json`, generated from `connector.config.SETTINGS`.

`python -m devtools.local_settings` rewrites the sample; a test holds the committed file equal to
what this module generates, so every setting the code reads is documented in it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from connector.config import SETTINGS

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "local.settings.sample.json"

# Host-owned settings: read by the Functions host, not by the connector's code.
HOST_VALUES = {
    "FUNCTIONS_WORKER_RUNTIME": "python",
    "AzureWebJobsFeatureFlags": "EnableWorkerIndexing",
}


def local_values(
    graph_url: str = "http://127.0.0.1:7072/v1.0",
    scheduler_url: str = "http://127.0.0.1:7073",
    public_url: str = "http://127.0.0.1:7071",
    storage: str = "UseDevelopmentStorage=true",
) -> dict[str, str]:
    """Settings that point the app at the local stack (Azurite and both emulators)."""
    values = {spec.name: spec.example or spec.default or "" for spec in SETTINGS}
    values.update({
        "AzureWebJobsStorage": storage,
        "AzureWebJobsStorage__accountName": "",
        "AzureWebJobsStorage__credential": "",
        "AzureWebJobsStorage__clientId": "",
        "GRAPH_BASE_URL": graph_url,
        "DS_BASE_URL": scheduler_url,
        "CONNECTOR_PUBLIC_URL": public_url,
    })
    return {**HOST_VALUES, **values}


def sample() -> dict[str, Any]:
    return {
        "IsEncrypted": False,
        "Values": local_values(),
        "Host": {"LocalHttpPort": 7071},
        "_documentation": {
            "_": "Copy to local.settings.json (make run does it). Every setting the connector reads:",
            **{
                spec.name: spec.description
                + (f" Default: {spec.default}." if spec.default else "")
                + (" Required." if spec.required else "")
                + (" Secret: Key Vault reference in Azure." if spec.secret else "")
                for spec in SETTINGS
            },
        },
    }


def render() -> str:
    return json.dumps(sample(), indent=2) + "\n"


if __name__ == "__main__":
    SAMPLE.write_text(render())
    print(f"wrote {SAMPLE}")
