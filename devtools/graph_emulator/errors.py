"""Graph-shaped errors: ``{"error": {"code", "message", "innerError": {...}}}``."""

from __future__ import annotations

from typing import Any


class GraphError(Exception):
    """Raised by handlers; the pipeline turns it into a Graph error response."""

    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


def bad_request(message: str, code: str = "ErrorInvalidRequest") -> GraphError:
    return GraphError(400, code, message)


def body_read_error(message: str) -> GraphError:
    return GraphError(400, "RequestBodyRead", message)


def item_not_found() -> GraphError:
    return GraphError(404, "ErrorItemNotFound", "The specified object was not found in the store.")


def error_body(code: str, message: str, date: str, request_id: str, client_request_id: str) -> dict[str, Any]:
    return {
        "error": {
            "code": code,
            "message": message,
            "innerError": {"date": date, "request-id": request_id, "client-request-id": client_request_id},
        }
    }


# Default error codes for injected faults that name only a status.
DEFAULT_CODES: dict[int, str] = {
    400: "BadRequest",
    401: "InvalidAuthenticationToken",
    403: "Forbidden",
    404: "ErrorItemNotFound",
    409: "Conflict",
    410: "Gone",
    412: "PreconditionFailed",
    423: "ErrorLocked",
    424: "FailedDependency",
    429: "TooManyRequests",
    500: "InternalServerError",
    502: "BadGateway",
    503: "ServiceNotAvailable",
    504: "GatewayTimeout",
}


def default_code(status: int) -> str:
    return DEFAULT_CODES.get(status, "UnknownError")


# Messages Graph sends with well-known codes (used when a fault names the code but no message).
CODE_MESSAGES: dict[str, str] = {
    "ErrorIrresolvableConflict": "The send or update operation could not be performed because the change key "
                                 "passed in the request does not match the current change key for the item.",
    "ApplicationThrottled": "Application is over its MailboxConcurrency limit.",
}


def default_message(status: int, code: str | None = None) -> str:
    if code in CODE_MESSAGES:
        return CODE_MESSAGES[code]
    if status == 429:
        return "Please retry again later."
    if status >= 500:
        return "The service is temporarily unavailable. Please retry later."
    return "The request failed."
