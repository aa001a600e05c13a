"""Who may reach the review page, and what the browser may do with it.

- The page binds 127.0.0.1 unless told otherwise, and a bind any other machine can reach
  needs an access token (`check_bind`).
- Without a token, only loopback host names are answered: a web page elsewhere cannot use
  DNS rebinding to read the rows through the user's browser.
- With a token, a request carries it as a cookie (set from `?token=` on the first visit,
  which then redirects to the same address without it) or as `Authorization: Bearer`.
- Changes are POSTs of JSON from the page's own origin (a cross-site form cannot send JSON,
  and a cross-site script is stopped by the preflight the page never answers).
- Every response forbids inline and foreign scripts (Content-Security-Policy): generated
  text is escaped everywhere, and if that ever failed, injected script still would not run.
"""

from __future__ import annotations

import hmac
import ipaddress
from urllib.parse import urlencode, urlsplit

from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response

from synthwright.errors import UserError

COOKIE = "synthwright_review"
LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1"}
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
        "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


def is_loopback(host: str) -> bool:
    host = host.strip("[]")
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_bind(host: str, token: str | None) -> None:
    """Refuse to serve rows to the network without a token."""
    if not is_loopback(host) and not token:
        raise UserError(
            f"Binding {host} would let other machines read every row and change the labels.",
            "Give --token SECRET (or set SYNTHWRIGHT_REVIEW_TOKEN), or keep the default --host 127.0.0.1.",
        )


def _host_name(header: str) -> str:
    """The name part of a Host header: `[::1]:8000` -> `::1`, `127.0.0.1:80` -> `127.0.0.1`."""
    if header.startswith("["):
        return header[1:].split("]", 1)[0]
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


class Guard:
    def __init__(self, token: str | None):
        self.token = token

    async def __call__(self, request: Request, call_next) -> Response:
        refused = self._refusal(request)
        if refused is not None:
            response = refused
        else:
            response = await call_next(request)
        for name, value in HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    def _refusal(self, request: Request) -> Response | None:
        host = request.headers.get("host", "")
        if not self.token and not is_loopback(_host_name(host)):
            return PlainTextResponse("This page answers only on 127.0.0.1 / localhost.", status_code=400)
        if self.token and not self._has_token(request):
            offered = request.query_params.get("token")
            if offered is not None and hmac.compare_digest(offered, self.token):
                return self._remember(request)
            return PlainTextResponse("Access token required: open the address `synthwright review` printed.", status_code=401)
        if request.method not in ("GET", "HEAD"):
            if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
                return PlainTextResponse("Changes are JSON requests from the page.", status_code=415)
            origin = request.headers.get("origin")
            if origin is not None and urlsplit(origin).netloc != host:
                return PlainTextResponse("Cross-site request refused.", status_code=403)
        return None

    def _has_token(self, request: Request) -> bool:
        cookie = request.cookies.get(COOKIE, "")
        bearer = request.headers.get("authorization", "")
        bearer = bearer[7:] if bearer.lower().startswith("bearer ") else ""
        return any(value and hmac.compare_digest(value, self.token) for value in (cookie, bearer))

    def _remember(self, request: Request) -> Response:
        """Trade `?token=` for a cookie, and send the browser on without the token in the address."""
        rest = [(k, v) for k, v in request.query_params.multi_items() if k != "token"]
        # One leading slash: `//host/...` would send the browser to another site.
        target = "/" + request.url.path.lstrip("/") + ("?" + urlencode(rest) if rest else "")
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(COOKIE, self.token, httponly=True, samesite="strict", path="/")
        return response
