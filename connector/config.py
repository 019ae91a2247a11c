"""The connector's configuration: every app setting it reads, in one place, validated at start-up.

`SETTINGS` is the single list of settings. `load_settings()` reads them from the environment (Azure
app settings, or `local.settings.json` `Values` under `func start` / the dev host), validates all of
them, and raises one `ConfigError` naming every missing or invalid setting. Nothing else in the code
reads `os.environ`. Secrets are wrapped in `Secret` so that no repr, log line or health answer can
show them. The Bicep test and `local.settings.sample.json` are held against `SETTINGS`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypeVar
from urllib.parse import urlparse

from connector.sync.conflicts import ConflictPolicy
from connector.sync.rules import RuleError, RuleSet, parse_rules
from connector.sync.to_planning import OutlookEditPolicy

T = TypeVar("T")


class ConfigError(ValueError):
    """One or more app settings are missing or invalid; the message names each of them."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("Invalid configuration:\n  - " + "\n  - ".join(problems))


class Secret:
    """A secret value that never shows itself in repr/str (logs, tracebacks, health answers)."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


class GraphAuthMode(StrEnum):
    """How the connector authenticates to Microsoft Graph."""

    CLIENT_SECRET = "client_secret"  # app registration + client secret (from Key Vault in Azure)
    CERTIFICATE = "certificate"  # app registration + certificate (PEM, from Key Vault in Azure)
    # Secretless: the managed identity's token is a federated credential of the app registration.
    MANAGED_IDENTITY = "managed_identity"
    STATIC_TOKEN = "static_token"  # local emulator only: refused unless the Graph URL is loopback


@dataclass(frozen=True)
class SettingSpec:
    """One app setting: its name, whether it must be set, its default, and what it is for."""

    name: str
    description: str
    default: str | None = None
    required: bool = False
    secret: bool = False
    example: str | None = None


SETTINGS: tuple[SettingSpec, ...] = (
    # Storage (queues, tables) — the Functions host uses the same connection.
    SettingSpec("AzureWebJobsStorage", "Storage connection string (local: Azurite). In Azure use the "
                "identity-based AzureWebJobsStorage__* settings instead.", example="UseDevelopmentStorage=true"),
    SettingSpec("AzureWebJobsStorage__accountName", "Storage account name for identity-based access (Azure)."),
    SettingSpec("AzureWebJobsStorage__credential", "`managedidentity` for identity-based storage access (Azure)."),
    SettingSpec("AzureWebJobsStorage__clientId", "Client id of the user-assigned managed identity used for storage."),
    # Microsoft Graph
    SettingSpec("GRAPH_BASE_URL", "Microsoft Graph endpoint.", default="https://graph.microsoft.com/v1.0",
                example="http://127.0.0.1:7072/v1.0"),
    SettingSpec("GRAPH_AUTH_MODE", "client_secret | certificate | managed_identity | static_token (emulator only).",
                default="client_secret", example="static_token"),
    SettingSpec("GRAPH_TENANT_ID", "Entra ID tenant of the Graph app registration."),
    SettingSpec("GRAPH_CLIENT_ID", "Application (client) id of the Graph app registration."),
    SettingSpec("GRAPH_CLIENT_SECRET", "Client secret (GRAPH_AUTH_MODE=client_secret); a Key Vault reference in Azure.",
                secret=True),
    SettingSpec("GRAPH_CLIENT_CERTIFICATE", "PEM certificate + private key (GRAPH_AUTH_MODE=certificate); a Key Vault "
                "reference in Azure.", secret=True),
    SettingSpec("GRAPH_STATIC_TOKEN", "Bearer token for the local Graph emulator (GRAPH_AUTH_MODE=static_token).",
                secret=True, example="dev-graph-token"),
    SettingSpec("AZURE_CLIENT_ID", "Client id of the user-assigned managed identity (GRAPH_AUTH_MODE=managed_identity "
                "and Key Vault/telemetry in Azure)."),
    # Dime.Scheduler
    SettingSpec("DS_BASE_URL", "Dime.Scheduler API endpoint.", default="https://api.dimescheduler.com",
                example="http://127.0.0.1:7073"),
    SettingSpec("DS_API_KEY", "Dime.Scheduler API key (X-API-KEY); a Key Vault reference in Azure.", required=True,
                secret=True, example="dev-api-key"),
    SettingSpec("DS_SOURCE_APP", "The connector's own SourceApp (at most 30 characters): used when moving a planner's "
                "appointment whose job names none. Webhooks are registered per DS_WEBHOOK_SOURCE_APPS instead.",
                default="EXCHANGECONNECTOR"),
    SettingSpec("DS_WEBHOOK_SOURCE_APPS", "Source Apps (the planners' back offices, e.g. BC;CRM) whose appointments the "
                "connector follows through webhooks, separated by ';' (each at most 30 characters). Dime.Scheduler "
                "routes appointment webhooks by Source App; the Source Apps seen in the planning window are added "
                "at each sync_resources run.", example="DEMO"),
    # The connector itself
    SettingSpec("CONNECTOR_PUBLIC_URL", "Base URL at which Graph and Dime.Scheduler reach this app (https in Azure).",
                required=True, example="http://127.0.0.1:7071"),
    SettingSpec("SCHEDULER_WEBHOOK_SECRET", "Shared secret Dime.Scheduler webhooks must carry; a Key Vault reference "
                "in Azure.", required=True, secret=True, example="dev-webhook-secret"),
    SettingSpec("SYNC_TO_EXCHANGE_ENABLED", "Planning board → Outlook direction on/off.", default="true"),
    SettingSpec("SYNC_TO_PLANNING_ENABLED", "Outlook → planning board direction on/off.", default="true"),
    SettingSpec("SYNC_WINDOW_PAST_DAYS", "Days before today that the sync covers.", default="30"),
    SettingSpec("SYNC_WINDOW_FUTURE_DAYS", "Days after today that the sync covers.", default="180"),
    SettingSpec("SUBSCRIPTION_LIFETIME_MINUTES", "Lifetime asked for Graph subscriptions (45..10080; 4200 stays under "
                "both documented maxima).", default="4200"),
    SettingSpec("SUBSCRIPTION_RENEWAL_MARGIN_MINUTES", "Renew a subscription when it expires within this margin.",
                default="1440"),
    SettingSpec("SYNC_RESOURCES_SCHEDULE", "NCRONTAB (6 fields) of the sync_resources timer.", default="0 */15 * * * *"),
    SettingSpec("RENEW_SUBSCRIPTIONS_SCHEDULE", "NCRONTAB of the renew_subscriptions timer.", default="0 0 * * * *"),
    SettingSpec("POLL_PLANNING_SCHEDULE", "NCRONTAB of the poll_planning timer.", default="0 */5 * * * *"),
    SettingSpec("RECONCILE_EXCHANGE_SCHEDULE", "NCRONTAB of the reconcile_exchange timer.", default="0 0 */6 * * *"),
    SettingSpec("PLANNING_RULES", "Which appointments go to Outlook: `include|exclude <field> <op> <value>` rules "
                "separated by `;` (see README, Planning rules). Empty: all of them.", default=""),
    SettingSpec("OUTLOOK_EDIT_POLICY", "When a resource edits or deletes a planner's event in Outlook: restore_outlook "
                "(the board wins), ignore, or update_planning.", default="restore_outlook"),
    SettingSpec("CONFLICT_POLICY", "When a planner and a person both changed a planner's appointment since the last "
                "sync: board (the planner's version is written to Outlook) or outlook (the person's edit is taken onto "
                "the board). Recorded in the activity log with both versions. Outlook items always follow Outlook.",
                default="board"),
    SettingSpec("WORK_MAX_ATTEMPTS", "Attempts for a change that fails transiently (service down, network error; "
                "429 waits are not counted) before it is parked as failed on the monitor. The back-off doubles from "
                "5 s to 15 min: 12 attempts ride out about an hour of outage.", default="12"),
    SettingSpec("MASS_CHANGE_UNTRACK_PERCENT", "Mass-change guard: a sync_resources run that would untrack more than "
                "this share (%) of the tracked resources (and at least MASS_CHANGE_UNTRACK_MIN of them) untracks "
                "nothing and holds the change for an admin (0..100; 100 turns the share rule off).", default="20"),
    SettingSpec("MASS_CHANGE_UNTRACK_MIN", "Mass-change guard: the fewest resources one run must untrack before the "
                "share rule (MASS_CHANGE_UNTRACK_PERCENT) can hold it.", default="2"),
    SettingSpec("MASS_CHANGE_MAX_ITEMS", "Mass-change guard: one operation that would remove more than this many items "
                "from one calendar (the planner's events in one mailbox) or from one resource's Outlook items on the "
                "board removes nothing and holds the change for an admin.", default="50"),
    SettingSpec("ADMIN_APP_ROLE", "App role that makes a signed-in user an admin of the connector.",
                default="Connector.Admin"),
    SettingSpec("ACTIVITY_RETENTION_DAYS", "Days the activity log is kept.", default="30"),
    SettingSpec("APPLICATIONINSIGHTS_CONNECTION_STRING", "Application Insights connection string; telemetry is off "
                "when empty."),
)

SETTING_NAMES: frozenset[str] = frozenset(s.name for s in SETTINGS)
_SPECS: dict[str, SettingSpec] = {s.name: s for s in SETTINGS}
_NCRONTAB = re.compile(r"^\S+( \S+){5}$")
_NCRONTAB_FIELD = re.compile(r"^[0-9*/,\-A-Za-z?]+$")


@dataclass(frozen=True)
class StorageConfig:
    """Where the queues and tables live: a connection string locally, a managed identity in Azure."""

    connection_string: Secret | None
    account_name: str | None
    managed_identity_client_id: str | None

    @property
    def queue_url(self) -> str | None:
        return f"https://{self.account_name}.queue.core.windows.net" if self.account_name else None

    @property
    def table_url(self) -> str | None:
        return f"https://{self.account_name}.table.core.windows.net" if self.account_name else None

    @property
    def blob_url(self) -> str | None:
        return f"https://{self.account_name}.blob.core.windows.net" if self.account_name else None


@dataclass(frozen=True)
class GraphConfig:
    base_url: str
    auth_mode: GraphAuthMode
    tenant_id: str | None
    client_id: str | None
    client_secret: Secret | None
    client_certificate: Secret | None
    static_token: Secret | None
    managed_identity_client_id: str | None


@dataclass(frozen=True)
class PlanningConfig:
    base_url: str
    api_key: Secret
    source_app: str
    webhook_source_apps: tuple[str, ...] = ()  # DS_WEBHOOK_SOURCE_APPS


@dataclass(frozen=True)
class Schedules:
    sync_resources: str
    renew_subscriptions: str
    poll_planning: str
    reconcile_exchange: str


@dataclass(frozen=True)
class MassChangeGuard:
    """The thresholds of the mass-change guard (see README, Mass-change guard)."""

    untrack_percent: int = 20
    untrack_min: int = 2
    max_items: int = 50

    def holds_untrack(self, untracking: int, tracked: int) -> bool:
        """Whether untracking `untracking` of `tracked` resources in one run is too much at once."""
        return untracking >= self.untrack_min and untracking * 100 > self.untrack_percent * tracked

    def holds_removal(self, items: int) -> bool:
        """Whether removing `items` from one calendar or one board at once is too much."""
        return items > self.max_items


@dataclass(frozen=True)
class Settings:
    """The validated configuration of one function app instance."""

    storage: StorageConfig
    graph: GraphConfig
    planning: PlanningConfig
    public_url: str
    scheduler_webhook_secret: Secret
    sync_to_exchange_enabled: bool
    sync_to_planning_enabled: bool
    sync_window_past_days: int
    sync_window_future_days: int
    subscription_lifetime_minutes: int
    subscription_renewal_margin_minutes: int
    schedules: Schedules
    planning_rules: RuleSet
    outlook_edit_policy: OutlookEditPolicy
    conflict_policy: ConflictPolicy
    work_max_attempts: int
    mass_change: MassChangeGuard
    admin_app_role: str
    activity_retention_days: int
    appinsights_connection_string: Secret | None

    @property
    def graph_notification_url(self) -> str:
        return f"{self.public_url}/api/graph/notifications"

    @property
    def graph_lifecycle_url(self) -> str:
        return f"{self.public_url}/api/graph/lifecycle"

    @property
    def scheduler_notification_url(self) -> str:
        return f"{self.public_url}/api/scheduler/notifications"


class _Reader:
    """Reads settings from one environment mapping and collects every problem before failing."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env
        self.problems: list[str] = []

    def raw(self, name: str) -> str | None:
        spec = _SPECS[name]  # KeyError here means a setting was read without being declared in SETTINGS
        value = self.env.get(name, "").strip()
        if value:
            return value
        if spec.required:
            self.problems.append(f"{name} is missing: {spec.description}")
        return spec.default

    def text(self, name: str) -> str:
        return self.raw(name) or ""

    def optional(self, name: str) -> str | None:
        return self.raw(name) or None

    def secret(self, name: str) -> Secret | None:
        value = self.raw(name)
        return Secret(value) if value else None

    def parsed(self, name: str, parse: Callable[[str], T], fallback: T, what: str) -> T:
        value = self.raw(name)
        if value is None or value == "":
            return fallback
        try:
            return parse(value)
        except RuleError as exc:
            self.problems.append(f"{name} is invalid: {exc}")
            return fallback
        except (ValueError, TypeError):
            shown = "(hidden)" if _SPECS[name].secret else repr(value)
            self.problems.append(f"{name} is invalid: {shown} is not {what}")
            return fallback

    def boolean(self, name: str) -> bool:
        return self.parsed(name, _parse_bool, False, "true or false")

    def integer(self, name: str, low: int, high: int) -> int:
        def parse(value: str) -> int:
            number = int(value)
            if not low <= number <= high:
                raise ValueError
            return number

        return self.parsed(name, parse, low, f"an integer from {low} to {high}")

    def url(self, name: str) -> str:
        return self.parsed(name, _parse_url, "", "an absolute http(s) URL")

    def schedule(self, name: str) -> str:
        return self.parsed(name, _parse_ncrontab, "", "a 6-field NCRONTAB expression (seconds first)")


def _parse_bool(value: str) -> bool:
    lowered = value.lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise ValueError(value)


def _parse_url(value: str) -> str:
    parsed = urlparse(value)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ValueError(value)
    return value.rstrip("/")


def _parse_ncrontab(value: str) -> str:
    if not _NCRONTAB.match(value) or not all(_NCRONTAB_FIELD.match(f) for f in value.split()):
        raise ValueError(value)
    return value


def is_loopback_url(url: str) -> bool:
    return urlparse(url).hostname in ("127.0.0.1", "localhost", "::1")


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Read and validate every setting; raise `ConfigError` listing all problems at once."""
    r = _Reader(os.environ if env is None else env)

    storage = StorageConfig(
        connection_string=r.secret("AzureWebJobsStorage"),
        account_name=r.optional("AzureWebJobsStorage__accountName"),
        managed_identity_client_id=r.optional("AzureWebJobsStorage__clientId"),
    )
    credential_kind = r.optional("AzureWebJobsStorage__credential")
    if storage.connection_string is None and storage.account_name is None:
        r.problems.append("AzureWebJobsStorage is missing: set a connection string (local) or "
                          "AzureWebJobsStorage__accountName with a managed identity (Azure)")
    if credential_kind is not None and credential_kind.lower() != "managedidentity":
        r.problems.append(f"AzureWebJobsStorage__credential is invalid: {credential_kind!r} is not 'managedidentity'")

    graph = _graph_config(r)
    planning = PlanningConfig(
        base_url=r.url("DS_BASE_URL"),
        api_key=r.secret("DS_API_KEY") or Secret(""),
        source_app=r.parsed("DS_SOURCE_APP", _max_length(30), "", "at most 30 characters"),
        webhook_source_apps=r.parsed("DS_WEBHOOK_SOURCE_APPS", parse_source_apps, (),
                                     "a ';'-separated list of Source Apps of at most 30 characters each"),
    )
    settings = Settings(
        storage=storage,
        graph=graph,
        planning=planning,
        public_url=r.url("CONNECTOR_PUBLIC_URL"),
        scheduler_webhook_secret=r.secret("SCHEDULER_WEBHOOK_SECRET") or Secret(""),
        sync_to_exchange_enabled=r.boolean("SYNC_TO_EXCHANGE_ENABLED"),
        sync_to_planning_enabled=r.boolean("SYNC_TO_PLANNING_ENABLED"),
        sync_window_past_days=r.integer("SYNC_WINDOW_PAST_DAYS", 0, 3650),
        sync_window_future_days=r.integer("SYNC_WINDOW_FUTURE_DAYS", 1, 3650),
        subscription_lifetime_minutes=r.integer("SUBSCRIPTION_LIFETIME_MINUTES", 45, 10080),
        subscription_renewal_margin_minutes=r.integer("SUBSCRIPTION_RENEWAL_MARGIN_MINUTES", 5, 10080),
        schedules=Schedules(
            sync_resources=r.schedule("SYNC_RESOURCES_SCHEDULE"),
            renew_subscriptions=r.schedule("RENEW_SUBSCRIPTIONS_SCHEDULE"),
            poll_planning=r.schedule("POLL_PLANNING_SCHEDULE"),
            reconcile_exchange=r.schedule("RECONCILE_EXCHANGE_SCHEDULE"),
        ),
        planning_rules=r.parsed("PLANNING_RULES", _parse_rules, RuleSet(), "a valid rule list"),
        outlook_edit_policy=r.parsed("OUTLOOK_EDIT_POLICY", OutlookEditPolicy, OutlookEditPolicy.RESTORE_OUTLOOK,
                                     "one of " + ", ".join(p.value for p in OutlookEditPolicy)),
        conflict_policy=r.parsed("CONFLICT_POLICY", ConflictPolicy, ConflictPolicy.BOARD,
                                 "one of " + ", ".join(p.value for p in ConflictPolicy)),
        work_max_attempts=r.integer("WORK_MAX_ATTEMPTS", 1, 50),
        mass_change=MassChangeGuard(untrack_percent=r.integer("MASS_CHANGE_UNTRACK_PERCENT", 0, 100),
                                    untrack_min=r.integer("MASS_CHANGE_UNTRACK_MIN", 1, 100_000),
                                    max_items=r.integer("MASS_CHANGE_MAX_ITEMS", 1, 1_000_000)),
        admin_app_role=r.text("ADMIN_APP_ROLE"),
        activity_retention_days=r.integer("ACTIVITY_RETENTION_DAYS", 1, 3650),
        appinsights_connection_string=r.secret("APPLICATIONINSIGHTS_CONNECTION_STRING"),
    )
    if settings.subscription_renewal_margin_minutes >= settings.subscription_lifetime_minutes:
        r.problems.append("SUBSCRIPTION_RENEWAL_MARGIN_MINUTES is invalid: it must be smaller than "
                          "SUBSCRIPTION_LIFETIME_MINUTES, or every subscription is renewed on every run")
    if r.problems:
        raise ConfigError(r.problems)
    return settings


def _parse_rules(value: str) -> RuleSet:
    return parse_rules(value)


def parse_source_apps(value: str) -> tuple[str, ...]:
    """`BC; CRM` → ("BC", "CRM"): trimmed, empty entries and case-insensitive repeats dropped."""
    found: dict[str, str] = {}
    for item in value.split(";"):
        name = item.strip()
        if len(name) > 30:
            raise ValueError(value)
        if name:
            found.setdefault(name.casefold(), name)
    return tuple(found.values())


def _max_length(limit: int) -> Callable[[str], str]:
    def parse(value: str) -> str:
        if len(value) > limit:
            raise ValueError(value)
        return value

    return parse


def _graph_config(r: _Reader) -> GraphConfig:
    mode = r.parsed("GRAPH_AUTH_MODE", GraphAuthMode, GraphAuthMode.CLIENT_SECRET,
                    "one of " + ", ".join(m.value for m in GraphAuthMode))
    config = GraphConfig(
        base_url=r.url("GRAPH_BASE_URL"),
        auth_mode=mode,
        tenant_id=r.optional("GRAPH_TENANT_ID"),
        client_id=r.optional("GRAPH_CLIENT_ID"),
        client_secret=r.secret("GRAPH_CLIENT_SECRET"),
        client_certificate=r.secret("GRAPH_CLIENT_CERTIFICATE"),
        static_token=r.secret("GRAPH_STATIC_TOKEN"),
        managed_identity_client_id=r.optional("AZURE_CLIENT_ID"),
    )
    needed: dict[GraphAuthMode, tuple[str, ...]] = {
        GraphAuthMode.CLIENT_SECRET: ("GRAPH_TENANT_ID", "GRAPH_CLIENT_ID", "GRAPH_CLIENT_SECRET"),
        GraphAuthMode.CERTIFICATE: ("GRAPH_TENANT_ID", "GRAPH_CLIENT_ID", "GRAPH_CLIENT_CERTIFICATE"),
        GraphAuthMode.MANAGED_IDENTITY: ("GRAPH_TENANT_ID", "GRAPH_CLIENT_ID", "AZURE_CLIENT_ID"),
        GraphAuthMode.STATIC_TOKEN: ("GRAPH_STATIC_TOKEN",),
    }
    for name in needed[mode]:
        if not r.env.get(name, "").strip():
            r.problems.append(f"{name} is missing: GRAPH_AUTH_MODE={mode.value} needs it ({_SPECS[name].description})")
    if mode is GraphAuthMode.STATIC_TOKEN and config.base_url and not is_loopback_url(config.base_url):
        # A static token is for the local emulator; against real Graph it would be a long-lived secret.
        r.problems.append("GRAPH_AUTH_MODE is invalid: static_token is only allowed with a loopback GRAPH_BASE_URL")
    return config


_cached: Settings | None = None


def get_settings() -> Settings:
    """The process-wide settings, loaded and validated on first use (the app calls it at start-up)."""
    global _cached
    if _cached is None:
        _cached = load_settings()
    return _cached


def reset_settings_cache() -> None:
    """Forget the cached settings (tests that change the environment)."""
    global _cached
    _cached = None


def describe(settings: Settings) -> dict[str, Any]:
    """A secret-free summary for the health answer and start-up log."""
    return {
        "graph": {"baseUrl": settings.graph.base_url, "authMode": settings.graph.auth_mode.value},
        "planning": {"baseUrl": settings.planning.base_url},
        "storage": "connection string" if settings.storage.connection_string else "managed identity",
        "syncToExchange": settings.sync_to_exchange_enabled,
        "syncToPlanning": settings.sync_to_planning_enabled,
    }
