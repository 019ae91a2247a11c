"""`GET /api/ui/...`: the settings page (`/api/ui/`) and the admin monitor (`/api/ui/admin`), from `static/`.

Plain files, no build step, no third-party CDN; a strict Content-Security-Policy allows this origin
only. In Azure, Easy Auth requires sign-in before these pages load; the APIs they call check the
principal themselves.
"""

from __future__ import annotations

from pathlib import Path

import azure.functions as func

bp = func.Blueprint()  # type: ignore[no-untyped-call]
STATIC = Path(__file__).resolve().parent.parent / "static"
PAGES = {"": "index.html", "admin": "admin.html"}
TYPES = {".html": "text/html", ".css": "text/css", ".js": "text/javascript", ".svg": "image/svg+xml"}
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


@bp.function_name("ui")
@bp.route(route="api/ui/{*path}", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def ui(req: func.HttpRequest) -> func.HttpResponse:
    path = (req.route_params.get("path") or "").strip("/")
    if "\x00" in path or len(path) > 200:  # no such file, and the file system refuses to look
        return func.HttpResponse("Not found", status_code=404, mimetype="text/plain")
    name = PAGES.get(path, path)
    target = (STATIC / name).resolve()
    if STATIC not in target.parents or target.suffix not in TYPES or not target.is_file():
        return func.HttpResponse("Not found", status_code=404, mimetype="text/plain")
    return func.HttpResponse(target.read_bytes(), status_code=200, mimetype=TYPES[target.suffix], charset="utf-8",
                             headers=SECURITY_HEADERS)
