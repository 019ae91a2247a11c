"""The route table of ``/v1.0``: templates (``{id}`` for every parameter) → handlers.

Literal segments match case-insensitively, as Graph's do. The template is also the key under which
``/_emulator/stats`` counts a request.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from . import batch, delta, events, subscriptions, users
from .messages import GraphRequest, GraphResponse

if TYPE_CHECKING:
    from .core import Emulator

Handler = Callable[["Emulator", GraphRequest], Awaitable[GraphResponse]]


@dataclass(frozen=True)
class Route:
    method: str
    template: str
    handler: Handler

    @property
    def parts(self) -> list[str]:
        return self.template.split("/")[2:]  # drop "" and "v1.0"


_MAILBOX = "/v1.0/users/{id}"
ROUTES: list[Route] = [
    Route("POST", "/v1.0/users", users.create_user),
    Route("GET", "/v1.0/users", users.list_users),
    Route("GET", "/v1.0/users/{id}", users.get_user),
    Route("GET", "/v1.0/users/{id}/mailboxSettings", users.get_mailbox_settings),
    Route("PATCH", "/v1.0/users/{id}/mailboxSettings", users.update_mailbox_settings),
    Route("POST", "/v1.0/subscriptions", subscriptions.create_subscription),
    Route("GET", "/v1.0/subscriptions", subscriptions.list_subscriptions),
    Route("GET", "/v1.0/subscriptions/{id}", subscriptions.get_subscription),
    Route("PATCH", "/v1.0/subscriptions/{id}", subscriptions.update_subscription),
    Route("DELETE", "/v1.0/subscriptions/{id}", subscriptions.delete_subscription),
    Route("POST", "/v1.0/$batch", batch.run_batch),
]
for prefix in (_MAILBOX, _MAILBOX + "/calendar"):
    ROUTES += [
        Route("POST", f"{prefix}/events", events.create_event),
        Route("GET", f"{prefix}/events", events.list_events),
        Route("GET", f"{prefix}/events/{{id}}", events.get_event),
        Route("PATCH", f"{prefix}/events/{{id}}", events.update_event),
        Route("DELETE", f"{prefix}/events/{{id}}", events.delete_event),
        Route("GET", f"{prefix}/events/{{id}}/instances", events.instances),
        Route("GET", f"{prefix}/calendarView", events.calendar_view),
        Route("GET", f"{prefix}/calendarView/delta", delta.calendar_view_delta),
    ]


def match(method: str, segments: list[str]) -> tuple[Route | None, list[str], bool]:
    """(route, path parameters, path known for another method)."""
    path_known = False
    for route in ROUTES:
        parts = route.parts
        if len(parts) != len(segments):
            continue
        params: list[str] = []
        for part, segment in zip(parts, segments, strict=True):
            if part == "{id}":
                if not segment:
                    break
                params.append(segment)
            elif part.lower() != segment.lower().removesuffix("()"):  # OData function call: delta() == delta
                break
        else:
            if route.method == method:
                return route, params, True
            path_known = True
    return None, [], path_known


def is_mailbox_route(route: Route) -> bool:
    """Outlook resources under /users/{id}/...: these are throttled per mailbox."""
    return route.template.startswith(_MAILBOX + "/")
