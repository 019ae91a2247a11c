"""The function app: validates the configuration, then registers one blueprint per trigger group.

Settings are validated here, at start-up, so a missing or invalid setting stops the app with a
message naming it instead of failing later inside a sync.
"""

import logging

import azure.functions as func

from connector.config import describe, get_settings
from connector.telemetry import configure_telemetry
from functions.admin_api import bp as admin_api_bp
from functions.exchange_sync import bp as exchange_sync_bp
from functions.graph_webhooks import bp as graph_webhooks_bp
from functions.health import bp as health_bp
from functions.planning_sync import bp as planning_sync_bp
from functions.scheduler_webhooks import bp as scheduler_webhooks_bp
from functions.settings_api import bp as settings_api_bp
from functions.ui import bp as ui_bp

_settings = get_settings()
configure_telemetry(_settings)
logging.getLogger(__name__).info("Connector configuration: %s", describe(_settings))

app = func.FunctionApp()
for blueprint in (health_bp, graph_webhooks_bp, exchange_sync_bp, scheduler_webhooks_bp, planning_sync_bp,
                  settings_api_bp, admin_api_bp, ui_bp):
    app.register_functions(blueprint)
