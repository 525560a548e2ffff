"""`/v2/carts/{ref}` and its items: any token of the store may fill a cart (CONTRACT §4)."""

import httpx
import pytest

from app.store.carts import Cart, CartItem

from ..customers.shoppers import headers
from .conftest import CountRows, MakeProduct, MakeShopper, add_to_cart

USD_1999 = [{"amount": 1999, "currency": "USD", "includes_tax": True}]


def display_price(amount: int, currency: str | None, formatted: str) -> dict[str, object]:
    return {
        "display_price": {
            "with_tax": {"amount": amount, "currency": currency, "formatted": formatted}
        }
    }


async def test_an_unused_cart_reads_as_empty_and_is_not_saved(
    http: httpx.AsyncClient, storefront: str, count_rows: CountRows
) -> None:
    response = await http.get("/v2/carts/new-cart", headers=headers(storefront))
    assert response.status_code == 200
    data = response.json()["data"]
    assert (data["type"], data["id"]) == ("cart", "new-cart")
    assert data["meta"]["display_price"] == display_price(0, None, "0")["display_price"]
    assert set(data["meta"]["timestamps"]) == {"created_at", "updated_at"}
    items = await http.get("/v2/carts/new-cart/items", headers=headers(storefront))
    assert items.json() == {"data": [], "meta": display_price(0, None, "0")}
    assert await count_rows(Cart) == 0


async def test_storefront_adds_items(
    http: httpx.AsyncClient, storefront: str, make_product: MakeProduct
) -> None:
    product = await make_product(sku="TEE")
    response = await add_to_cart(http, storefront, "abc", product["id"], 2)
    assert response.status_code == 201, response.text
    body = response.json()
    [item] = body["data"]
    assert set(item) == {
        "type", "id", "product_id", "name", "sku", "quantity", "unit_price", "value", "meta"
    }  # fmt: skip
    assert item["type"] == "cart_item"
    assert (item["product_id"], item["name"], item["sku"]) == (product["id"], "Product TEE", "TEE")
    assert item["quantity"] == 2
    assert item["unit_price"] == {"amount": 1999, "currency": "USD", "includes_tax": True}
    assert item["value"] == {"amount": 3998, "currency": "USD", "includes_tax": True}
    assert body["meta"] == display_price(3998, "USD", "39.98 USD")
    cart = await http.get("/v2/carts/abc", headers=headers(storefront))
    assert cart.json()["data"]["meta"]["display_price"]["with_tax"]["amount"] == 3998


async def test_adding_a_product_again_raises_its_quantity(
    http: httpx.AsyncClient, storefront: str, make_product: MakeProduct
) -> None:
    first = await make_product(sku="A")
    second = await make_product(sku="B", price=[{"amount": 1, "currency": "USD"}])
    await add_to_cart(http, storefront, "abc", first["id"], 2)
    await add_to_cart(http, storefront, "abc", second["id"], 5)
    response = await add_to_cart(http, storefront, "abc", first["id"], 3)
    body = response.json()
    assert [(i["sku"], i["quantity"]) for i in body["data"]] == [("A", 5), ("B", 5)]
    assert body["meta"]["display_price"]["with_tax"]["amount"] == 5 * 1999 + 5


async def test_a_whole_number_with_a_zero_fraction_is_a_quantity(
    http: httpx.AsyncClient, storefront: str, make_product: MakeProduct
) -> None:
    # JSON Schema's integers include 2.0 (the schema says `integer`); 2.5 is refused, not rounded.
    product = await make_product(sku="A")
    body = {"data": {"type": "cart_item", "id": product["id"], "quantity": 2.0}}
    response = await http.post("/v2/carts/abc/items", json=body, headers=headers(storefront))
    assert response.status_code == 201, response.text
    assert response.json()["data"][0]["quantity"] == 2


async def test_shopper_and_backend_use_carts_too(
    http: httpx.AsyncClient,
    backend: str,
    storefront: str,
    make_product: MakeProduct,
    make_shopper: MakeShopper,
) -> None:
    product = await make_product()
    shopper = await make_shopper()
    body = {"data": {"type": "cart_item", "id": product["id"], "quantity": 1}}
    as_shopper = headers(storefront, shopper.token)
    assert (await http.post("/v2/carts/c/items", json=body, headers=as_shopper)).status_code == 201
    assert (await add_to_cart(http, backend, "c", product["id"])).status_code == 201
    items = await http.get("/v2/carts/c/items", headers=as_shopper)
    assert items.json()["data"][0]["quantity"] == 2


async def test_unknown_or_draft_product_is_404_and_saves_nothing(
    http: httpx.AsyncClient,
    backend: str,
    make_product: MakeProduct,
    count_rows: CountRows,
) -> None:
    draft = await make_product(status="draft")
    unknown = "00000000-0000-4000-8000-000000000000"
    for product_id in (draft["id"], unknown):
        assert (await add_to_cart(http, backend, "abc", product_id)).status_code == 404
    assert (await count_rows(Cart), await count_rows(CartItem)) == (0, 0)


@pytest.mark.parametrize(
    "data",
    [
        {"type": "cart_item", "quantity": 1},
        {"type": "product", "id": "{id}", "quantity": 1},
        {"type": "cart_item", "id": "not-a-uuid", "quantity": 1},
        {"type": "cart_item", "id": "{id}", "quantity": 0},
        {"type": "cart_item", "id": "{id}", "quantity": 1001},
        {"type": "cart_item", "id": "{id}", "quantity": "many"},
        # Strict types: a quantity is a JSON integer, not a string, float or boolean.
        {"type": "cart_item", "id": "{id}", "quantity": "2"},
        {"type": "cart_item", "id": "{id}", "quantity": 2.5},
        {"type": "cart_item", "id": "{id}", "quantity": True},
    ],
)
async def test_bad_item_is_400_and_saves_nothing(
    http: httpx.AsyncClient,
    storefront: str,
    make_product: MakeProduct,
    count_rows: CountRows,
    data: dict[str, object],
) -> None:
    product = await make_product()
    body = {"data": {k: product["id"] if v == "{id}" else v for k, v in data.items()}}
    response = await http.post("/v2/carts/abc/items", json=body, headers=headers(storefront))
    assert response.status_code == 400
    assert (await count_rows(Cart), await count_rows(CartItem)) == (0, 0)


async def test_quantity_never_passes_1000(
    http: httpx.AsyncClient, storefront: str, make_product: MakeProduct
) -> None:
    product = await make_product()
    assert (await add_to_cart(http, storefront, "abc", product["id"], 600)).status_code == 201
    assert (await add_to_cart(http, storefront, "abc", product["id"], 401)).status_code == 400
    items = await http.get("/v2/carts/abc/items", headers=headers(storefront))
    assert items.json()["data"][0]["quantity"] == 600
    assert (await add_to_cart(http, storefront, "abc", product["id"], 400)).status_code == 201


async def test_a_cart_holds_one_currency(
    http: httpx.AsyncClient, storefront: str, make_product: MakeProduct
) -> None:
    dollars = await make_product(sku="USD")
    euros = await make_product(sku="EUR", price=[{"amount": 900, "currency": "EUR"}])
    both = await make_product(
        sku="BOTH", price=[{"amount": 800, "currency": "EUR"}, {"amount": 1000, "currency": "USD"}]
    )
    await add_to_cart(http, storefront, "abc", dollars["id"])
    mixed = await add_to_cart(http, storefront, "abc", euros["id"])
    assert mixed.status_code == 400
    priced = await add_to_cart(http, storefront, "abc", both["id"])
    assert [i["unit_price"]["currency"] for i in priced.json()["data"]] == ["USD", "USD"]
    assert priced.json()["data"][1]["unit_price"]["amount"] == 1000


async def test_a_product_without_price_cannot_be_added(
    http: httpx.AsyncClient, storefront: str, make_product: MakeProduct, count_rows: CountRows
) -> None:
    free = await make_product(price=[])
    assert (await add_to_cart(http, storefront, "abc", free["id"])).status_code == 400
    assert await count_rows(Cart) == 0  # a refused first item leaves no cart behind


async def test_items_keep_the_price_they_were_added_at(
    http: httpx.AsyncClient, backend: str, storefront: str, make_product: MakeProduct
) -> None:
    product = await make_product()
    await add_to_cart(http, storefront, "abc", product["id"])
    body = {"data": {"type": "product", "price": [{"amount": 5, "currency": "USD"}]}}
    await http.put(f"/v2/products/{product['id']}", json=body, headers=headers(backend))
    items = await http.get("/v2/carts/abc/items", headers=headers(storefront))
    assert items.json()["data"][0]["unit_price"]["amount"] == 1999


async def test_update_and_remove_items(
    http: httpx.AsyncClient, storefront: str, make_product: MakeProduct
) -> None:
    first, second = await make_product(sku="A"), await make_product(sku="B")
    await add_to_cart(http, storefront, "abc", first["id"])
    added = await add_to_cart(http, storefront, "abc", second["id"])
    item_a, item_b = (i["id"] for i in added.json()["data"])
    url = "/v2/carts/abc/items"
    body = {"data": {"type": "cart_item", "id": item_a, "quantity": 7}}
    updated = await http.put(f"{url}/{item_a}", json=body, headers=headers(storefront))
    assert updated.status_code == 200
    assert [i["quantity"] for i in updated.json()["data"]] == [7, 1]
    removed = await http.delete(f"{url}/{item_b}", headers=headers(storefront))
    assert [i["id"] for i in removed.json()["data"]] == [item_a]
    zero = {"data": {"type": "cart_item", "quantity": 0}}
    emptied = await http.put(f"{url}/{item_a}", json=zero, headers=headers(storefront))
    assert emptied.json() == {"data": [], "meta": display_price(0, None, "0")}


async def test_bad_quantity_update_is_400_and_changes_nothing(
    http: httpx.AsyncClient, storefront: str, make_product: MakeProduct
) -> None:
    product = await make_product()
    item_id = (await add_to_cart(http, storefront, "abc", product["id"])).json()["data"][0]["id"]
    for quantity in (-1, 1001):
        body = {"data": {"type": "cart_item", "quantity": quantity}}
        url = f"/v2/carts/abc/items/{item_id}"
        assert (await http.put(url, json=body, headers=headers(storefront))).status_code == 400
    items = await http.get("/v2/carts/abc/items", headers=headers(storefront))
    assert items.json()["data"][0]["quantity"] == 1


async def test_an_item_belongs_to_its_own_cart(
    http: httpx.AsyncClient, storefront: str, make_product: MakeProduct
) -> None:
    product = await make_product()
    item_id = (await add_to_cart(http, storefront, "mine", product["id"])).json()["data"][0]["id"]
    body = {"data": {"type": "cart_item", "quantity": 3}}
    for ref in ("other", "never-used"):
        url = f"/v2/carts/{ref}/items/{item_id}"
        assert (await http.put(url, json=body, headers=headers(storefront))).status_code == 404
        assert (await http.delete(url, headers=headers(storefront))).status_code == 404
    unknown = "/v2/carts/mine/items/00000000-0000-4000-8000-000000000000"
    assert (await http.delete(unknown, headers=headers(storefront))).status_code == 404
    items = await http.get("/v2/carts/mine/items", headers=headers(storefront))
    assert items.json()["data"][0]["quantity"] == 1


async def test_carts_belong_to_a_store(
    http: httpx.AsyncClient, storefront: str, other_backend: str, make_product: MakeProduct
) -> None:
    product = await make_product()
    await add_to_cart(http, storefront, "shared-ref", product["id"])
    theirs = await http.get("/v2/carts/shared-ref/items", headers=headers(other_backend))
    assert theirs.json()["data"] == []
    # Another store's product does not exist for this store's carts.
    assert (await add_to_cart(http, other_backend, "x", product["id"])).status_code == 404


@pytest.mark.parametrize("ref", ["x" * 65, "with space", "semi;colon"])
async def test_bad_reference_is_400(http: httpx.AsyncClient, storefront: str, ref: str) -> None:
    assert (await http.get(f"/v2/carts/{ref}", headers=headers(storefront))).status_code == 400


async def test_reference_of_64_characters_is_fine(http: httpx.AsyncClient, storefront: str) -> None:
    assert (await http.get(f"/v2/carts/{'x' * 64}", headers=headers(storefront))).status_code == 200


async def test_carts_need_a_token(http: httpx.AsyncClient) -> None:
    assert (await http.get("/v2/carts/abc")).status_code == 401
