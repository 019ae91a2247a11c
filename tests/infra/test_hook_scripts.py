"""The azd hooks run end to end against stand-ins for `az` and `azd` (no Azure): they complete,
call what they should, and never print a secret value."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from .conftest import ROOT

SCRIPTS = ROOT / "infra" / "scripts"
SECRET = "STUB-CLIENT-SECRET-VALUE-1234"

# Answers by command prefix; the first match wins. Key Vault has nothing yet (first deployment).
FAKE_AZ = r"""#!/usr/bin/env bash
echo "az $*" >> "$STUB_LOG"
case "$*" in
  "account show"*) echo "tenant-1";;
  *"--query web.redirectUris"*) echo '[]';;
  *"appRoles[?value=='Connector.Admin'].id"*) echo "role-1";;
  "ad app show --id"*"--query appRoles"*) echo '[]';;
  "ad app show"*) echo "app-1";;
  "ad app list"*) echo "";;
  "ad app create"*) echo "new-app";;
  "keyvault secret show"*|"keyvault certificate show"*) echo "(SecretNotFound) not found" >&2; exit 1;;
  "ad app federated-credential list"*) echo 0;;
  *"{id:id,value:value}"*) printf '%s' '[{"id":"r1","value":"Calendars.ReadWrite"},{"id":"r2","value":"User.Read.All"},' \
    '{"id":"r3","value":"MailboxSettings.Read"}]';;
  "ad sp show --id 00000003-0000-0000-c000-000000000000 --query appRoles"*) printf 'r1\nr2\nr3\n';;
  "ad sp show"*) echo "sp-1";;
  "rest --method GET"*"appRoleAssignments"*) printf 'r1\n';;
  "rest --method GET"*) echo 0;;
  "ad signed-in-user show"*) echo "me-1";;
  "ad app credential reset"*"--query password"*) echo "$STUB_SECRET";;
  "keyvault certificate get-default-policy"*) echo '{"x509CertificateProperties": {}}';;
  *) ;;
esac
"""


@pytest.fixture()
def stub_env(tmp_path: Path) -> dict[str, str]:
    for name, text in (("az", FAKE_AZ), ("azd", '#!/usr/bin/env bash\necho "azd $*" >> "$STUB_LOG"\n')):
        tool = tmp_path / name
        tool.write_text(text)
        tool.chmod(0o755)
    return {
        "PATH": f"{tmp_path}{os.pathsep}{os.environ['PATH']}", "HOME": str(tmp_path),
        "STUB_LOG": str(tmp_path / "calls.log"), "STUB_SECRET": SECRET, "AZURE_ENV_NAME": "test",
        "AZURE_RESOURCE_GROUP": "rg-test", "AZURE_FUNCTION_APP_NAME": "func-api-x", "AZURE_KEY_VAULT_NAME": "kv-x",
        "AZURE_TENANT_ID": "tenant-1", "AZURE_USER_ASSIGNED_IDENTITY_PRINCIPAL_ID": "principal-1",
        "AUTH_REDIRECT_URI": "https://func-api-x.azurewebsites.net/.auth/login/aad/callback",
        "DS_API_KEY_SECRET_NAME": "ds-api-key", "SCHEDULER_WEBHOOK_SECRET_NAME": "scheduler-webhook-secret",
        "GRAPH_CLIENT_SECRET_NAME": "graph-client-secret", "GRAPH_CLIENT_CERTIFICATE_NAME": "graph-client-certificate",
    }


def _run(script: str, env: dict[str, str]) -> tuple[str, str]:
    result = subprocess.run(["bash", str(SCRIPTS / script)], env=env, stdin=subprocess.DEVNULL,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout + result.stderr, Path(env["STUB_LOG"]).read_text()


def test_preprovision_creates_both_apps_and_records_their_ids(stub_env: dict[str, str]) -> None:
    _, calls = _run("preprovision.sh", stub_env)
    assert "az ad app update --id new-app --required-resource-accesses" in calls
    assert "az ad app update --id new-app --enable-id-token-issuance true" in calls
    assert "--app-roles @" in calls
    assert "azd env set GRAPH_CLIENT_ID new-app" in calls and "azd env set AUTH_CLIENT_ID new-app" in calls


def test_preprovision_reuses_apps_already_in_the_environment(stub_env: dict[str, str]) -> None:
    _, calls = _run("preprovision.sh", {**stub_env, "GRAPH_CLIENT_ID": "g-1", "AUTH_CLIENT_ID": "a-1"})
    assert "ad app create" not in calls
    assert "azd env set GRAPH_CLIENT_ID g-1" in calls and "azd env set AUTH_CLIENT_ID a-1" in calls


def test_postprovision_secretless(stub_env: dict[str, str]) -> None:
    output, calls = _run("postprovision.sh", {**stub_env, "GRAPH_CLIENT_ID": "g-1", "AUTH_CLIENT_ID": "a-1"})
    assert "az ad app federated-credential create --id g-1 --parameters @" in calls
    assert "credential reset" not in calls
    assert "keyvault secret set --vault-name kv-x --name scheduler-webhook-secret --file" in calls
    assert "az ad app permission admin-consent --id g-1" in output  # consent missing: the command is shown
    assert "az functionapp restart" in calls


def test_postprovision_client_secret_goes_to_key_vault_unseen(stub_env: dict[str, str]) -> None:
    env = {**stub_env, "GRAPH_CLIENT_ID": "g-1", "AUTH_CLIENT_ID": "a-1", "GRAPH_AUTH_MODE": "client_secret"}
    output, calls = _run("postprovision.sh", env)
    assert "keyvault secret set --vault-name kv-x --name graph-client-secret --file" in calls
    assert "federated-credential create" not in calls
    assert SECRET not in output and SECRET not in calls  # never printed, never on a command line
