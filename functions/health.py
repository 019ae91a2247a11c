"""`GET /api/health` (anonymous): liveness and each dependency, without secrets.

200 when every dependency answers, 503 (same body) when one does not, so a probe can alert on it.
Anonymous callers get the status only; an admin principal (as for `/api/admin/...`) gets the details.
"""

from __future__ import annotations

import json

import azure.functions as func

from connector.services import services
from connector.web.health import public_view
from connector.web.settings_api import ApiError, authenticate

bp = func.Blueprint()  # type: ignore[no-untyped-call]


@bp.function_name("health")
@bp.route(route="api/health", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
async def health(req: func.HttpRequest) -> func.HttpResponse:
    report = await services().health.report()
    status = 200 if report["status"] == "ok" else 503
    body = report if _is_admin(req) else public_view(report)
    return func.HttpResponse(json.dumps(body), status_code=status, mimetype="application/json",
                             headers={"Cache-Control": "no-store"})


def _is_admin(req: func.HttpRequest) -> bool:
    """An admin sees the details; anyone else (no sign-in, or one this host cannot trust) the status."""
    try:
        services().settings_api.require_admin(authenticate(req.headers))
    except ApiError:
        return False
    return True
