"""A method a path does not serve: 405 with every method the path serves in `Allow` (RFC 9110
§15.5.6), whichever route serves them; a plain `OPTIONS` is a 204 with the same `Allow`; a CORS
preflight is still the CORS layer's (tests/oauth/test_cors.py)."""

import httpx
import pytest

from ..conftest import MakeClient

CUSTOMER = "/v2/customers/00000000-0000-4000-8000-00000000abcd"
# Paths, and what they serve: GET and POST of /v2/customers are two routes, as are the methods
# of one customer; `/tokens` is a path of its own, not a customer's id.
SERVED = {
    "/v2/customers": "GET, OPTIONS, POST",
    CUSTOMER: "DELETE, GET, OPTIONS, PUT",
    CUSTOMER.replace("abcd", "ABCD"): "DELETE, GET, OPTIONS, PUT",  # a UUID in either case
    "/v2/customers/tokens": "OPTIONS, POST",
    "/v2/account-members/tokens": "OPTIONS, POST",  # no member's id either
    "/v2/carts/abc/items": "GET, OPTIONS, POST",
    "/oauth/access_token": "OPTIONS, POST",  # served ahead of FastAPI (app/oauth/endpoint.py)
}


@pytest.mark.parametrize(("path", "allow"), SERVED.items())
async def test_a_method_the_path_does_not_serve_names_all_it_does(
    http: httpx.AsyncClient, path: str, allow: str
) -> None:
    answer = await http.request("PATCH", path)
    assert answer.status_code == 405
    assert answer.headers["allow"] == allow
    assert answer.json()["errors"][0]["status"] == 405


@pytest.mark.parametrize(("path", "allow"), SERVED.items())
async def test_options_says_what_the_path_serves(
    http: httpx.AsyncClient, path: str, allow: str
) -> None:
    answer = await http.options(path)
    assert (answer.status_code, answer.headers["allow"], answer.content) == (204, allow, b"")


async def test_unknown_paths_stay_404(http: httpx.AsyncClient) -> None:
    for method in ("OPTIONS", "PATCH", "GET"):
        assert (await http.request(method, "/v2/nothing-here")).status_code == 404
    # Not a customer's id, and no path of its own.
    assert (await http.get("/v2/customers/not-a-uuid")).status_code == 404


async def test_a_preflight_is_still_cors(http: httpx.AsyncClient, make_client: MakeClient) -> None:
    shop = "https://shop.example"
    await make_client(name="storefront", public=True, origins=[shop])
    preflight = await http.options(
        "/v2/customers",
        headers={"Origin": shop, "Access-Control-Request-Method": "GET"},
    )
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == shop
    assert "allow" not in preflight.headers
