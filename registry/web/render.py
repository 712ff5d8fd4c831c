"""Pages from Jinja2 templates shipped in the package, and the one way a page answers an
error: a page a person can read, with the request id to quote to support."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import urlencode

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from registry.core.errors import ApiError, Handler

# No inline script or style: the pages' JavaScript and CSS are files under /static.
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'; form-action 'self';"
    " base-uri 'none'; object-src 'none'",
}
TITLES = {
    400: "That request could not be understood",
    401: "Please log in again",
    403: "You may not do that",
    404: "Not found",
    405: "Not possible here",
    409: "That clashes with what is there",
    413: "That is too large",
    414: "That address is too long",
    501: "Not available here",
    503: "Temporarily unavailable",
    507: "Not enough space",
}

_templates = Environment(
    loader=PackageLoader("registry.web", "templates"),
    autoescape=select_autoescape(default=True),
    trim_blocks=True,
    lstrip_blocks=True,
)


class LoginRequired(Exception):
    """The page needs a logged-in user: the browser is sent to log in, then back."""


def render(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
    text = _templates.get_template(name).render(
        request_id=request.scope.get("spacereg.request_id", ""), **context
    )
    return HTMLResponse(text, status_code=status, headers=SECURITY_HEADERS)


def error_page(
    request: Request, status: int, message: str, headers: Mapping[str, str] | None = None
) -> Response:
    response = render(
        request,
        "error.html",
        status,
        title=TITLES.get(status, "Something went wrong"),
        message=message,
        user=None,
        navigation=True,
    )
    response.headers.update(headers or {})
    return response


def see_other(url: str) -> Response:
    return RedirectResponse(url, status_code=303, headers={"Cache-Control": "no-store"})


Page = Callable[[Request], Awaitable[Response]]


def page(handler: Page) -> Page:
    """`handler` answering its errors as pages, and sending a browser that is not logged in
    to the login first (GET requests come back to where they were)."""

    async def endpoint(request: Request) -> Response:
        try:
            return await handler(request)
        except LoginRequired:
            back = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            if request.method != "GET":
                back = "/"
            return see_other("/login?" + urlencode({"next": back}))
        except ApiError as exc:
            return error_page(request, exc.status, exc.message, exc.headers)
        except HTTPException as exc:
            return error_page(request, exc.status_code, str(exc.detail), exc.headers)

    return endpoint


def pages_for_browsers(handler: Handler) -> Handler:
    """`handler` of HTTPException, but a browser asking for an address nothing serves gets a
    page; API clients, which do not ask for HTML, still get the JSON error."""

    async def handle(request: Request, exc: Exception) -> Response:
        wants_page = "text/html" in request.headers.get("accept", "")
        if isinstance(exc, HTTPException) and exc.status_code == 404 and wants_page:
            return error_page(request, 404, "There is no page at this address.")
        return await handler(request, exc)

    return handle
