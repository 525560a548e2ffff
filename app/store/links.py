"""OpenAPI links (OpenAPI 3.1 §4.8.20): from each answer that makes something to the operations
that read, change and delete it, with the ids they need taken from that answer.

A client generator shows them as "next steps", and a stateful fuzzer (Schemathesis) follows
them: without them it can only guess ids, and every read of a customer, an address, a cart
item or an order it tried was a 404. Operations are named by their route's function name
(`operation_id`), which the links name too, so renaming a route is a change of the schema.
"""

from dataclasses import dataclass, field
from typing import Any

from fastapi.routing import APIRoute

from app.http.security import CUSTOMER_TOKEN_HEADER

NEW_ID = "$response.body#/data/id"
CUSTOMER_ID = {"customer_id": NEW_ID}
SAME_CUSTOMER = {"customer_id": "$request.path.customer_id"}
SAME_CART = {"cart_ref": "$request.path.cart_ref"}
# A customer token just issued, sent as the shopper's header where a route requires it.
NEW_TOKEN = {f"header.{CUSTOMER_TOKEN_HEADER}": "$response.body#/data/token"}
SHOPPER = {"customer_id": "$response.body#/data/customer_id", **NEW_TOKEN}


def operation_id(route: APIRoute) -> str:
    """An operation's id: its route's function name, stable and unique in the app (a test
    holds them unique), rather than FastAPI's default, which spells out path and method."""
    return route.name


@dataclass(frozen=True, slots=True)
class Link:
    """A link to `target`, its parameters (and body) taken from the answer or its request."""

    target: str
    parameters: dict[str, str] = field(default_factory=dict)
    body: dict[str, Any] | None = None

    def document(self) -> dict[str, Any]:
        link: dict[str, Any] = {"operationId": self.target, "parameters": self.parameters}
        if self.body is not None:
            link["requestBody"] = self.body
        return link


def _each(parameters: dict[str, str], *targets: str) -> dict[str, Link]:
    return {target: Link(target, parameters) for target in targets}


# A sign-up, logged in with what it signed up with.
LOG_IN = Link(
    "create_customer_token",
    body={
        "data": {
            "type": "token",
            "authentication_mechanism": "password",
            "email": "$request.body#/data/email",
            "password": "$request.body#/data/password",
        }
    },
)


def add_to_cart(product_id: str) -> Link:
    """A product put in a cart named after it (adding makes the cart); a draft is a 404 there,
    and a storefront sees none (so a list of products it reads leads to live ones)."""
    body = {"data": {"type": "cart_item", "id": product_id, "quantity": 1}}
    return Link("add_cart_item", {"cart_ref": product_id}, body=body)


# A new product is a draft unless told otherwise: made live, it can go in a cart.
PUBLISH = Link(
    "update_product", {"product_id": NEW_ID}, body={"data": {"type": "product", "status": "live"}}
)

# --- accounts (app/accounts) ---
# The store's realm, as its settings name it: the way to its profiles and members.
REALM = {"realm_id": "$response.body#/data/relationships/authentication_realm/data/id"}
SAME_REALM = {"realm_id": "$request.path.realm_id"}
NEW_MEMBER = {**SAME_REALM, "info_id": NEW_ID}
SAME_MEMBER = {**SAME_REALM, "info_id": "$request.path.info_id"}
TO_THE_REALM = _each(
    REALM,
    "get_authentication_realm",
    "list_password_profiles",
    "create_password_profile",
    "list_user_authentication_info",
    "create_user_authentication_info",
)
PASSWORD_OPERATIONS = (
    "get_user_authentication_password_profile_info",
    "update_user_authentication_password_profile_info",
    "delete_user_authentication_password_profile_info",
)


def to_password(item: str, *, leaving: str | None = None) -> dict[str, Link]:
    """Links from a member's username and password (`item` points at it in the answer) to
    reading, changing and deleting it, of the same member, and its password profile, of the same
    realm. Without them a fuzzer infers its own, which take the member's id from the password's
    or leave the realm out, and never reach either."""
    password = {**SAME_MEMBER, "password_info_id": f"{item}/id"}
    profile = {**SAME_REALM, "profile_id": f"{item}/password_profile_id"}
    targets = [target for target in PASSWORD_OPERATIONS if target != leaving]
    return {
        **_each(password, *targets),
        **_each(
            profile, "get_password_profile", "update_password_profile", "delete_password_profile"
        ),
    }


# A member's new username and password, logged in with.
MEMBER_LOG_IN = Link(
    "create_account_member_token",
    body={
        "data": {
            "type": "account_management_authentication_token",
            "authentication_mechanism": "password",
            "password_profile_id": "$request.body#/data/password_profile_id",
            "username": "$request.body#/data/username",
            "password": "$request.body#/data/password",
        }
    },
)

# (operation, status) -> the links of that answer, by name.
LINKS: dict[tuple[str, int], dict[str, Link]] = {
    ("create_customer", 201): {
        **_each(
            CUSTOMER_ID,
            "get_customer",
            "update_customer",
            "delete_customer",
            "list_addresses",
            "create_address",
            "list_provider_links",
        ),
        "create_customer_token": LOG_IN,
    },
    ("create_customer_token", 200): {
        **_each(SHOPPER, "change_password", "request_email_change", "start_provider_link"),
        **_each(NEW_TOKEN, "revoke_current_customer_token"),
    },
    ("create_address", 201): _each(
        {**SAME_CUSTOMER, "address_id": NEW_ID}, "get_address", "update_address", "delete_address"
    ),
    ("create_product", 201): {
        **_each({"product_id": NEW_ID}, "get_product", "update_product", "delete_product"),
        "publish_product": PUBLISH,
        "add_cart_item": add_to_cart(NEW_ID),
    },
    ("update_product", 200): {"add_cart_item": add_to_cart(NEW_ID)},
    ("list_products", 200): {"add_cart_item": add_to_cart("$response.body#/data/0/id")},
    ("get_product", 200): {"add_cart_item": add_to_cart(NEW_ID)},
    ("add_cart_item", 201): {
        **_each(SAME_CART, "get_cart", "list_cart_items", "checkout_cart"),
        **_each(
            {**SAME_CART, "item_id": "$response.body#/data/0/id"},
            "update_cart_item",
            "delete_cart_item",
        ),
    },
    ("checkout_cart", 201): _each(
        {"order_id": NEW_ID}, "get_order", "list_order_items", "update_order"
    ),
    ("get_account_authentication_settings", 200): TO_THE_REALM,
    ("update_account_authentication_settings", 200): TO_THE_REALM,
    # No link to adding a member, nor a username and password: their bodies name a member or a
    # password profile that the answer cannot give, and one of another or no realm is a 404.
    ("create_account", 201): _each(
        {"account_id": NEW_ID},
        "get_account",
        "update_account",
        "delete_account",
        "list_account_memberships",
    ),
    ("create_account_membership", 201): _each(
        {"account_id": "$request.path.account_id", "membership_id": NEW_ID},
        "get_account_membership",
        "delete_account_membership",
    ),
    ("create_password_profile", 201): _each(
        {**SAME_REALM, "profile_id": NEW_ID},
        "get_password_profile",
        "update_password_profile",
        "delete_password_profile",
    ),
    ("create_user_authentication_info", 201): {
        **_each(
            NEW_MEMBER,
            "get_user_authentication_info",
            "update_user_authentication_info",
            "delete_user_authentication_info",
            "list_user_authentication_password_profile_info",
        ),
        **_each(
            {"account_member_id": NEW_ID},
            "get_account_member",
            "list_account_member_memberships",
        ),
    },
    ("create_user_authentication_password_profile_info", 201): {
        **to_password("$response.body#/data"),
        "create_account_member_token": MEMBER_LOG_IN,
    },
    ("get_user_authentication_password_profile_info", 200): to_password(
        "$response.body#/data", leaving="get_user_authentication_password_profile_info"
    ),
    ("update_user_authentication_password_profile_info", 200): to_password(
        "$response.body#/data", leaving="update_user_authentication_password_profile_info"
    ),
    ("list_user_authentication_password_profile_info", 200): to_password("$response.body#/data/0"),
    # A member's first membership, in its account (the answer names both).
    ("list_account_member_memberships", 200): _each(
        {
            "account_id": "$response.body#/data/0/relationships/account/data/id",
            "membership_id": "$response.body#/data/0/id",
        },
        "get_account_membership",
        "delete_account_membership",
    ),
}


def document_links(schema: dict[str, Any]) -> None:
    """Adds `LINKS` to the answers of an OpenAPI schema whose operation ids are `operation_id`."""
    operations = {
        operation["operationId"]: operation
        for methods in schema["paths"].values()
        for operation in methods.values()
    }
    for (source, status), links in LINKS.items():
        response = operations[source]["responses"][str(status)]
        response["links"] = {name: link.document() for name, link in links.items()}
