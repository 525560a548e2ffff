"""A Keyhouse client for Python backends, as an `httpx.Auth` (sync and async).

    auth = KeyhouseAuth.client_credentials(URL, client_id=ID, client_secret=SECRET)
    with httpx.Client(base_url=URL, auth=auth) as http:
        products = raise_for_error(http.get("/v2/products")).json()["data"]
        shopper = auth.log_in(http, email=EMAIL, password=PASSWORD)
        orders = raise_for_error(http.get("/v2/orders", auth=shopper)).json()["data"]

It depends on httpx alone, so a backend can install it without the server.
"""

from .auth import KeyhouseAuth
from .errors import (
    ErrorObject,
    InsufficientScopeError,
    InvalidClientError,
    InvalidCredentialsError,
    InvalidRequestError,
    InvalidScopeError,
    InvalidTokenError,
    KeyhouseError,
    LoginRequiredError,
    NotFoundError,
    RateLimitedError,
    UnauthorizedClientError,
    UnexpectedResponseError,
    UnsupportedGrantTypeError,
    error_from_response,
    raise_for_error,
)
from .grants import ClientCredentialsGrant, ImplicitGrant
from .shoppers import ShopperAuth
from .tokens import AccessToken, CustomerToken

__all__ = [
    "AccessToken",
    "ClientCredentialsGrant",
    "CustomerToken",
    "ErrorObject",
    "ImplicitGrant",
    "InsufficientScopeError",
    "InvalidClientError",
    "InvalidCredentialsError",
    "InvalidRequestError",
    "InvalidScopeError",
    "InvalidTokenError",
    "KeyhouseAuth",
    "KeyhouseError",
    "LoginRequiredError",
    "NotFoundError",
    "RateLimitedError",
    "ShopperAuth",
    "UnauthorizedClientError",
    "UnexpectedResponseError",
    "UnsupportedGrantTypeError",
    "error_from_response",
    "raise_for_error",
]
