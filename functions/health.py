"""`GET /api/health` (anonymous): liveness and each dependency, without secrets.

200 when every dependency answers, 503 (same body) when one does not, so a probe can alert on it.
"""

from __future__ import annotations

import json

import azure.functions as func

from connector.services import services

bp = func.Blueprint()  # type: ignore[no-untyped-call]


@bp.function_name("health")
@bp.route(route="api/health", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
async def health(req: func.HttpRequest) -> func.HttpResponse:
    report = await services().health.report()
    status = 200 if report["status"] == "ok" else 503
    return func.HttpResponse(json.dumps(report), status_code=status, mimetype="application/json",
                             headers={"Cache-Control": "no-store"})
