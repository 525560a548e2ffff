"""What the browser gets during a provider sign-in: redirects, or a page saying what failed.

These routes are visited by a browser, not called by a script, so an error the storefront
cannot be told about (its redirect URI is unknown or not registered) is a small HTML page
rather than JSON. Pages and redirects are never cached, and send no `Referer` onwards, since
their URLs carry a state or a code.
"""

import html
from collections.abc import Mapping
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from starlette.responses import HTMLResponse, Response

NO_STORE_PAGE = {
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
    "Referrer-Policy": "no-referrer",
    # Nothing on these pages runs, loads or may be framed.
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
}
PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{{font:16px/1.5 system-ui,sans-serif;max-width:36em;margin:4em auto;padding:0 1em}}
</style></head>
<body><h1>{title}</h1><p id="error">{message}</p></body></html>
"""


def error_page(
    status: int, message: str, *, headers: Mapping[str, str] | None = None
) -> HTMLResponse:
    """A page for a sign-in that cannot go on; `message` is a fixed sentence of ours."""
    title = "Sign-in failed"
    body = PAGE.format(title=html.escape(title), message=html.escape(message))
    return HTMLResponse(body, status_code=status, headers={**NO_STORE_PAGE, **(headers or {})})


def with_query(url: str, parameters: Mapping[str, str | None]) -> str:
    """`url` with `parameters` added to its query (RFC 6749 §3.1.2: a redirect URI's own
    query is kept); `None` values are left out."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    query += [(name, value) for name, value in parameters.items() if value is not None]
    return urlunsplit(parts._replace(query=urlencode(query)))


def redirect(url: str) -> Response:
    return Response(status_code=302, headers={**NO_STORE_PAGE, "Location": url})
