"""Microsoft Graph emulator for the local stack and tests (contract port 7072).

``create_app(GraphEmulatorConfig(...))`` returns an aiohttp application serving the Graph API under
``/v1.0`` and the control plane under ``/_emulator``; ``python -m devtools.graph_emulator`` serves it.
"""

from .app import create_app
from .config import GraphEmulatorConfig

__all__ = ["GraphEmulatorConfig", "create_app"]
