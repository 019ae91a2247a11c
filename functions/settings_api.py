"""`GET/PUT /api/settings/me`: a signed-in resource reads and edits its own Outlook → planning settings."""

from __future__ import annotations

import azure.functions as func

from connector.services import services
from connector.web.settings_api import Answer, authenticate, check_same_origin
from functions.http_util import answer

bp = func.Blueprint()  # type: ignore[no-untyped-call]


@bp.function_name("settings_me")
@bp.route(route="api/settings/me", methods=["GET", "PUT"], auth_level=func.AuthLevel.ANONYMOUS)
def settings_me(req: func.HttpRequest) -> func.HttpResponse:
    def call() -> Answer:
        principal = authenticate(req.headers)
        api = services().settings_api
        if req.method == "GET":
            return api.get_mine(principal)
        check_same_origin(req.headers, services().settings.public_url)
        return api.put_mine(principal, req.headers, req.get_body())

    return answer(call)
