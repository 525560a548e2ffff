"""Account members attacked: each test is one way a stranger, a stolen token or a token of the
wrong kind tried to act as a member, or for an account, that is not theirs."""

from typing import Any

import httpx
import jwt
import pytest

from ..conftest import MakeClient
from ..customers.conftest import MakeStore
from ..customers.shoppers import PASSWORD, backend_token, headers, implicit_token, new_shopper
from ..world import assert_errors
from .realm import (
    HEADER,
    RENEWAL,
    SETTINGS_URL,
    TOKENS_URL,
    Setup,
    add_member,
    data_of,
    infos_url,
    login_body,
    make_member,
    make_profile,
    passwords_url,
    realm_id,
    signup_body,
)

THIEFS_PASSWORD = "the thiefs own password"


async def settle(http: httpx.AsyncClient, backend: str, **settings: Any) -> None:
    body = {"data": {"type": "account_authentication_settings", **settings}}
    data_of(await http.put(SETTINGS_URL, json=body, headers=headers(backend)), 200)


async def log_in(http: httpx.AsyncClient, setup: Setup, username: str, password: str) -> Any:
    body = login_body(setup.profile, username, password)
    return await http.post(TOKENS_URL, json=body, headers=headers(setup.storefront))


async def members(http: httpx.AsyncClient, setup: Setup) -> list[str]:
    listed = await http.get(infos_url(setup.realm), headers=headers(setup.backend))
    return [m["id"] for m in data_of(listed, 200)]


# --- 1. a sign-up with someone else's username or email -------------------------------------


@pytest.mark.parametrize("spelling", [str, str.upper, lambda name: f"  {name} "])
async def test_a_sign_up_with_a_taken_username_never_reaches_its_member(
    http: httpx.AsyncClient, setup: Setup, spelling: Any
) -> None:
    await settle(http, setup.backend, enable_self_signup=True)
    # a member made by a backend (A), and one made by a sign-up
    first = signup_body(setup.profile, "signed-up", password=THIEFS_PASSWORD[::-1])
    data_of(await http.post(TOKENS_URL, json=first, headers=headers(setup.storefront)), 201)
    before = await members(http, setup)
    for username in (setup.a.username, "signed-up"):
        body = signup_body(setup.profile, spelling(username), password=THIEFS_PASSWORD)
        taken = await http.post(TOKENS_URL, json=body, headers=headers(setup.storefront))
        assert_errors(taken, 409)
        assert "data" not in taken.json()  # no token of the member whose username it is
        assert_errors(await log_in(http, setup, username, THIEFS_PASSWORD), 401)
    assert await members(http, setup) == before  # nothing made, nothing attached
    owner = data_of(await log_in(http, setup, setup.a.username, PASSWORD), 201)
    assert [t["account_id"] for t in owner] == [setup.a.account]


async def test_a_sign_up_with_a_members_email_is_a_stranger_to_them(
    http: httpx.AsyncClient, setup: Setup
) -> None:
    await settle(http, setup.backend, enable_self_signup=True)
    a_url = f"/v2/account-members/{setup.a.id}"
    email = data_of(await http.get(a_url, headers=headers(setup.backend)), 200)["email"]
    body = signup_body(setup.profile, "impostor", email=email, password=THIEFS_PASSWORD)
    response = await http.post(TOKENS_URL, json=body, headers=headers(setup.storefront))
    assert response.status_code == 201, response.text
    assert response.json()["data"] == []  # no account of A's, nor any other
    impostor = response.json()["meta"]["account_member_id"]
    assert impostor != setup.a.id
    # Logging in with A's email as the username finds neither of them.
    assert_errors(await log_in(http, setup, email.upper(), THIEFS_PASSWORD), 401)
    owner = data_of(await log_in(http, setup, setup.a.username, PASSWORD), 201)
    claims = jwt.decode(owner[0]["token"], options={"verify_signature": False})
    assert claims["sub"] == setup.a.id


# --- 2. a member's own username moved onto another's ----------------------------------------


async def test_a_member_cannot_take_another_members_username(
    http: httpx.AsyncClient, setup: Setup
) -> None:
    await settle(http, setup.backend, account_member_self_management="update_only")
    secrets = await http.get(passwords_url(setup.realm, setup.b.id), headers=headers(setup.backend))
    (secret,) = data_of(secrets, 200)
    url = f"{passwords_url(setup.realm, setup.b.id)}/{secret['id']}"
    for username in (setup.a.username, setup.a.username.upper(), f" {setup.a.username} "):
        change = {
            "data": {
                "type": "user_authentication_password_profile_info",
                "username": username,
                "password": THIEFS_PASSWORD,
            }
        }
        assert_errors(await http.put(url, json=change, headers=setup.as_member(setup.b)), 409)
    # B's password did not change either, and A's username still logs A in, and only A.
    assert (await log_in(http, setup, setup.b.username, PASSWORD)).status_code == 201
    assert_errors(await log_in(http, setup, setup.a.username, THIEFS_PASSWORD), 401)
    owner = data_of(await log_in(http, setup, setup.a.username, PASSWORD), 201)
    assert [t["account_id"] for t in owner] == [setup.a.account]


async def test_a_member_cannot_take_another_members_email_or_a_username_elsewhere(
    http: httpx.AsyncClient, setup: Setup
) -> None:
    await settle(http, setup.backend, account_member_self_management="update_only")
    a_url = f"/v2/account-members/{setup.a.id}"
    email = data_of(await http.get(a_url, headers=headers(setup.backend)), 200)["email"]
    # Self-management reaches the member's own username and password, not their name or email,
    # and makes no username in another profile.
    info = {"data": {"type": "user_authentication_info", "email": email}}
    b_info = f"{infos_url(setup.realm)}/{setup.b.id}"
    assert_errors(await http.put(b_info, json=info, headers=setup.as_member(setup.b)), 403)
    other_profile = await make_profile(http, setup.backend, setup.realm)
    secret = {
        "data": {
            "type": "user_authentication_password_profile_info",
            "username": setup.a.username,
            "password": THIEFS_PASSWORD,
            "password_profile_id": other_profile,
        }
    }
    url = passwords_url(setup.realm, setup.b.id)
    assert_errors(await http.post(url, json=secret, headers=setup.as_member(setup.b)), 403)
    b = data_of(
        await http.get(f"/v2/account-members/{setup.b.id}", headers=headers(setup.backend)), 200
    )
    assert b["email"] != email


# --- 3. a username of one profile, or of another store --------------------------------------


async def test_a_username_logs_in_only_within_its_own_profile(
    http: httpx.AsyncClient,
    setup: Setup,
    make_client: MakeClient,
    make_store: MakeStore,
) -> None:
    other_profile = await make_profile(http, setup.backend, setup.realm)
    twin, _ = await make_member(
        http,
        setup.backend,
        setup.realm,
        other_profile,
        username=setup.a.username,
        password=THIEFS_PASSWORD,
    )
    store = await make_store("elsewhere")
    their_backend = await backend_token(http, await make_client(name="b", store_id=store.id))
    their_realm = await realm_id(http, their_backend)
    their_profile = await make_profile(http, their_backend, their_realm)
    await make_member(
        http,
        their_backend,
        their_realm,
        their_profile,
        username=setup.a.username,
        password=THIEFS_PASSWORD,
    )
    # The twin's password, in A's profile: no login; and A's in the twin's.
    assert_errors(await log_in(http, setup, setup.a.username, THIEFS_PASSWORD), 401)
    elsewhere = login_body(other_profile, setup.a.username, PASSWORD)
    assert_errors(
        await http.post(TOKENS_URL, json=elsewhere, headers=headers(setup.storefront)), 401
    )
    # Another store's profile, with its own member's password, from this store: no login.
    foreign = login_body(their_profile, setup.a.username, THIEFS_PASSWORD)
    assert_errors(await http.post(TOKENS_URL, json=foreign, headers=headers(setup.storefront)), 401)
    twin_login = login_body(other_profile, setup.a.username, THIEFS_PASSWORD)
    response = await http.post(TOKENS_URL, json=twin_login, headers=headers(setup.storefront))
    assert data_of(response, 201) == [] and response.json()["meta"]["account_member_id"] == twin


# --- 4. tokens of the wrong kind, or of another store ---------------------------------------


async def test_a_token_of_one_kind_is_never_taken_for_another(
    http: httpx.AsyncClient, setup: Setup
) -> None:
    shopper = await new_shopper(http, setup.storefront)
    url = f"/v2/accounts/{setup.a.account}"
    sent = [
        {"Authorization": f"Bearer {setup.a.token}"},  # an account token as the access token
        {**headers(setup.a.token), HEADER: setup.a.token},
        {**headers(setup.storefront), HEADER: shopper.token},  # a customer token as one
        {**headers(setup.storefront), HEADER: setup.storefront},  # an access token as one
        {**headers(setup.storefront), HEADER: setup.backend},
        headers(setup.storefront, setup.a.token),  # an account token as a customer token
    ]
    for request_headers in sent:
        response = await http.get(url, headers=request_headers)
        assert_errors(response, 401)
        assert 'error="invalid_token"' in response.headers["www-authenticate"]
    renewal = await http.post(
        TOKENS_URL, json=RENEWAL, headers={**headers(setup.storefront), HEADER: shopper.token}
    )
    assert_errors(renewal, 401)
    # An account token on a customer's own routes is no customer token.
    customer = await http.get(f"/v2/customers/{shopper.id}", headers=setup.as_member(setup.a))
    assert_errors(customer, 403)


async def test_an_account_token_of_another_store_renews_nothing_there(
    http: httpx.AsyncClient, setup: Setup, make_client: MakeClient, make_store: MakeStore
) -> None:
    store = await make_store("elsewhere")
    their_front = await make_client(name="front", store_id=store.id, public=True)
    sent = {**headers(await implicit_token(http, their_front)), HEADER: setup.a.token}
    assert_errors(await http.post(TOKENS_URL, json=RENEWAL, headers=sent), 401)
    assert_errors(await http.get(f"/v2/account-members/{setup.a.id}", headers=sent), 401)
    # Nor may another store's client log the member out (/oauth/revoke answers 200 whatever).
    form = {"token": setup.a.token, "client_id": their_front.client.id}
    assert (await http.post("/oauth/revoke", data=form)).status_code == 200
    own = await http.get(f"/v2/account-members/{setup.a.id}", headers=setup.as_member(setup.a))
    assert own.status_code == 200, own.text


# --- 5. renewal of a dead token, or for an account left ------------------------------------


async def test_a_removed_membership_gives_no_token_for_its_account(
    http: httpx.AsyncClient, setup: Setup
) -> None:
    a, b = setup.a, setup.b
    b_membership = await add_member(http, setup.backend, b.account, a.id)  # A joins Bolt
    tokens = data_of(await http.post(TOKENS_URL, json=RENEWAL, headers=setup.as_member(a)), 201)
    bolt_token = tokens[1]["token"]
    url = f"/v2/accounts/{b.account}/account-memberships/{b_membership}"
    assert (await http.delete(url, headers=headers(setup.backend))).status_code == 204
    # Bolt's token renews nothing; Acme's renews Acme's only.
    assert_errors(
        await http.post(TOKENS_URL, json=RENEWAL, headers=setup.as_member(a, bolt_token)), 401
    )
    renewed = data_of(await http.post(TOKENS_URL, json=RENEWAL, headers=setup.as_member(a)), 201)
    assert [t["account_id"] for t in renewed] == [a.account]
    assert_errors(
        await http.get(
            f"/v2/accounts/{b.account}", headers=setup.as_member(a, renewed[0]["token"])
        ),
        404,
    )


# --- 6. a password profile deleted, its logins live on ------------------------------------


async def test_deleting_a_profile_ends_the_tokens_of_logins_through_it(
    http: httpx.AsyncClient, setup: Setup
) -> None:
    """An operator deletes a profile (its passwords leaked, say): every token of a login through
    it ends, renewals of those included; a login of the same member through another profile
    lives on."""
    a = setup.a
    other = await make_profile(http, setup.backend, setup.realm)
    secret = {
        "data": {
            "type": "user_authentication_password_profile_info",
            "username": "a-elsewhere",
            "password": PASSWORD,
            "password_profile_id": other,
        }
    }
    url = passwords_url(setup.realm, a.id)
    data_of(await http.post(url, json=secret, headers=headers(setup.backend)), 201)
    elsewhere_login = login_body(other, "a-elsewhere")
    (elsewhere,) = data_of(
        await http.post(TOKENS_URL, json=elsewhere_login, headers=headers(setup.storefront)), 201
    )
    (renewed,) = data_of(await http.post(TOKENS_URL, json=RENEWAL, headers=setup.as_member(a)), 201)
    profile_url = f"/v2/authentication-realms/{setup.realm}/password-profiles/{setup.profile}"
    assert (await http.delete(profile_url, headers=headers(setup.backend))).status_code == 204

    own_account = f"/v2/accounts/{a.account}"
    for token in (a.token, renewed["token"]):
        assert_errors(await http.get(own_account, headers=setup.as_member(a, token)), 401)
        assert_errors(
            await http.post(TOKENS_URL, json=RENEWAL, headers=setup.as_member(a, token)), 401
        )
    assert_errors(await log_in(http, setup, a.username, PASSWORD), 401)
    # B logged in through the deleted profile too; A's other login is untouched.
    assert_errors(
        await http.get(f"/v2/accounts/{setup.b.account}", headers=setup.as_member(setup.b)), 401
    )
    as_elsewhere = setup.as_member(a, elsewhere["token"])
    assert (await http.get(own_account, headers=as_elsewhere)).status_code == 200
    (again,) = data_of(await http.post(TOKENS_URL, json=RENEWAL, headers=as_elsewhere), 201)
    assert (
        await http.get(own_account, headers=setup.as_member(a, again["token"]))
    ).status_code == 200
