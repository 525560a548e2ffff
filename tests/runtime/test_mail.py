"""`app/runtime/mail.py` against a real SMTP server: STARTTLS or TLS, a login, and failures that say
what failed without a password in sight."""

import asyncio
import logging
from collections.abc import AsyncIterator
from email.message import EmailMessage
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

from app.runtime.mail import DeliveryError, Mailer, SmtpServer
from app.runtime.settings import ConfigurationError, Settings, get_settings

from ..smtp import SMTP_PASSWORD, SMTP_USER, MailHandler, MailServer, with_mail


def a_message(to: str = "ron@example.com") -> EmailMessage:
    message = EmailMessage()
    message["From"] = "no-reply@shop.example"
    message["To"] = to
    message["Subject"] = "Hello"
    message.set_content("Hello from Keyhouse.\n")
    return message


@pytest.fixture(autouse=True)
async def _connections_closed() -> AsyncIterator[None]:
    """A connection aiosmtplib closed over TLS finishes closing a few turns of the event loop
    later (the TLS shutdown waits for the server's answer). Those turns are given here, while
    the test's loop still runs: otherwise the loop is closed first, and the garbage collector
    finds the socket still open in some later test."""
    yield
    await asyncio.sleep(0.1)


def mailer_for(settings: Settings) -> Mailer:
    server = SmtpServer.from_settings(settings)
    assert server is not None
    return Mailer(server, timeout=5)


@pytest.fixture
def implicit_tls_server(smtp_certificate: tuple[Path, Path]) -> MailServer:
    server = MailServer(smtp_certificate, implicit_tls=True)
    server.start()
    yield server  # type: ignore[misc]
    server.stop()


@pytest.mark.parametrize("tls", ["starttls", "implicit"])
async def test_a_message_arrives_over_tls_after_a_login(
    settings: Settings,
    mail_server: MailServer,
    implicit_tls_server: MailServer,
    tls: str,
) -> None:
    server = mail_server if tls == "starttls" else implicit_tls_server
    await mailer_for(with_mail(settings, server)).send(a_message())
    (received,) = server.messages
    assert received["To"] == "ron@example.com"
    assert received.get_content().strip() == "Hello from Keyhouse."
    assert server.handler.logins == [SMTP_USER]  # the password was percent-decoded


def test_the_url_gives_host_port_and_credentials(
    settings: Settings, mail_server: MailServer
) -> None:
    parsed = SmtpServer.from_settings(with_mail(settings, mail_server))
    assert parsed is not None
    assert (parsed.hostname, parsed.port, parsed.implicit_tls) == (
        "127.0.0.1",
        mail_server.port,
        False,
    )
    assert (parsed.username, parsed.password) == (SMTP_USER, SMTP_PASSWORD)
    assert SMTP_PASSWORD not in repr(parsed)
    defaults = with_mail(settings, mail_server, smtp_url="smtps://mail.example", smtp_ca_file=None)
    assert SmtpServer.from_settings(defaults) == SmtpServer("mail.example", 465, True)


async def test_a_wrong_password_fails_without_showing_it(
    settings: Settings, mail_server: MailServer, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = "not-the-password-" + "z" * 8
    configured = with_mail(settings, mail_server, smtp_url=mail_server.url(wrong))
    with caplog.at_level(logging.DEBUG), pytest.raises(DeliveryError) as failure:
        await mailer_for(configured).send(a_message())
    assert failure.value.description == "SMTPAuthenticationError 535"
    assert not failure.value.permanent  # the operator may fix it; the mail is tried again
    assert failure.value.__cause__ is None and failure.value.__context__ is not None
    assert wrong not in str(failure.value) and wrong not in caplog.text
    assert mail_server.messages == []


async def test_a_refused_recipient_is_permanent(
    settings: Settings, mail_server: MailServer
) -> None:
    mail_server.handler.refuse_with = "550 No such mailbox"
    with pytest.raises(DeliveryError) as failure:
        await mailer_for(with_mail(settings, mail_server)).send(a_message())
    assert failure.value.permanent
    assert failure.value.description == "SMTPRecipientsRefused 550"


async def test_a_busy_mailbox_is_tried_again(settings: Settings, mail_server: MailServer) -> None:
    mail_server.handler.refuse_with = "452 Mailbox busy"
    with pytest.raises(DeliveryError) as failure:
        await mailer_for(with_mail(settings, mail_server)).send(a_message())
    assert not failure.value.permanent


async def test_no_starttls_means_no_mail(settings: Settings, mail_server: MailServer) -> None:
    """A server that offers no STARTTLS gets neither the password nor the message."""
    handler = MailHandler()
    plain = Controller(handler, hostname="127.0.0.1", port=mail_server.port, auth_require_tls=False)
    mail_server.stop()  # its port, for a server without TLS
    plain.start()
    try:
        with pytest.raises(DeliveryError) as failure:
            await mailer_for(with_mail(settings, mail_server)).send(a_message())
    finally:
        plain.stop()
    assert failure.value.description == "SMTPException"
    assert handler.messages == [] and handler.logins == []


async def test_an_untrusted_certificate_is_refused(
    settings: Settings, mail_server: MailServer
) -> None:
    untrusted = with_mail(settings, mail_server, smtp_ca_file=None)
    with pytest.raises(DeliveryError) as failure:
        await mailer_for(untrusted).send(a_message())
    assert "SSL" in failure.value.description or "SMTP" in failure.value.description
    assert mail_server.messages == []


async def test_nothing_listening_is_tried_again(
    settings: Settings, mail_server: MailServer
) -> None:
    mail_server.stop()
    with pytest.raises(DeliveryError) as failure:
        await mailer_for(with_mail(settings, mail_server)).send(a_message())
    assert not failure.value.permanent


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("SMTP_URL", "http://user:hunter2-secret@mail.example", "smtp:// (STARTTLS) or smtps://"),
        ("SMTP_URL", "smtp://user:hunter2-secret@mail.example:99999", "port"),
        ("SMTP_URL", "smtp://user:hunter2-secret@:25", "with a host"),
        ("PASSWORD_RESET_URL", "https://shop.example/reset", "containing {token}"),
        ("MAIL_FROM", "nobody", "an email address"),
    ],
)
def test_mail_settings_errors_name_the_rule_never_the_value(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, expected: str
) -> None:
    monkeypatch.setenv("KEYHOUSE_SMTP_URL", "smtp://user:hunter2-secret@mail.example")
    monkeypatch.setenv("KEYHOUSE_MAIL_FROM", "no-reply@shop.example")
    monkeypatch.setenv("KEYHOUSE_PASSWORD_RESET_URL", "https://shop.example/r?t={token}")
    monkeypatch.setenv(f"KEYHOUSE_{variable}", value)
    get_settings.cache_clear()
    try:
        with pytest.raises(ConfigurationError) as error:
            get_settings()
    finally:
        get_settings.cache_clear()
    assert expected in str(error.value)
    assert "hunter2" not in str(error.value)


def test_smtp_needs_a_sender_and_a_link(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEYHOUSE_SMTP_URL", "smtp://user:hunter2-secret@mail.example")
    get_settings.cache_clear()
    try:
        with pytest.raises(ConfigurationError) as error:
            get_settings()
    finally:
        get_settings.cache_clear()
    assert "KEYHOUSE_MAIL_FROM and KEYHOUSE_PASSWORD_RESET_URL" in str(error.value)
    assert "hunter2" not in str(error.value)


async def test_an_address_with_control_characters_is_refused_for_good(
    settings: Settings, mail_server: MailServer
) -> None:
    """Sign-up refuses such addresses now; a customer from before may still have one."""
    with pytest.raises(DeliveryError) as failure:
        await mailer_for(with_mail(settings, mail_server)).send(a_message("ron\x01@example.com"))
    assert failure.value.permanent and failure.value.description == "unusable address"
    assert mail_server.messages == []
