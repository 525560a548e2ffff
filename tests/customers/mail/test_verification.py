"""Verified emails (issue 19): the sign-up's link, which needs the password too; the store
setting that requires it; and the email change that takes effect only once the new address is
confirmed, with a notice to the old one."""

import httpx
import pytest
from sqlalchemy import update

from app.oauth.stores import Store
from app.observability.audit import list_events
from app.runtime.db import Database
from app.runtime.settings import Settings

from ...smtp import MailServer, token_in, with_mail
from ..conftest import MakeShopper
from ..shoppers import CUSTOMERS_URL, PASSWORD, headers, log_in, new_email, sign_up
from .resets import NEW_PASSWORD, ask_for_reset, confirm_reset, mails

VERIFY_URL = "https://shop.example/verify#token={token}"
REQUEST_URL = "/v2/customers/email-verification"
CONFIRM_URL = "/v2/customers/email-verification/confirm"


@pytest.fixture
def settings(
    request: pytest.FixtureRequest, settings: Settings, mail_server: MailServer
) -> Settings:
    """Mail sent to `mail_server`, with verification links unless a test's marker unsets them."""
    marker = request.node.get_closest_marker("settings")
    link = marker.kwargs.get("email_verification_url", VERIFY_URL) if marker else VERIFY_URL
    return with_mail(settings, mail_server, email_verification_url=link)


async def confirm(
    http: httpx.AsyncClient, bearer: str, token: str, password: str | None = PASSWORD
) -> httpx.Response:
    data = {"type": "email_verification", "token": token}
    if password is not None:
        data["password"] = password
    return await http.post(CONFIRM_URL, json={"data": data}, headers=headers(bearer))


async def ask_for_verification(http: httpx.AsyncClient, bearer: str, email: str) -> httpx.Response:
    body = {"data": {"type": "email_verification_request", "email": email}}
    return await http.post(REQUEST_URL, json=body, headers=headers(bearer))


async def change_email(
    http: httpx.AsyncClient, bearer: str, shopper_id: str, token: str, email: str, password: str
) -> httpx.Response:
    body = {"data": {"type": "email_change", "current_password": password, "email": email}}
    url = f"{CUSTOMERS_URL}/{shopper_id}/email-change"
    return await http.post(url, json=body, headers=headers(bearer, token))


async def read_self(
    http: httpx.AsyncClient, bearer: str, shopper_id: str, token: str
) -> httpx.Response:
    return await http.get(f"{CUSTOMERS_URL}/{shopper_id}", headers=headers(bearer, token))


def detail_of(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    detail: str = response.json()["errors"][0]["detail"]
    return detail


async def test_a_sign_up_is_verified_by_its_link_and_the_password(
    http: httpx.AsyncClient, storefront: str, mail_server: MailServer, database: Database
) -> None:
    email = new_email()
    signed_up = await sign_up(http, storefront, email=email)
    assert signed_up.json()["data"]["email_verified"] is False
    (mail,) = await mails(mail_server, 1)
    assert mail["To"] == email
    assert mail["Subject"] == "Confirm your email address for Default store"
    token = token_in(mail)

    assert "password" in detail_of(await confirm(http, storefront, token, password=None), 400)
    assert (await confirm(http, storefront, token, password="not the password")).status_code == 401
    confirmed = await confirm(http, storefront, token)
    assert confirmed.status_code == 200, confirmed.text
    assert confirmed.json()["data"]["email_verified"] is True
    assert "used" in detail_of(await confirm(http, storefront, token), 409)
    async with database.sessions() as session:
        (verified,) = await list_events(session, event_name="customer.email_verified")
        refused = await list_events(session, event_name="customer.email_verification_refused")
    assert verified.subject == signed_up.json()["data"]["id"]
    assert sorted(event.details["reason"] for event in refused) == ["used", "wrong_password"]


async def test_a_stranger_who_signed_up_with_your_address_cannot_get_it_verified(
    http: httpx.AsyncClient, storefront: str, mail_server: MailServer
) -> None:
    """The pre-account takeover: the owner of the mailbox clicks the link of an account they
    did not open; without its password, the address stays unverified."""
    victim = new_email()
    assert (await sign_up(http, storefront, email=victim, password="attackers pass")).is_success
    token = token_in((await mails(mail_server, 1))[0])
    assert (await confirm(http, storefront, token, password="the victims own")).status_code == 401
    # The owner takes the account back by a password reset, which proves the mailbox.
    await ask_for_reset(http, storefront, victim)
    reset = await confirm_reset(http, storefront, token_in((await mails(mail_server, 2))[1]))
    assert reset.status_code == 200 and reset.json()["data"]["email_verified"] is True
    attacker = await log_in(http, storefront, email=victim, password="attackers pass")
    assert attacker.status_code == 401


async def test_every_request_gets_the_same_answer_and_only_unverified_customers_mail(
    http: httpx.AsyncClient, storefront: str, backend: str, mail_server: MailServer
) -> None:
    unverified, verified = new_email(), new_email()
    await sign_up(http, storefront, email=unverified)
    body = {"type": "customer", "name": "V", "email": verified, "password": PASSWORD}
    body["email_verified"] = True  # type: ignore[assignment]
    created = await http.post(CUSTOMERS_URL, json={"data": body}, headers=headers(backend))
    assert created.json()["data"]["email_verified"] is True
    await mails(mail_server, 1)  # the sign-up's
    answers = [
        await ask_for_verification(http, storefront, email)
        for email in (unverified, verified, "nobody@example.com")
    ]
    assert {(answer.status_code, answer.text) for answer in answers} == {(202, answers[0].text)}
    assert [mail["To"] for mail in await mails(mail_server, 2)] == [unverified, unverified]


async def test_a_storefront_cannot_say_an_email_is_verified(
    http: httpx.AsyncClient, storefront: str
) -> None:
    body = {"type": "customer", "name": "M", "email": new_email(), "password": PASSWORD}
    body["email_verified"] = True  # type: ignore[assignment]
    response = await http.post(CUSTOMERS_URL, json={"data": body}, headers=headers(storefront))
    assert response.status_code == 403


async def test_a_store_may_require_a_verified_email_before_a_password_login(
    http: httpx.AsyncClient, storefront: str, mail_server: MailServer, database: Database
) -> None:
    async with database.sessions() as session:
        await session.execute(update(Store).values(require_email_verification=True))
        await session.commit()
    email = new_email()
    await sign_up(http, storefront, email=email)
    assert "not verified" in detail_of(await log_in(http, storefront, email=email), 403)
    # A wrong password says only what a wrong password says.
    assert (await log_in(http, storefront, email=email, password="wrong one")).status_code == 401
    assert (await confirm(http, storefront, token_in((await mails(mail_server, 1))[0]))).is_success
    assert (await log_in(http, storefront, email=email)).status_code == 200


@pytest.mark.settings(email_verification_url=None)
async def test_without_a_verification_link_requests_are_404(
    http: httpx.AsyncClient, storefront: str, make_shopper: MakeShopper
) -> None:
    shopper = await make_shopper()
    response = await ask_for_verification(http, storefront, shopper.email)
    assert "KEYHOUSE_EMAIL_VERIFICATION_URL" in detail_of(response, 404)


async def test_an_email_changes_once_the_new_address_confirms_it(
    http: httpx.AsyncClient,
    storefront: str,
    make_shopper: MakeShopper,
    mail_server: MailServer,
) -> None:
    shopper = await make_shopper()
    other_session = (await log_in(http, storefront, email=shopper.email)).json()["data"]["token"]
    await mails(mail_server, 1)  # the sign-up's
    new = new_email()
    wrong = await change_email(http, storefront, shopper.id, shopper.token, new, "not it")
    assert wrong.status_code == 401
    asked = await change_email(http, storefront, shopper.id, shopper.token, new, PASSWORD)
    assert asked.status_code == 202, asked.text
    notice, link = (await mails(mail_server, 3))[1:]
    assert notice["To"] == shopper.email and "about to change" in notice["Subject"]
    assert link["To"] == new
    # Nothing has changed yet.
    assert (await read_self(http, storefront, shopper.id, shopper.token)).json()["data"][
        "email"
    ] == shopper.email

    changed = await confirm(http, storefront, token_in(link), password=None)
    assert changed.status_code == 200, changed.text
    assert changed.json()["data"]["email"] == new
    assert changed.json()["data"]["email_verified"] is True
    # The session that asked goes on; every other one is over.
    assert (await read_self(http, storefront, shopper.id, shopper.token)).status_code == 200
    assert (await read_self(http, storefront, shopper.id, other_session)).status_code == 401
    assert (await log_in(http, storefront, email=shopper.email)).status_code == 401
    assert (await log_in(http, storefront, email=new)).status_code == 200


async def test_an_email_change_to_a_taken_address_is_409(
    http: httpx.AsyncClient, storefront: str, make_shopper: MakeShopper
) -> None:
    shopper, other = await make_shopper(), await make_shopper()
    response = await change_email(
        http, storefront, shopper.id, shopper.token, other.email.upper(), PASSWORD
    )
    assert response.status_code == 409


async def test_a_password_reset_cancels_a_pending_email_change(
    http: httpx.AsyncClient, storefront: str, make_shopper: MakeShopper, mail_server: MailServer
) -> None:
    """Whoever started the change knew the password; the owner resetting it ends their plan."""
    shopper = await make_shopper()
    await change_email(http, storefront, shopper.id, shopper.token, new_email(), PASSWORD)
    link = (await mails(mail_server, 3))[2]
    await ask_for_reset(http, storefront, shopper.email)
    reset = token_in((await mails(mail_server, 4))[3])
    assert (await confirm_reset(http, storefront, reset)).status_code == 200
    detail = detail_of(await confirm(http, storefront, token_in(link), password=None), 409)
    assert "changed since" in detail
    assert (await log_in(http, storefront, email=shopper.email, password=NEW_PASSWORD)).is_success
