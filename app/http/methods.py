"""Which methods a path serves: the `Allow` header of a 405, and the answer to `OPTIONS`.

Starlette answers a method a path does not serve with the methods of the first route whose path
matched, although several routes may serve one path (`GET` and `POST /v2/customers` are two
routes). RFC 9110 §15.5.6 asks for every method the target resource supports, so the routes are
asked here, all of them. A CORS preflight is answered before this (app/oauth/cors.py); a plain
`OPTIONS` (RFC 9110 §9.3.7) gets a 204 with the same `Allow`.
"""

from fastapi.routing import iter_route_contexts
from starlette.requests import Request
from starlette.responses import Response

# Served on every path that serves anything, by `options_answer`.
ALWAYS = ("OPTIONS",)


def allowed_methods(request: Request) -> list[str]:
    """Every method some route of the app serves at the request's path, in a stable order.
    (FastAPI keeps an included router as one entry: its routes are reached through it.)"""
    path = request.scope["path"]
    served: set[str] = set()
    for route in iter_route_contexts(request.app.router.routes):
        pattern, methods = getattr(route, "path_regex", None), route.methods
        if pattern is not None and methods and pattern.match(path):
            served |= methods
    if not served:
        return []
    return sorted(served | set(ALWAYS))


def options_answer(allow: list[str]) -> Response:
    """`OPTIONS` on a path that serves other methods: what it serves, and nothing else."""
    return Response(status_code=204, headers={"Allow": ", ".join(allow)})
