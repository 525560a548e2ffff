"""Sending mail over SMTP with aiosmtplib, to the server named by `KEYHOUSE_SMTP_URL`.

`smtp://user:pass@host:587` connects in clear and must upgrade with STARTTLS before it logs in
or sends: a server that does not offer STARTTLS is an error, never a fallback to clear text.
`smtps://user:pass@host:465` speaks TLS from the first byte. The server's certificate is
verified, against the system's CAs or those of `KEYHOUSE_SMTP_CA_FILE`. The user and password
are percent-decoded from the URL and never logged: a failure is described by its class and SMTP
code alone, since a server's reply text is not ours to vouch for.

aiosmtplib is imported with the first mail a worker sends, not at start-up: a worker of a shop
that sends no mail would otherwise hold its 0.9 MiB for nothing.
"""

import ssl
from dataclasses import dataclass, field
from email.message import EmailMessage
from urllib.parse import unquote, urlsplit

from app.runtime.settings import Settings

STARTTLS_PORT = 587
IMPLICIT_TLS_PORT = 465
TIMEOUT_SECONDS = 30.0


@dataclass(frozen=True, slots=True)
class SmtpServer:
    """Where and how to send, parsed from `KEYHOUSE_SMTP_URL` (checked by the settings)."""

    hostname: str
    port: int
    implicit_tls: bool
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    ca_file: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> "SmtpServer | None":
        """The configured server, or None when mail is not configured."""
        if settings.smtp_url is None:
            return None
        parts = urlsplit(settings.smtp_url.get_secret_value())
        implicit_tls = parts.scheme == "smtps"
        assert parts.hostname is not None  # the settings refuse a URL without a host
        return cls(
            hostname=parts.hostname,
            port=parts.port or (IMPLICIT_TLS_PORT if implicit_tls else STARTTLS_PORT),
            implicit_tls=implicit_tls,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password is not None else None,
            ca_file=str(settings.smtp_ca_file) if settings.smtp_ca_file else None,
        )


class DeliveryError(Exception):
    """A message not sent. `permanent`: the server refused it for good, so trying again
    cannot help (a 5xx for the recipient or the message); anything else may pass later."""

    def __init__(self, description: str, *, permanent: bool = False) -> None:
        super().__init__(description)
        self.description = description
        self.permanent = permanent


def _describe(error: Exception) -> str:
    code = getattr(error, "code", None)
    refused = getattr(error, "recipients", None)  # SMTPRecipientsRefused: one per recipient
    if code is None and refused:
        code = refused[0].code
    return type(error).__name__ + (f" {code}" if code else "")


def _is_permanent(error: Exception) -> bool:
    import aiosmtplib  # loaded already: `error` came from it, or from the socket under it

    if isinstance(error, aiosmtplib.SMTPRecipientsRefused):
        return all(refused.code >= 500 for refused in error.recipients)
    refused_message = (aiosmtplib.SMTPRecipientRefused, aiosmtplib.SMTPDataError)
    return isinstance(error, refused_message) and error.code >= 500


class Mailer:
    """Sends one message per connection: reset mails are few, and a connection held open
    between them would only be dropped by the server."""

    def __init__(self, server: SmtpServer, *, timeout: float = TIMEOUT_SECONDS) -> None:
        self._server = server
        self._timeout = timeout
        self._tls_context = (
            ssl.create_default_context(cafile=server.ca_file) if server.ca_file else None
        )

    async def send(self, message: EmailMessage) -> None:
        """Sends `message` to its `To`, from its `From`; raises `DeliveryError`."""
        import aiosmtplib

        server = self._server
        try:
            await aiosmtplib.send(
                message,
                hostname=server.hostname,
                port=server.port,
                username=server.username,
                password=server.password,
                use_tls=server.implicit_tls,
                start_tls=not server.implicit_tls,  # required, not opportunistic
                tls_context=self._tls_context,
                timeout=self._timeout,
            )
        except (aiosmtplib.SMTPException, OSError, ssl.SSLError) as error:
            raise DeliveryError(_describe(error), permanent=_is_permanent(error)) from None
        except ValueError:  # aiosmtplib's refusal of an address with control characters
            raise DeliveryError("unusable address", permanent=True) from None
