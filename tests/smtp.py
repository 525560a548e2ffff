"""A real SMTP server in the test process (aiosmtpd), for the mails Keyhouse sends.

It listens on a loopback port in a thread of its own, requires STARTTLS (or speaks TLS from the
first byte) with a self-signed certificate made here, requires a login, and keeps every message
it accepts. It can also refuse recipients, or hold a message without answering, to play a mail
server that fails.
"""

import asyncio
import datetime
import ipaddress
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import quote

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from app.runtime.settings import Settings

SMTP_USER = "keyhouse"
# Characters a URL must percent-encode, to check the password is decoded from it.
SMTP_PASSWORD = "p@ss:w/rd%smtp"
MAIL_FROM = "Keyhouse shop <no-reply@shop.example>"
RESET_URL = "https://shop.example/reset#token={token}"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def make_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost: (certificate, key) PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "keyhouse test mail")])
    now = datetime.datetime.now(datetime.UTC)
    names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "smtp-cert.pem", directory / "smtp-key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@dataclass
class MailHandler:
    """aiosmtpd's handler: keeps messages, or refuses or holds them when told to."""

    messages: list[EmailMessage] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)
    refuse_with: str | None = None  # an SMTP reply to every RCPT, such as "550 No such user"
    hold: threading.Event | None = None  # set: DATA is answered; unset: it waits
    arrived: threading.Condition = field(default_factory=threading.Condition)

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if self.refuse_with:
            return self.refuse_with
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.hold is not None:
            await asyncio.to_thread(self.hold.wait)
        parsed = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        with self.arrived:
            self.messages.append(parsed)
            self.arrived.notify_all()
        return "250 Message accepted"

    def authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any
    ) -> AuthResult:
        # handled=False: aiosmtpd answers a failure itself (535).
        if not isinstance(data, LoginPassword):
            return AuthResult(success=False, handled=False)
        accepted = data.login == SMTP_USER.encode() and data.password == SMTP_PASSWORD.encode()
        if accepted:
            self.logins.append(data.login.decode())
        return AuthResult(success=accepted, handled=False)

    def wait_for(self, count: int, timeout: float = 10.0) -> list[EmailMessage]:
        """Blocks until `count` messages arrived (call through `asyncio.to_thread`)."""
        deadline = time.monotonic() + timeout
        with self.arrived:
            while len(self.messages) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"{len(self.messages)} of {count} mails arrived")
                self.arrived.wait(left)
            return list(self.messages)


class MailServer:
    """The server: `smtp://` with required STARTTLS, or `smtps://`, on a port of its own."""

    def __init__(self, certificate: tuple[Path, Path], *, implicit_tls: bool = False) -> None:
        self.cert_file, key_file = certificate
        self.port = _free_port()
        self.implicit_tls = implicit_tls
        self.handler = MailHandler()
        self.running = False
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(self.cert_file, key_file)
        tls_options: dict[str, Any] = (
            # aiosmtpd counts only STARTTLS as TLS for AUTH (and warns when AUTH is required
            # without it), though here TLS is there from the first byte: AUTH is offered, and
            # the handler's `logins` tell that the client logged in.
            {"ssl_context": tls, "auth_require_tls": False}
            if implicit_tls
            else {"tls_context": tls, "require_starttls": True, "auth_required": True}
        )
        self._controller = Controller(
            self.handler,
            hostname="127.0.0.1",
            port=self.port,
            server_hostname="mail.test",
            authenticator=self.handler.authenticate,
            **tls_options,
        )

    def start(self) -> None:
        self._controller.start()
        self.running = True

    def stop(self) -> None:
        """Stops listening (a test may stop it early, to play a server that is down)."""
        if self.handler.hold is not None:
            self.handler.hold.set()
        if self.running:
            self._controller.stop()
            self.running = False

    @property
    def messages(self) -> list[EmailMessage]:
        return self.handler.messages

    def url(self, password: str = SMTP_PASSWORD) -> str:
        scheme = "smtps" if self.implicit_tls else "smtp"
        return f"{scheme}://{SMTP_USER}:{quote(password, safe='')}@127.0.0.1:{self.port}"

    def settings(self, **overrides: Any) -> dict[str, Any]:
        """Settings that send Keyhouse's mail here."""
        return {
            "smtp_url": self.url(),
            "smtp_ca_file": self.cert_file,
            "mail_from": MAIL_FROM,
            "password_reset_url": RESET_URL,
            **overrides,
        }


def link_in(message: EmailMessage) -> str:
    """The reset link of a mail: its one line that starts with https:// or http://."""
    body = message.get_body(("plain",))
    assert body is not None
    text = body.get_content()
    (link,) = [line for line in text.splitlines() if line.startswith(("http://", "https://"))]
    return link


def token_in(message: EmailMessage) -> str:
    """The token of a mail whose link follows `RESET_URL`."""
    return link_in(message).rpartition("#token=")[2]


def with_mail(settings: Settings, server: MailServer, **overrides: Any) -> Settings:
    """`settings`, sending Keyhouse's mail to `server`."""
    return Settings(**{**settings.model_dump(), **server.settings(**overrides)})
