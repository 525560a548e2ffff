"""Tokens as the client keeps them, and when to stop using them.

Keyhouse sends `expires` (epoch seconds) and `expires_in` (seconds) with every token. The
JavaScript SDKs compare `expires` with the local wall clock, which breaks when the clocks
disagree: a client clock a minute fast renews on every call, one a minute slow sends expired
tokens. Here the deadline is the moment the response arrived plus `expires_in`, on a monotonic
clock, so the client's wall clock never matters (`expires` is kept for display only).
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from .errors import UnexpectedResponseError

Clock = Callable[[], float]
"""Seconds on a monotonic clock; `time.monotonic` unless a test passes its own."""

MAX_RENEWAL_MARGIN = 60.0


def renewal_margin(lifetime: float) -> float:
    """How long before its end a token is renewed: a minute, but at most half its life.

    The margin covers the request in flight and a slow renewal; capping it at half the life
    keeps a short-lived token (a 2-second test client, say) from being renewed on every call."""
    return min(MAX_RENEWAL_MARGIN, lifetime / 2)


def _body(response: httpx.Response, what: str) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise UnexpectedResponseError(f"The {what} response is not a JSON object.")
    return body


def _field(body: dict[str, Any], name: str, kind: type, what: str) -> Any:
    value = body.get(name)
    # bool is an int in Python, and never a valid lifetime
    if not isinstance(value, kind) or isinstance(value, bool):
        raise UnexpectedResponseError(f"The {what} response has no valid `{name}`.")
    return value


def _optional_text(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    return value if isinstance(value, str) else ""


@dataclass(frozen=True, slots=True)
class AccessToken:
    """A bearer token from `POST /oauth/access_token` (contract §1)."""

    access_token: str = field(repr=False)
    expires: int
    expires_in: int
    scope: str
    identifier: str
    renew_at: float = field(repr=False)  # on the client's monotonic clock

    @classmethod
    def from_response(cls, response: httpx.Response, *, received_at: float) -> "AccessToken":
        """Reads a 200 token response that arrived at `received_at` (monotonic seconds)."""
        body = _body(response, "token")
        expires_in = _field(body, "expires_in", int, "token")
        return cls(
            access_token=_field(body, "access_token", str, "token"),
            expires=_field(body, "expires", int, "token"),
            expires_in=expires_in,
            scope=_optional_text(body, "scope"),
            identifier=_optional_text(body, "identifier"),
            renew_at=received_at + expires_in - renewal_margin(expires_in),
        )

    def due(self, now: float) -> bool:
        """Whether to renew before the next request."""
        return now >= self.renew_at


@dataclass(frozen=True, slots=True)
class CustomerToken:
    """A shopper's token from `POST /v2/customers/tokens` (contract §3).

    It is used up to its very end, unlike an access token: renewing it needs the shopper's
    password, so ending it early would only log the shopper out sooner. Keyhouse allows for a
    little clock skew, so a token sent in its last second still works."""

    token: str = field(repr=False)
    token_id: str
    customer_id: str
    expires: int
    expires_in: int
    ends_at: float = field(repr=False)  # on the client's monotonic clock

    @classmethod
    def from_response(cls, response: httpx.Response, *, received_at: float) -> "CustomerToken":
        data = _body(response, "login").get("data")
        if not isinstance(data, dict):
            raise UnexpectedResponseError("The login response has no `data` object.")
        expires_in = _field(data, "expires_in", int, "login")
        return cls(
            token=_field(data, "token", str, "login"),
            token_id=_field(data, "id", str, "login"),
            customer_id=_field(data, "customer_id", str, "login"),
            expires=_field(data, "expires", int, "login"),
            expires_in=expires_in,
            ends_at=received_at + expires_in,
        )

    def expired(self, now: float) -> bool:
        return now >= self.ends_at
