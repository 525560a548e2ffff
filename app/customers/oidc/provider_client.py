"""Keyhouse's calls to OpenID providers, over httpx: discovery, keys, code exchange, userinfo.

Discovery documents and key sets are cached for an hour: a provider changes them rarely, and a
login should not cost two extra round trips. A key id the cached set does not know prompts a
fresh read (a provider rotated its keys), at most every `KEYS_REFRESH_SECONDS`.

Every failure becomes a `ProviderError` with a fixed sentence: a provider that is down, slow or
answers garbage gets the shopper a clear error, never a 500, and nothing it sent is quoted.

httpx and joserfc are imported when a worker first talks to a provider: the 5.5 and 0.9 MiB
they hold would otherwise sit in every worker of every store that has no login provider.
"""

import base64
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar
from urllib.parse import quote

import orjson

from app.customers.oidc.discovery import (
    ProviderMetadata,
    ProviderResponseError,
    ProviderUnavailableError,
    discovery_url,
    insecure_url_error,
    is_secure_url,
    parse_metadata,
)

if TYPE_CHECKING:
    import httpx
    from joserfc.jwk import KeySet

TIMEOUT_SECONDS = 5.0
CONNECT_TIMEOUT_SECONDS = 3.0
MAX_ANSWER_BYTES = 512 * 1024
CACHE_SECONDS = 3600.0
KEYS_REFRESH_SECONDS = 30.0
MAX_CACHED = 256
SIGNING_KEY_TYPES = ("RSA", "EC", "OKP")

V = TypeVar("V")


@dataclass(frozen=True, slots=True)
class ProviderTokens:
    """What the token endpoint answered for a code (OpenID Connect Core §3.1.3.3)."""

    id_token: str
    access_token: str


def _unavailable() -> ProviderUnavailableError:
    return ProviderUnavailableError(
        "provider_unavailable", "The login provider cannot be reached; try again later."
    )


def _bad_answer() -> ProviderResponseError:
    return ProviderResponseError(
        "provider_bad_answer", "The login provider answered with something unusable."
    )


def signing_keys(document: object) -> "KeySet":
    """The signature keys of a JWK set (RFC 7517 §5); encryption keys and kinds of key we do
    not verify with are left out, so one odd key does not take the others down with it."""
    from joserfc.errors import JoseError
    from joserfc.jwk import JWKRegistry, KeySet

    listed = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(listed, list):
        raise _bad_answer()
    keys = []
    for entry in listed:
        if not isinstance(entry, dict) or entry.get("use", "sig") != "sig":
            continue
        if entry.get("kty") not in SIGNING_KEY_TYPES:
            continue
        try:
            keys.append(JWKRegistry.import_key(entry))
        except (JoseError, ValueError, TypeError):
            continue
    return KeySet(keys)


class _Cache(Generic[V]):
    """Values by key for `CACHE_SECONDS`, with when each was read."""

    def __init__(self) -> None:
        self._entries: dict[str, tuple[float, V]] = {}

    def get(self, key: str) -> tuple[float, V] | None:
        entry = self._entries.get(key)
        if entry is None or time.monotonic() - entry[0] >= CACHE_SECONDS:
            return None
        return entry

    def put(self, key: str, value: V) -> None:
        if len(self._entries) >= MAX_CACHED and key not in self._entries:
            self._entries.pop(next(iter(self._entries)))  # the oldest
        self._entries[key] = (time.monotonic(), value)


class ProviderClient:
    """One worker's HTTP client for every provider, with its caches. `loopback_http`: whether
    a provider may be reached over http on a loopback host (development and tests; never in
    production, `for_environment`)."""

    def __init__(
        self, http: "httpx.AsyncClient | None" = None, *, loopback_http: bool = False
    ) -> None:
        self._client = http
        self.loopback_http = loopback_http
        self._metadata: _Cache[ProviderMetadata] = _Cache()
        self._keys: _Cache[KeySet] = _Cache()

    @property
    def _http(self) -> "httpx.AsyncClient":
        if self._client is None:
            import httpx

            timeout = httpx.Timeout(TIMEOUT_SECONDS, connect=CONNECT_TIMEOUT_SECONDS)
            self._client = httpx.AsyncClient(timeout=timeout, follow_redirects=False)
        return self._client

    @classmethod
    def for_environment(cls, environment: str) -> "ProviderClient":
        """The client for `KEYHOUSE_ENVIRONMENT`: http on loopback in development only."""
        return cls(loopback_http=environment != "production")

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()

    async def metadata(self, issuer: str) -> ProviderMetadata:
        cached = self._metadata.get(issuer)
        if cached is not None:
            return cached[1]
        metadata = await self.discover(issuer)
        self._metadata.put(issuer, metadata)
        return metadata

    async def discover(self, issuer: str) -> ProviderMetadata:
        """The provider's discovery document, read now and checked (no cache)."""
        if not is_secure_url(issuer, loopback_http=self.loopback_http):
            raise insecure_url_error()
        document = await self._json(self._http.build_request("GET", discovery_url(issuer)))
        return parse_metadata(document, issuer=issuer, loopback_http=self.loopback_http)

    async def keys(self, metadata: ProviderMetadata, *, unknown_kid: bool = False) -> "KeySet":
        """The provider's signing keys; `unknown_kid` asks for a fresh read if the cached set
        is old enough, since the provider may have rotated its keys."""
        cached = self._keys.get(metadata.jwks_uri)
        if cached is not None:
            read_at, keys = cached
            if not unknown_kid or time.monotonic() - read_at < KEYS_REFRESH_SECONDS:
                return keys
        keys = signing_keys(await self._json(self._http.build_request("GET", metadata.jwks_uri)))
        self._keys.put(metadata.jwks_uri, keys)
        return keys

    async def exchange_code(
        self,
        metadata: ProviderMetadata,
        *,
        client_id: str,
        client_secret: str,
        code: str,
        code_verifier: str,
        redirect_uri: str,
    ) -> ProviderTokens:
        """The authorization code for tokens (RFC 6749 §4.1.3, RFC 7636 §4.5)."""
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": code_verifier,
        }
        headers: dict[str, str] = {}
        if metadata.client_auth_method == "client_secret_basic":
            headers["Authorization"] = _basic_credentials(client_id, client_secret)
        else:
            form |= {"client_id": client_id, "client_secret": client_secret}
        request = self._http.build_request(
            "POST", metadata.token_endpoint, data=form, headers=headers
        )
        answer = await self._json(request, refused_reason="code_refused")
        id_token, access_token = answer.get("id_token"), answer.get("access_token")
        if not isinstance(id_token, str) or not isinstance(access_token, str):
            raise ProviderResponseError(
                "no_id_token", "The login provider did not return an ID token."
            )
        return ProviderTokens(id_token=id_token, access_token=access_token)

    async def userinfo(self, metadata: ProviderMetadata, *, access_token: str) -> dict[str, Any]:
        """The UserInfo claims (OpenID Connect Core §5.3), as plain JSON."""
        assert metadata.userinfo_endpoint is not None
        request = self._http.build_request(
            "GET",
            metadata.userinfo_endpoint,
            headers={"Authorization": f"Bearer {access_token}", "Accept": "application/json"},
        )
        return await self._json(request)

    async def _json(
        self, request: "httpx.Request", *, refused_reason: str | None = None
    ) -> dict[str, Any]:
        """Sends `request` and reads a JSON object of at most `MAX_ANSWER_BYTES`. A 4xx is a
        refusal (`refused_reason`, if the caller expects some) or an unusable answer."""
        import httpx  # loaded already: `request` was built with it

        request.headers.setdefault("Accept", "application/json")
        try:
            response = await self._http.send(request, stream=True)
            try:
                body = await _read_capped(response)
            finally:
                await response.aclose()
        except httpx.HTTPError as error:
            raise _unavailable() from error
        if response.status_code >= 500:
            raise _unavailable()
        if response.status_code != 200:
            if refused_reason is not None and 400 <= response.status_code < 500:
                raise ProviderResponseError(
                    refused_reason, "The login provider refused the sign-in; please start again."
                )
            raise _bad_answer()
        return _json_object(body)


async def _read_capped(response: "httpx.Response") -> bytes:
    body = bytearray()
    async for chunk in response.aiter_bytes():
        body += chunk
        if len(body) > MAX_ANSWER_BYTES:
            raise _bad_answer()
    return bytes(body)


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise _bad_answer() from error
    if not isinstance(document, dict):
        raise _bad_answer()
    return document


def _basic_credentials(client_id: str, client_secret: str) -> str:
    """RFC 6749 §2.3.1: each part form-urlencoded, then HTTP Basic."""
    pair = f"{quote(client_id, safe='')}:{quote(client_secret, safe='')}"
    return "Basic " + base64.b64encode(pair.encode()).decode()
