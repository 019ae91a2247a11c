"""Reading a JSON request body that anyone may have sent: malformed, binary, or nested thousands deep.

Every web core parses through `parse_json`, so each such body becomes the caller's own 4xx naming the
problem, never a 500 (a 100,000-deep array makes `json.loads` raise RecursionError; a 1,000-deep one
parses, then breaks whatever walks it later).
"""

from __future__ import annotations

import json
from typing import Any

MAX_DEPTH = 32  # the deepest body any route takes is a few levels; this leaves room and stops abuse


class BadJson(ValueError):
    """The body is not JSON a route can take; the message says why (without echoing the body)."""


def parse_json(body: bytes | str, max_depth: int = MAX_DEPTH) -> Any:
    try:
        data = json.loads(body)
    except RecursionError:
        raise BadJson(f"the JSON is nested more than {max_depth} levels deep") from None
    except UnicodeDecodeError:
        raise BadJson("the body is not UTF-8 text") from None
    except ValueError as exc:
        raise BadJson(f"the body is not JSON ({exc.args[0] if exc.args else exc})") from None
    if _depth(data) > max_depth:
        raise BadJson(f"the JSON is nested more than {max_depth} levels deep")
    return data


def _depth(value: Any) -> int:
    """Nesting depth of arrays and objects, without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, level)
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, level + 1) for child in children if isinstance(child, dict | list))
    return deepest
