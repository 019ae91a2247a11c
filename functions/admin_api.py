"""`/api/admin/...`: the admin monitor's API (Easy Auth principal with the admin app role).

Routes are written with their `api/` prefix because host.json sets `routePrefix` to "": the
Functions host refuses function routes that start with `admin` (its own admin API lives at
`/admin`), and `api/admin/...` keeps the design's contract URLs.
"""

from __future__ import annotations

from typing import Any

import azure.functions as func

from connector.errors import GraphError, PlanningError
from connector.services import services
from connector.web.identity import Principal
from connector.web.monitor import MonitorError, parse_filter
from connector.web.settings_api import ApiError, authenticate, check_same_origin
from functions.http_util import answer, json_response

bp = func.Blueprint()  # type: ignore[no-untyped-call]
ADMIN = func.AuthLevel.ANONYMOUS  # authorisation is the Easy Auth principal's admin role, checked in code


def _admin(req: func.HttpRequest, changes_state: bool = False) -> Principal:
    """Refuse (ApiError 401/403) unless the caller is an admin; a write must also come from our own origin."""
    principal = authenticate(req.headers)
    services().settings_api.require_admin(principal)
    if changes_state:
        check_same_origin(req.headers, services().settings.public_url)
    return principal


@bp.function_name("admin_resources")
@bp.route(route="api/admin/resources", methods=["GET"], auth_level=ADMIN)
def admin_resources(req: func.HttpRequest) -> func.HttpResponse:
    def call() -> Any:
        _admin(req)
        return {"resources": services().monitor.resources()}

    return answer(call)


@bp.function_name("admin_resource_settings")
@bp.route(route="api/admin/resources/{resource_no}/settings", methods=["GET", "PUT"], auth_level=ADMIN)
def admin_resource_settings(req: func.HttpRequest) -> func.HttpResponse:
    resource_no = req.route_params["resource_no"]

    def call() -> Any:
        principal = _admin(req, changes_state=req.method == "PUT")
        api = services().settings_api
        if req.method == "GET":
            return api.get_resource_settings(principal, resource_no)
        return api.put_resource_settings(principal, resource_no, req.headers, req.get_body())

    return answer(call)


@bp.function_name("admin_defaults")
@bp.route(route="api/admin/defaults", methods=["GET", "PUT"], auth_level=ADMIN)
def admin_defaults(req: func.HttpRequest) -> func.HttpResponse:
    def call() -> Any:
        principal = _admin(req, changes_state=req.method == "PUT")
        api = services().settings_api
        if req.method == "GET":
            return api.get_defaults(principal)
        return api.put_defaults(principal, req.headers, req.get_body())

    return answer(call)


@bp.function_name("admin_activity")
@bp.route(route="api/admin/activity", methods=["GET"], auth_level=ADMIN)
def admin_activity(req: func.HttpRequest) -> func.HttpResponse:
    def call() -> Any:
        _admin(req)
        flt, limit, before = parse_filter(dict(req.params))
        return services().monitor.activity(flt, limit, before)

    return answer(call)


@bp.function_name("admin_item")
@bp.route(route="api/admin/activity/{key}", methods=["GET"], auth_level=ADMIN)
def admin_item(req: func.HttpRequest) -> func.HttpResponse:
    def call() -> Any:
        _admin(req)
        return services().monitor.item(req.route_params["key"])

    return answer(call)


@bp.function_name("admin_queues")
@bp.route(route="api/admin/queues", methods=["GET"], auth_level=ADMIN)
def admin_queues(req: func.HttpRequest) -> func.HttpResponse:
    def call() -> Any:
        _admin(req)
        return {"queues": services().monitor.queues(), "failed": services().monitor.failed()}

    return answer(call)


@bp.function_name("admin_retry")
@bp.route(route="api/admin/failed/{queue}/{message_id}/retry", methods=["POST"], auth_level=ADMIN)
def admin_retry(req: func.HttpRequest) -> func.HttpResponse:
    def call() -> Any:
        _admin(req, changes_state=True)
        return services().monitor.retry(req.route_params["queue"], req.route_params["message_id"])

    return answer(call)


@bp.function_name("admin_holds")
@bp.route(route="api/admin/holds", methods=["GET"], auth_level=ADMIN)
def admin_holds(req: func.HttpRequest) -> func.HttpResponse:
    def call() -> Any:
        _admin(req)
        return {"holds": services().monitor.holds()}

    return answer(call)


@bp.function_name("admin_hold_release")
@bp.route(route="api/admin/holds/{hold_id}/release", methods=["POST"], auth_level=ADMIN)
async def admin_hold_release(req: func.HttpRequest) -> func.HttpResponse:
    from connector.workers.holds import HoldConflict, release_hold

    try:
        principal = _admin(req, changes_state=True)
        hold = services().monitor.hold_to_release(req.route_params["hold_id"], req.headers)
        return json_response(await release_hold(services(), hold, principal.name or "an admin"))
    except (ApiError, MonitorError) as refused:
        return _refusal(refused)
    except HoldConflict as exc:
        return json_response({"error": {"message": str(exc)}}, 409)
    except (GraphError, PlanningError) as exc:
        # Part of it may be applied: releasing again finishes it (every step is idempotent).
        return json_response({"error": {"message": f"the release could not be finished ({exc}); nothing is lost: "
                                                   "release it again once the service answers"}}, 503)


@bp.function_name("admin_hold_discard")
@bp.route(route="api/admin/holds/{hold_id}", methods=["DELETE"], auth_level=ADMIN)
def admin_hold_discard(req: func.HttpRequest) -> func.HttpResponse:
    def call() -> Any:
        principal = _admin(req, changes_state=True)
        return services().monitor.discard_hold(req.route_params["hold_id"], principal.name or "an admin",
                                               req.headers)

    return answer(call)


def _refusal(exc: ApiError | MonitorError) -> func.HttpResponse:
    """The error answer `answer` gives for a refusal (status, message, field)."""
    def call() -> Any:
        raise exc

    return answer(call)
