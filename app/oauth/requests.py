"""Reading a token request (RFC 6749 §3.2, §4.4.2) without letting FastAPI validate it.

FastAPI would answer a missing form field with 422; OAuth clients expect 400 `invalid_request`.
So the body is read and parsed here, by hand, into plain strings.
"""

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

from starlette.requests import ClientDisconnect, Request
from starlette.types import Receive

from app.http.nesting import MAX_JSON_DEPTH, nests_deeper_than
from app.oauth.errors import InvalidRequestError

FORM = "application/x-www-form-urlencoded"
JSON = "application/json"

MALFORMED_BODY = "The request body is not a valid form or JSON object."
REPEATED = "A request parameter was given more than once."
TOO_LARGE = "The request body is too large."
UNSUPPORTED_MEDIA = "The body must be application/x-www-form-urlencoded or application/json."
MALFORMED_BASIC = "The HTTP Basic credentials are malformed."
TOO_DEEP = "The JSON body is nested too deeply."
TOO_MANY = "The request has too many parameters."
# A token request has at most six (grant_type, client_id, client_secret, scope, token,
# token_type_hint); more are refused before any is decoded.
MAX_PARAMETERS = 32


@dataclass(slots=True)  # per request: not frozen, which triples the cost to build
class BasicCredentials:
    client_id: str
    client_secret: str


@dataclass(slots=True)  # per request: not frozen, which triples the cost to build
class TokenRequest:
    """The parameters of a token request; empty values count as absent (RFC 6749 §3.1)."""

    params: dict[str, str]
    basic: BasicCredentials | None
    origin: str | None


# The only headers the token endpoint reads.
CONTENT_TYPE = b"content-type"
CONTENT_LENGTH = b"content-length"
AUTHORIZATION = b"authorization"
ORIGIN = b"origin"
WANTED_HEADERS = frozenset({CONTENT_TYPE, CONTENT_LENGTH, AUTHORIZATION, ORIGIN})


async def read_token_request(request: Request, *, max_bytes: int) -> TokenRequest:
    headers = _wanted_headers(request.scope["headers"])
    body = await _read_body(request.receive, headers.get(CONTENT_LENGTH), max_bytes)
    params = _parse_body(body, headers.get(CONTENT_TYPE, ""))
    return TokenRequest(
        params={name: value for name, value in params.items() if value},
        basic=parse_basic(headers.get(AUTHORIZATION)),
        origin=headers.get(ORIGIN),
    )


def _wanted_headers(raw_headers: list[tuple[bytes, bytes]]) -> dict[bytes, str]:
    # One pass over the raw list (ASGI names are lower case); Starlette's `Headers` would scan
    # it again for every lookup, and this is the busiest endpoint. The first of a kind counts.
    found: dict[bytes, str] = {}
    for name, value in raw_headers:
        if name in WANTED_HEADERS and name not in found:
            found[name] = value.decode("latin-1")
    return found


async def _read_body(receive: Receive, declared_length: str | None, max_bytes: int) -> bytes:
    if (
        declared_length is not None
        and declared_length.isascii()  # `isdigit()` alone takes "²", which `int()` refuses
        and declared_length.isdigit()
        # Never more digits than `int()` converts (4300): so many are too large anyway.
        and (len(declared_length) > 18 or int(declared_length) > max_bytes)
    ):
        raise InvalidRequestError(TOO_LARGE)  # refused before reading a byte of it
    chunks: list[bytes] = []
    size = 0
    more_body = True
    while more_body:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > max_bytes:  # also bounds chunked bodies, which declare no length
            raise InvalidRequestError(TOO_LARGE)
        chunks.append(chunk)
        more_body = message.get("more_body", False)
    return b"".join(chunks)


def _parse_body(body: bytes, content_type: str) -> dict[str, str]:
    media_type = content_type.split(";", 1)[0].strip().lower()
    try:
        if media_type in (FORM, ""):
            return _unique(form_pairs(body.decode()))
        if media_type == JSON:
            return _json_params(body)
    except (UnicodeDecodeError, ValueError) as error:  # JSONDecodeError is a ValueError
        raise InvalidRequestError(MALFORMED_BODY) from error
    raise InvalidRequestError(UNSUPPORTED_MEDIA)


def form_pairs(text: str) -> list[tuple[str, str]]:
    """What `parse_qsl(text, keep_blank_values=True, strict_parsing=True)` returns, in a third
    of its time on token requests (which rarely hold an escape): a field without `=` is a
    ValueError, names and values are `unquote_plus`ed, and only when they need it."""
    if not text:
        return []
    if text.count("&") >= MAX_PARAMETERS:
        raise InvalidRequestError(TOO_MANY)
    pairs = []
    for field in text.split("&"):
        name, equals, value = field.partition("=")
        if not equals:
            raise ValueError("a form field without '='")
        pairs.append((_form_decoded(name), _form_decoded(value)))
    return pairs


def _form_decoded(part: str) -> str:
    return unquote_plus(part) if "%" in part or "+" in part else part


def _unique(pairs: list[tuple[str, str]]) -> dict[str, str]:
    params = dict(pairs)
    if len(params) != len(pairs):
        raise InvalidRequestError(REPEATED)
    return params


def _json_params(body: bytes) -> dict[str, str]:
    if nests_deeper_than(body, MAX_JSON_DEPTH):  # before `json.loads` recurses into it
        raise InvalidRequestError(TOO_DEEP)
    document: Any = json.loads(body, object_pairs_hook=_unique_json_object)
    if not isinstance(document, dict):
        raise ValueError("not an object")
    params: dict[str, str] = {}
    for name, value in document.items():
        if isinstance(value, str):
            value.encode()  # an unpaired surrogate ("\ud800") has no UTF-8: a ValueError, so 400
            params[name] = value
        elif value is not None:  # numbers, lists and objects are not OAuth parameters
            raise ValueError("non-string parameter")
    return params


def _unique_json_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    if len(pairs) > MAX_PARAMETERS:
        raise InvalidRequestError(TOO_MANY)
    params = dict(pairs)
    if len(params) != len(pairs):
        raise InvalidRequestError(REPEATED)
    return params


def parse_basic(header: str | None) -> BasicCredentials | None:
    """HTTP Basic client credentials, each part form-urlencoded (RFC 6749 §2.3.1)."""
    if header is None:
        return None
    scheme, _, encoded = header.strip().partition(" ")
    if scheme.lower() != "basic":
        return None  # not a client authentication method this endpoint knows
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError) as error:
        raise InvalidRequestError(MALFORMED_BASIC) from error
    client_id, colon, client_secret = decoded.partition(":")
    if not colon or not client_id:
        raise InvalidRequestError(MALFORMED_BASIC)
    return BasicCredentials(unquote_plus(client_id), unquote_plus(client_secret))
