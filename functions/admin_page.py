"""The admin console: one HTML page with its script and style sheet, served by the app.

Anonymous, because the page carries no secret: it asks for the function key once, keeps it in
the browser session and sends it with each API call. The files are the project's own (no CDN, no
network at run time) and answer with a strict Content-Security-Policy: scripts, styles and API
calls from this origin only, no inline code, no framing, no forms posted elsewhere.

The route is `console`, not `admin`: Azure Functions refuses HTTP routes that start with
"admin" (its host API lives there), whatever the route prefix.
"""
from __future__ import annotations

import functools
from pathlib import Path

import azure.functions as func

STATIC_DIR = Path(__file__).resolve().parent / "admin_static"
PAGE = "index.html"
# Only these files are served: a name is looked up here, never joined to a path.
FILES = {"app.js": "text/javascript", "app.css": "text/css"}

CONTENT_SECURITY_POLICY = ("default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
                           "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cache-Control": "no-cache",
}

bp = func.Blueprint()


@functools.lru_cache(maxsize=None)
def _read(name: str) -> bytes:
    return (STATIC_DIR / name).read_bytes()


def _file(name: str, mimetype: str) -> func.HttpResponse:
    return func.HttpResponse(_read(name), status_code=200, mimetype=mimetype, charset="utf-8",
                             headers=dict(SECURITY_HEADERS))


@bp.function_name("console_page")
@bp.route(route="console", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def console_page(req: func.HttpRequest) -> func.HttpResponse:
    return _file(PAGE, "text/html")


@bp.function_name("console_file")
@bp.route(route="console/{file}", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def console_file(req: func.HttpRequest) -> func.HttpResponse:
    name = req.route_params.get("file", "")
    mimetype = FILES.get(name)
    if mimetype is None:
        return func.HttpResponse("not found", status_code=404, mimetype="text/plain", headers=dict(SECURITY_HEADERS))
    return _file(name, mimetype)
