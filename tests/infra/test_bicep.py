"""Offline checks of infra/: Bicep syntax (pycep-parser), policy lint (checkov), and the facts the
code relies on: the app settings equal what connector/config.py declares, secrets are Key Vault
references, the Flex Consumption shape, the role assignments, and the Easy Auth exclusions.

The tools run from .venv-infra (see conftest.py), once per session.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from connector.config import SETTINGS
from connector.stores.repositories import TABLES

from .conftest import INFRA, INFRA_TIMEOUT, ROOT

pytestmark = pytest.mark.timeout(INFRA_TIMEOUT)

API = "infra/app/api.bicep"
AUTH = "infra/app/auth.bicep"
MAIN = "infra/main.bicep"
ANONYMOUS_PATHS_FILE = INFRA / "app" / "anonymous-paths.json"  # excludedPaths; the dev host reads it too

# Settings SETTINGS declares that must NOT exist in Azure: the Azurite connection string (Azure uses
# the identity-based AzureWebJobsStorage__* settings) and the Graph emulator's static token.
LOCAL_ONLY_SETTINGS = frozenset({"AzureWebJobsStorage", "GRAPH_STATIC_TOKEN"})

# Settings the Bicep sets that the code does not read because the Functions host owns them.
# APPLICATIONINSIGHTS_AUTHENTICATION_STRING: Entra auth for telemetry (local auth is disabled).
# Not listed, on purpose: FUNCTIONS_WORKER_RUNTIME / FUNCTIONS_EXTENSION_VERSION (Flex Consumption
# takes the runtime from functionAppConfig and rejects them).
HOST_OWNED_SETTINGS = frozenset({"APPLICATIONINSIGHTS_AUTHENTICATION_STRING"})

# Settings a Flex Consumption app must not have (Microsoft's list of settings deprecated on Flex).
FLEX_FORBIDDEN_SETTINGS = frozenset({
    "FUNCTIONS_WORKER_RUNTIME", "FUNCTIONS_EXTENSION_VERSION", "FUNCTIONS_WORKER_RUNTIME_VERSION",
    "WEBSITE_RUN_FROM_PACKAGE", "WEBSITE_CONTENTSHARE", "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING",
    "SCM_DO_BUILD_DURING_DEPLOYMENT", "ENABLE_ORYX_BUILD", "WEBSITE_NODE_DEFAULT_VERSION",
    "WEBSITE_MAX_DYNAMIC_APPLICATION_SCALE_OUT",
})

# Built-in role definitions the deployment may assign (docs/deployment.md says why each is needed).
DOCUMENTED_ROLES = {
    "b7e6dc6d-f1e8-4753-8033-0f276bb0955b": "Storage Blob Data Owner",
    "974c5e8b-45b9-4653-ba55-5f855dd0fb88": "Storage Queue Data Contributor",
    "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3": "Storage Table Data Contributor",
    "3913510d-42f4-4e42-8a64-420c390055eb": "Monitoring Metrics Publisher",
    "4633458b-17de-408a-b874-0445c86b69e6": "Key Vault Secrets User",
    # Deployer only, so the postprovision hook can write secrets / create the Graph certificate.
    "b86a8fe4-44ce-4948-aee5-eccacf2b6ae5": "Key Vault Secrets Officer",
    "a4417e6f-fecd-4de8-b567-7b0420556985": "Key Vault Certificates Officer",
}

# The routes reachable without sign-in (design.md): webhooks validated by the code, and health.
ANONYMOUS_ROUTES = frozenset({
    "/api/graph/notifications", "/api/graph/lifecycle", "/api/scheduler/notifications", "/api/health",
})
SIGNED_IN_ROUTES = ("/api/ui/", "/api/ui/admin", "/api/settings/me", "/api/admin/resources")

GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


# ---- helpers over pycep's JSON ----------------------------------------------------------------

def _resources(doc: dict[str, Any], type_: str) -> list[tuple[str, dict[str, Any]]]:
    """(symbolic name, body) of each resource of a type; loops and conditions unwrapped."""
    found = []
    for name, resource in doc.get("resources", {}).items():
        if resource["type"] == type_:
            config = resource["config"]
            if "loop_type" in config or ("condition" in config and "config" in config):
                config = config["config"]
            found.append((name, config))
    return found


def _one(doc: dict[str, Any], type_: str, name: str | None = None) -> dict[str, Any]:
    matches = [body for sym, body in _resources(doc, type_) if name is None or sym == name]
    assert len(matches) == 1, f"expected one {type_} {name or ''}, found {len(matches)}"
    return matches[0]


def _object_keys(node: Any, variables: dict[str, Any]) -> dict[str, Any]:
    """Setting name -> value expression, over object literals, union(), ternaries and variables."""
    if isinstance(node, str) and node in variables:
        return _object_keys(variables[node]["value"], variables)
    if isinstance(node, dict):
        if set(node) == {"function"}:
            keys: dict[str, Any] = {}
            for arg in node["function"].get("parameters", {}).values():
                keys.update(_object_keys(arg, variables))
            return keys
        if set(node) == {"operator"}:
            keys = {}
            operands = node["operator"]["operands"]
            for key in ("true_value", "false_value") if "true_value" in operands else operands:
                keys.update(_object_keys(operands[key], variables))
            return keys
        return dict(node)
    return {}


@pytest.fixture(scope="module")
def app_settings(bicep: dict[str, Any]) -> dict[str, Any]:
    api = bicep[API]
    settings = [body for _, body in _resources(api, "Microsoft.Web/sites/config") if body["name"] == "appsettings"]
    assert len(settings) == 1, "api.bicep must define the app settings in one sites/config 'appsettings' resource"
    return _object_keys(settings[0]["properties"], api.get("variables", {}))


# ---- syntax and lint --------------------------------------------------------------------------

def test_every_bicep_file_parses(bicep: dict[str, Any]) -> None:
    expected = {p.relative_to(ROOT).as_posix() for p in INFRA.rglob("*.bicep")}
    assert set(bicep) == expected
    errors = {path: doc["__error__"] for path, doc in bicep.items() if "__error__" in doc}
    assert not errors, "pycep-parser could not parse:\n" + "\n".join(f"{p}: {e}" for p, e in errors.items())


def test_checkov_passes(checkov_report: dict[str, Any]) -> None:
    summary = checkov_report["summary"]
    failed = [f"{c['check_id']} {c['resource']} ({c['file_path']}:{c['file_line_range']})"
              for c in checkov_report["results"].get("failed_checks", [])]
    assert summary["parsing_errors"] == 0
    assert not failed, "checkov failures (fix them, or justify a //checkov:skip in place):\n" + "\n".join(failed)
    assert summary["passed"] > 0 and summary["resource_count"] > 0


def test_every_checkov_suppression_is_justified(checkov_report: dict[str, Any]) -> None:
    for check in checkov_report["results"].get("skipped_checks", []):
        reason = check["check_result"].get("suppress_comment", "")
        assert len(reason.strip()) >= 20 and reason != "No comment provided", (
            f"{check['check_id']} on {check['resource']} is suppressed without a reason")


# ---- app settings vs connector/config.py ---------------------------------------------------------

def test_app_settings_are_exactly_what_the_code_reads(app_settings: dict[str, Any]) -> None:
    declared = {spec.name for spec in SETTINGS}
    assert declared >= LOCAL_ONLY_SETTINGS, "a local-only setting vanished from SETTINGS: update this test"
    expected = (declared - LOCAL_ONLY_SETTINGS) | HOST_OWNED_SETTINGS
    defined = set(app_settings)
    assert defined - expected == set(), "settings in Bicep that connector.config.SETTINGS does not declare"
    assert expected - defined == set(), "settings in connector.config.SETTINGS missing from infra/app/api.bicep"


def test_local_only_and_flex_deprecated_settings_are_absent(app_settings: dict[str, Any]) -> None:
    assert not set(app_settings) & LOCAL_ONLY_SETTINGS
    assert not set(app_settings) & FLEX_FORBIDDEN_SETTINGS
    for path in INFRA.rglob("*.bicep"):
        text = path.read_text()
        for name in FLEX_FORBIDDEN_SETTINGS | LOCAL_ONLY_SETTINGS:
            assert not re.search(rf"^\s*'?{name}'?\s*:", text, re.MULTILINE), f"{name} set in {path}"


def test_secrets_are_key_vault_references(app_settings: dict[str, Any]) -> None:
    for spec in SETTINGS:
        if spec.secret and spec.name not in LOCAL_ONLY_SETTINGS:
            value = app_settings[spec.name]
            assert isinstance(value, str) and value.startswith("@Microsoft.KeyVault(SecretUri=${keyVaultUri}secrets/"), (
                f"{spec.name} must be a Key Vault reference, not {value!r}")


def test_identity_based_storage_and_telemetry_settings(app_settings: dict[str, Any]) -> None:
    assert app_settings["AzureWebJobsStorage__credential"] == "managedidentity"
    assert app_settings["AzureWebJobsStorage__clientId"] == "identityClientId"
    assert app_settings["AzureWebJobsStorage__accountName"] == "storageAccountName"
    assert app_settings["AZURE_CLIENT_ID"] == "identityClientId"
    assert app_settings["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"] == "ClientId=${identityClientId};Authorization=AAD"


def test_every_app_setting_has_a_comment(app_settings: dict[str, Any]) -> None:
    lines = (ROOT / API).read_text().splitlines()
    for name in app_settings:
        index = next(i for i, line in enumerate(lines) if re.match(rf"\s*{name}\s*:", line))
        assert lines[index - 1].strip().startswith("//"), f"{name}: say in a comment which code reads it and why"


# ---- resource shape ---------------------------------------------------------------------------

def test_flex_consumption_function_app(bicep: dict[str, Any]) -> None:
    api = bicep[API]
    plan = _one(api, "Microsoft.Web/serverfarms")
    assert plan["sku"] == {"name": "FC1", "tier": "FlexConsumption"}
    assert plan["properties"]["reserved"] is True
    site = _one(api, "Microsoft.Web/sites")
    assert site["kind"] == "functionapp,linux"
    assert site["identity"]["type"] == "UserAssigned"
    props = site["properties"]
    assert props["httpsOnly"] is True
    assert props["keyVaultReferenceIdentity"] == "identityId"
    config = props["functionAppConfig"]
    assert config["runtime"] == {"name": "python", "version": "3.11"}
    storage = config["deployment"]["storage"]
    assert storage["type"] == "blobContainer"
    assert storage["authentication"] == {"type": "UserAssignedIdentity", "userAssignedIdentityResourceId": "identityId"}
    assert set(config["scaleAndConcurrency"]) == {"maximumInstanceCount", "instanceMemoryMB", "alwaysReady"}
    assert site["tags"]["function"]["parameters"]["arg_2"] == {"'azd-service-name'": "serviceName"}


def test_http_functions_have_an_always_ready_instance(bicep: dict[str, Any]) -> None:
    """Graph counts a webhook answer slower than 3 s as failed; a cold start must not cost it that."""
    config = _one(bicep[API], "Microsoft.Web/sites")["properties"]["functionAppConfig"]
    assert config["scaleAndConcurrency"]["alwaysReady"] == [{"name": "http", "instanceCount": "alwaysReadyHttpInstances"}]
    for doc in (bicep[API], bicep[MAIN]):
        param = doc["parameters"]["alwaysReadyHttpInstances"]
        assert param["default"] == 1, param
    # main.bicep hands its parameter to the app module (azd sets it from ALWAYS_READY_HTTP_INSTANCES).
    assert re.search(r"^\s*alwaysReadyHttpInstances: alwaysReadyHttpInstances$", (ROOT / MAIN).read_text(), re.M)
    parameters = json.loads((ROOT / "infra/main.parameters.json").read_text())["parameters"]
    assert parameters["alwaysReadyHttpInstances"]["value"] == "${ALWAYS_READY_HTTP_INSTANCES=1}"


def test_storage_account(bicep: dict[str, Any]) -> None:
    doc = bicep["infra/app/storage.bicep"]
    props = _one(doc, "Microsoft.Storage/storageAccounts")["properties"]
    assert props["allowSharedKeyAccess"] is False
    assert props["minimumTlsVersion"] == "TLS1_2"
    assert props["allowBlobPublicAccess"] is False
    variables = doc["variables"]
    assert set(variables["queueNames"]["value"]) == {
        "exchange-changes", "exchange-changes-poison", "planning-changes", "planning-changes-poison"}
    assert set(variables["tableNames"]["value"]) == set(TABLES)  # every table the repositories use


def test_key_vault(bicep: dict[str, Any]) -> None:
    props = _one(bicep["infra/app/keyvault.bicep"], "Microsoft.KeyVault/vaults")["properties"]
    assert props["enableRbacAuthorization"] is True
    assert props["enableSoftDelete"] is True
    assert props["enablePurgeProtection"] is True


def test_application_insights_uses_entra_auth_only(bicep: dict[str, Any]) -> None:
    component = _one(bicep["infra/core/monitoring.bicep"], "Microsoft.Insights/components")
    assert component["properties"]["DisableLocalAuth"] is True


# ---- roles ------------------------------------------------------------------------------------

def test_role_definition_ids_are_documented() -> None:
    used = {m.group(0).lower() for p in INFRA.rglob("*.bicep") for m in GUID.finditer(p.read_text())}
    assert used, "no role definition ids found"
    assert used <= set(DOCUMENTED_ROLES), f"undocumented role definition ids: {used - set(DOCUMENTED_ROLES)}"
    docs = (ROOT / "docs" / "deployment.md").read_text()
    for role_id, role_name in DOCUMENTED_ROLES.items():
        if role_id in used:
            assert role_name in docs, f"docs/deployment.md must say why {role_name} is assigned"


def test_role_assignment_names_use_guid_of_scope_principal_and_role(bicep: dict[str, Any]) -> None:
    count = 0
    for path, doc in bicep.items():
        for symbol, body in _resources(doc, "Microsoft.Authorization/roleAssignments"):
            count += 1
            name = body["name"]
            assert isinstance(name, dict) and name.get("function", {}).get("type") == "guid", f"{path}:{symbol}"
            args = list(name["function"]["parameters"].values())
            assert len(args) == 3, f"{path}:{symbol}: guid(scope.id, principalId, roleId)"
            scope = args[0]["operator"]
            assert scope["type"] == "property_accessor" and scope["operands"]["operand_2"] == "id"
            assert scope["operands"]["operand_1"] == body["scope"], f"{path}:{symbol}: guid() must use the scope's id"
            assert args[1] == body["properties"]["principalId"], f"{path}:{symbol}: guid() must use the principal"
            role_arg = body["properties"]["roleDefinitionId"]["function"]["parameters"]["resource_name_1"]
            assert args[2] == role_arg, f"{path}:{symbol}: guid() must use the role definition id"
    assert count >= 5  # storage (a loop of 3), metrics publisher, secrets user, 2 deployer roles


# ---- Easy Auth --------------------------------------------------------------------------------

def test_excluded_paths_are_exactly_the_anonymous_routes(bicep: dict[str, Any]) -> None:
    doc = bicep[AUTH]
    body = _one(doc, "Microsoft.Web/sites/config")
    assert body["name"] == "authsettingsV2"
    validation = body["properties"]["globalValidation"]
    assert validation["requireAuthentication"] is True
    assert validation["unauthenticatedClientAction"] == "RedirectToLoginPage"
    # The list comes from the one source the dev host's Easy Auth stand-in reads too.
    loaded = doc["variables"][validation["excludedPaths"]]["value"]
    assert loaded == {"function": {"type": "load_json_content", "property_name": "paths", "parameters": {
        "file_path": ANONYMOUS_PATHS_FILE.name, "json_path": None, "encoding": None}}}
    excluded = json.loads(ANONYMOUS_PATHS_FILE.read_text())["paths"]
    assert all(isinstance(path, str) and path.startswith("/") for path in excluded)
    assert len(excluded) == len(set(excluded))
    assert set(excluded) == ANONYMOUS_ROUTES
    for route in SIGNED_IN_ROUTES:
        assert not any(route.startswith(path.rstrip("*")) for path in excluded), f"{route} would be anonymous"
    provider = body["properties"]["identityProviders"]["azureActiveDirectory"]
    assert provider["enabled"] is True
    assert provider["registration"]["clientId"] == "clientId"


# ---- azd wiring -------------------------------------------------------------------------------

def test_parameters_file_matches_main_bicep(bicep: dict[str, Any]) -> None:
    params = bicep[MAIN]["parameters"]
    values = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    assert set(values) <= set(params), f"unknown parameters: {set(values) - set(params)}"
    required = {name for name, p in params.items() if p.get("default") is None}
    assert required <= set(values), f"parameters azd cannot fill: {required - set(values)}"
    for name, entry in values.items():
        assert re.fullmatch(r"\$\{[A-Z0-9_]+(=[^}]*)?\}", entry["value"]), f"{name}: use an azd ${{VAR}} reference"
    secure = {name for name, p in params.items() if any(d["type"] == "secure" for d in p["decorators"])}
    assert not secure & set(values), "secrets must not flow through azd's .env: hooks write them to Key Vault"


def test_outputs_azd_and_operators_need(bicep: dict[str, Any]) -> None:
    outputs = bicep[MAIN]["outputs"]
    for name in ("AZURE_FUNCTION_APP_NAME", "AZURE_KEY_VAULT_NAME", "AZURE_RESOURCE_GROUP", "AZURE_TENANT_ID",
                 "AZURE_USER_ASSIGNED_IDENTITY_PRINCIPAL_ID", "GRAPH_NOTIFICATION_URL", "GRAPH_LIFECYCLE_URL",
                 "SCHEDULER_NOTIFICATION_URL", "HEALTH_URL", "SETTINGS_PAGE_URL", "MONITOR_URL", "AUTH_REDIRECT_URI"):
        assert name in outputs, name
    assert outputs["SETTINGS_PAGE_URL"]["value"] == "${baseUrl}/api/ui/"
    assert outputs["MONITOR_URL"]["value"] == "${baseUrl}/api/ui/admin"
    for name in outputs:
        assert "SECRET" not in name or name.endswith("_NAME"), f"output {name} looks like a secret"


def test_azure_yaml(parsed: dict[str, Any]) -> None:
    config = parsed["azure_yaml"]
    assert config is not None, "azure.yaml is missing"
    assert config["services"]["api"] == {**config["services"]["api"],
                                         "project": ".", "language": "python", "host": "function"}
    for hook in ("preprovision", "postprovision"):
        script = ROOT / config["hooks"][hook]["run"]
        assert script.is_file(), script
        assert script.stat().st_mode & 0o111, f"{script} is not executable"
