"""Scopes (RFC 6749 §3.3): `read` and `write`, space-delimited on the wire."""

from collections.abc import Iterable

from app.oauth.errors import InvalidScopeError

READ = "read"
WRITE = "write"
SUPPORTED_SCOPES = (READ, WRITE)


def parse_scope(value: str) -> frozenset[str]:
    """Parses a `scope` parameter; an unknown scope name is `invalid_scope`."""
    names = frozenset(value.split())
    if not names or not names <= frozenset(SUPPORTED_SCOPES):
        raise InvalidScopeError()
    return names


def format_scope(scopes: Iterable[str]) -> str:
    """Renders scopes in a stable order (`read write`), whatever order they came in."""
    chosen = set(scopes)
    return " ".join(name for name in SUPPORTED_SCOPES if name in chosen)


def narrow_scope(requested: str | None, allowed: frozenset[str]) -> frozenset[str]:
    """What to grant: all that is allowed, or the requested part of it (RFC 6749 §3.3)."""
    if requested is None:
        if not allowed:
            raise InvalidScopeError()
        return allowed
    wanted = parse_scope(requested)
    if not wanted <= allowed:
        raise InvalidScopeError()
    return wanted
