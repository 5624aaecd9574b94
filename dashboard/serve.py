"""The dashboard as an ASGI app with security headers: ``streamlit run dashboard/serve.py`` (what ``make run`` does).

Streamlit has no setting for response headers, but ``st.App`` takes Starlette middleware. Every HTTP
response gets:

- ``X-Frame-Options: DENY`` and CSP ``frame-ancestors 'none'``: no other site can frame the dashboard;
- a Content-Security-Policy that lets the page load scripts, styles, images, fonts and connections from
  this server only (``'unsafe-inline'``/``'unsafe-eval'`` are what Streamlit's front end needs);
- ``X-Content-Type-Options: nosniff``, ``Referrer-Policy: no-referrer``, ``Cache-Control: no-store``
  on the pages (patient data must not sit in a shared browser cache), and a restrictive Permissions-Policy.

TLS is the reverse proxy's job (see the README's deployment section); it may add HSTS.

Starting the server also starts loading the model in the background (``resources.preload_model``).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from starlette.middleware import Middleware
from streamlit.starlette import App

# `streamlit run` puts dashboard/ on sys.path, not the repository root that holds the packages: found from
# this file, since data/settings.py (REPO_ROOT) cannot be imported before it is on the path.
_PACKAGES_ROOT = str(Path(__file__).resolve().parents[1])
if _PACKAGES_ROOT not in sys.path:
    sys.path.insert(0, _PACKAGES_ROOT)

from dashboard import resources  # noqa: E402

CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline' 'unsafe-eval' blob:; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self' ws: wss:; media-src 'self' blob: data:; "
    "worker-src 'self' blob:; frame-src 'self' blob: data:; object-src 'none'; base-uri 'self'; "
    "form-action 'self'; frame-ancestors 'none'"
)
HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-frame-options", b"DENY"),
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=(), payment=()"),
    (b"cross-origin-opener-policy", b"same-origin"),
)


class SecurityHeaders:
    """ASGI middleware: add HEADERS to every HTTP response (replacing any the app set itself)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")

        async def send_with_headers(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                names = {name for name, _ in HEADERS}
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() not in names]
                headers += list(HEADERS)
                if not path.startswith("/static/"):
                    headers = [(k, v) for k, v in headers if k.lower() != b"cache-control"]
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


app = App(Path(__file__).with_name("app.py"), middleware=[Middleware(SecurityHeaders)])
# The model loads in the background from server start (after the first page, or FIRST_PAGE_WAIT_S without a
# visitor), instead of on the first signed-in page.
resources.preload_model()
