"""A logged-in shopper: their customer token, sent beside the client's bearer token (§3).

`KeyhouseAuth.log_in` returns a `ShopperAuth`; pass it as `auth=` on the shopper's requests
(or make it a client's `auth`). One backend can keep one per shopper: they all share the
client's access token and its renewals.

A customer token cannot be renewed without the password, and the password is not kept: holding
it for a day in a long-lived process is a worse risk than asking the shopper again. So when the
customer token has ended, or Keyhouse refuses it (revoked, customer deleted), the request
raises `LoginRequiredError` and the application logs the shopper in again.
"""

import time
from collections.abc import AsyncGenerator, Generator
from typing import Any

import httpx

from .errors import LoginRequiredError, error_from_response, is_refused
from .tokens import Clock, CustomerToken

LOGIN_PATH = "/v2/customers/tokens"
CUSTOMER_TOKEN_HEADER = "X-Moltin-Customer-Token"  # noqa: S105 (a header name)


def login_body(email: str, password: str) -> dict[str, Any]:
    return {"data": {"type": "token", "email": email, "password": password}}


class ShopperAuth(httpx.Auth):
    """The client's bearer token (renewed by `auth`) and one shopper's customer token."""

    def __init__(
        self, auth: httpx.Auth, customer_token: CustomerToken, *, clock: Clock = time.monotonic
    ) -> None:
        self._auth = auth
        self.customer_token = customer_token
        self._clock = clock

    @property
    def customer_id(self) -> str:
        return self.customer_token.customer_id

    def _attach(self, request: httpx.Request) -> None:
        if self.customer_token.expired(self._clock()):
            raise LoginRequiredError(
                "The shopper's customer token has ended: log them in again.",
                error="invalid_token",
                error_description="The customer token has expired.",
            )
        request.headers[CUSTOMER_TOKEN_HEADER] = self.customer_token.token

    @staticmethod
    def _refused_twice(request: httpx.Request, attempts: int, response: httpx.Response) -> bool:
        """Still refused after `auth` renewed its own token and retried: the customer token is
        what Keyhouse refuses."""
        return attempts > 1 and response.request is request and is_refused(response)

    def sync_auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        self._attach(request)
        flow = self._auth.sync_auth_flow(request)
        attempts = 0
        try:
            outgoing = next(flow)
            while True:
                attempts += outgoing is request
                response = yield outgoing
                try:
                    outgoing = flow.send(response)
                except StopIteration:
                    break
        finally:
            flow.close()
        if self._refused_twice(request, attempts, response):
            response.read()
            raise error_from_response(response, error_class=LoginRequiredError)

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        self._attach(request)
        flow = self._auth.async_auth_flow(request)
        attempts = 0
        try:
            outgoing = await flow.__anext__()
            while True:
                attempts += outgoing is request
                response = yield outgoing
                try:
                    outgoing = await flow.asend(response)
                except StopAsyncIteration:
                    break
        finally:
            await flow.aclose()
        if self._refused_twice(request, attempts, response):
            await response.aread()
            raise error_from_response(response, error_class=LoginRequiredError)
