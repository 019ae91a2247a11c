"""The configuration module: every setting validated at start-up, errors that name the setting."""

from __future__ import annotations

import json

import pytest

from connector.config import SETTING_NAMES, ConfigError, GraphAuthMode, Secret, load_settings
from devtools.local_settings import SAMPLE, local_values, render


def env(**overrides: str) -> dict[str, str]:
    values = local_values()
    values.update(overrides)
    return values


def test_local_stack_settings_load_with_documented_defaults() -> None:
    settings = load_settings(env())
    assert settings.graph.auth_mode is GraphAuthMode.STATIC_TOKEN
    assert settings.graph.base_url == "http://127.0.0.1:7072/v1.0"
    assert settings.planning.base_url == "http://127.0.0.1:7073"
    assert settings.sync_window_past_days == 30 and settings.sync_window_future_days == 180
    assert settings.schedules.sync_resources == "0 */15 * * * *"
    assert settings.graph_notification_url == "http://127.0.0.1:7071/api/graph/notifications"
    assert settings.admin_app_role == "Connector.Admin"


@pytest.mark.parametrize("name", ["DS_API_KEY", "CONNECTOR_PUBLIC_URL", "SCHEDULER_WEBHOOK_SECRET"])
def test_missing_required_setting_is_named(name: str) -> None:
    values = env()
    del values[name]
    with pytest.raises(ConfigError) as caught:
        load_settings(values)
    assert any(p.startswith(f"{name} is missing") for p in caught.value.problems)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SYNC_WINDOW_PAST_DAYS", "minus three"),
        ("SYNC_WINDOW_FUTURE_DAYS", "0"),
        ("SUBSCRIPTION_LIFETIME_MINUTES", "20000"),
        ("SYNC_TO_EXCHANGE_ENABLED", "maybe"),
        ("GRAPH_BASE_URL", "graph.microsoft.com"),
        ("POLL_PLANNING_SCHEDULE", "*/5 * * * *"),  # 5 fields: NCRONTAB needs seconds first
        ("GRAPH_AUTH_MODE", "password"),
        ("DS_SOURCE_APP", "X" * 31),
    ],
)
def test_invalid_value_is_named_with_what_was_expected(name: str, value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(env(**{name: value}))
    assert any(p.startswith(f"{name} is invalid") for p in caught.value.problems), caught.value.problems


def test_all_problems_are_reported_at_once() -> None:
    values = env(SYNC_WINDOW_PAST_DAYS="x")
    del values["DS_API_KEY"]
    with pytest.raises(ConfigError) as caught:
        load_settings(values)
    assert len(caught.value.problems) == 2
    assert "DS_API_KEY" in str(caught.value) and "SYNC_WINDOW_PAST_DAYS" in str(caught.value)


def test_graph_auth_mode_requires_its_credentials() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(env(GRAPH_AUTH_MODE="client_secret"))
    names = {p.split()[0] for p in caught.value.problems}
    assert names == {"GRAPH_TENANT_ID", "GRAPH_CLIENT_ID", "GRAPH_CLIENT_SECRET"}


def test_static_token_is_refused_against_real_graph() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(env(GRAPH_BASE_URL="https://graph.microsoft.com/v1.0"))
    assert "static_token is only allowed with a loopback GRAPH_BASE_URL" in str(caught.value)


def test_identity_based_storage_needs_no_connection_string() -> None:
    values = env(AzureWebJobsStorage="", AzureWebJobsStorage__accountName="stconnector",
                 AzureWebJobsStorage__credential="managedidentity", AzureWebJobsStorage__clientId="abc")
    settings = load_settings(values)
    assert settings.storage.connection_string is None
    assert settings.storage.queue_url == "https://stconnector.queue.core.windows.net"


def test_no_storage_at_all_is_an_error() -> None:
    with pytest.raises(ConfigError, match="AzureWebJobsStorage is missing"):
        load_settings(env(AzureWebJobsStorage=""))


def test_secrets_never_show_in_repr_or_errors() -> None:
    settings = load_settings(env(DS_API_KEY="super-secret-key-123"))
    assert "super-secret-key-123" not in repr(settings)
    assert settings.planning.api_key.reveal() == "super-secret-key-123"
    assert str(Secret("abc")) == "Secret('***')"


def test_sample_settings_file_documents_every_setting_and_is_current() -> None:
    sample = json.loads(SAMPLE.read_text())
    assert set(sample["Values"]) >= SETTING_NAMES
    assert set(sample["_documentation"]) >= SETTING_NAMES
    assert SAMPLE.read_text() == render(), "run `python -m devtools.local_settings` to regenerate the sample"


def test_planning_rules_and_edit_policy_are_validated_at_start_up() -> None:
    settings = load_settings(env(PLANNING_RULES="exclude category = Internal", OUTLOOK_EDIT_POLICY="ignore"))
    assert settings.planning_rules.describe() == "exclude category = Internal"
    assert settings.outlook_edit_policy.value == "ignore"
    with pytest.raises(ConfigError) as caught:
        load_settings(env(PLANNING_RULES="exclude colour = red"))
    assert "PLANNING_RULES is invalid: rule 1" in str(caught.value) and "unknown field 'colour'" in str(caught.value)


def test_readme_configuration_table_lists_every_setting() -> None:
    readme = (SAMPLE.parent / "README.md").read_text()
    missing = [name for name in SETTING_NAMES if f"| `{name}` |" not in readme]
    assert missing == []
