"""Page links: ``@odata.nextLink`` is the request's own URL with a new paging parameter."""

from __future__ import annotations

from urllib.parse import quote

from .messages import GraphRequest


def request_path(req: GraphRequest) -> str:
    return "/v1.0/" + "/".join(quote(s, safe="@.:'()=$") for s in req.segments)


def link(req: GraphRequest, updates: dict[str, str], keep_query: bool = True) -> str:
    replaced = {k.lower() for k in updates}
    pairs = [(k, v) for k, v in req.query.items() if k.lower() not in replaced] if keep_query else []
    pairs += list(updates.items())
    query = "&".join(f"{quote(k, safe='$')}={quote(v, safe='')}" for k, v in pairs)
    return f"{req.base_url}{request_path(req)}" + (f"?{query}" if query else "")


def page_size(req: GraphRequest, top: int | None, default: int, maximum: int) -> tuple[int, list[str]]:
    """Page size from $top, else ``Prefer: odata.maxpagesize``, else the default; with Preference-Applied."""
    if top is not None:
        return min(top, maximum), []
    text = req.prefer().get("odata.maxpagesize", "")
    if text.isascii() and text.isdigit() and int(text) > 0:
        size = min(int(text), maximum)
        return size, [f"odata.maxpagesize={size}"]
    return default, []
