"""The function app: validates the configuration, then registers one blueprint per trigger group.

Settings are validated here, at start-up, so a missing or invalid setting stops the app with a
message naming it instead of failing later inside a sync.
"""

import logging

import azure.functions as func

from functions.health import bp as health_bp
from shared.config import describe, get_settings

_settings = get_settings()
logging.getLogger(__name__).info("Connector configuration: %s", describe(_settings))

app = func.FunctionApp()
app.register_functions(health_bp)
