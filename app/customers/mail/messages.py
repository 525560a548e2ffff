"""The mails Keyhouse sends shoppers: plain text, each link on a line of its own.

No text a stranger chose goes into a mail: anyone can sign up with anyone's address, so a name
typed at sign-up would be words of the attacker's in a real mail from the shop. What each
template uses, and where it comes from:

- the store's name (the operator's), the link (Keyhouse's URL setting and a random token), and
  the link's lifetime (a setting);
- the recipient's address, in the `To` header only.
"""

import secrets
from email.message import EmailMessage
from email.utils import formatdate, parseaddr


def _printable(text: str) -> str:
    return "".join(char if char.isprintable() else " " for char in text)


def lifetime(ttl: int) -> str:
    """A link's lifetime in words, for answers and mails."""
    minutes = max(1, ttl // 60)
    if minutes % 60 == 0 and minutes >= 120:
        return f"{minutes // 60} hours"
    return f"{minutes} minutes"


def _message(*, sender: str, to: str, subject: str, body: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = formatdate(usegmt=True)
    # Not `email.utils.make_msgid`, which draws from the `random` module's shared state.
    domain = parseaddr(sender)[1].rpartition("@")[2]
    message["Message-ID"] = f"<{secrets.token_hex(16)}@{domain}>"
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies, please
    message.set_content(body)
    return message


def reset_message(*, sender: str, to: str, store_name: str, link: str, ttl: int) -> EmailMessage:
    """A link to set a new password. Uses: the store's name, the link, its lifetime."""
    store = _printable(store_name)
    return _message(
        sender=sender,
        to=to,
        subject=f"Set a new password for {store}",
        body=(
            "Hello,\n\n"
            f"Someone, hopefully you, asked to set a new password for your account at {store}. "
            f"Follow this link to choose one; it works once, within {lifetime(ttl)}:\n\n"
            f"{link}\n\n"
            "If you did not ask, ignore this mail: your password stays as it is.\n"
        ),
    )


def verification_message(
    *, sender: str, to: str, store_name: str, link: str, ttl: int
) -> EmailMessage:
    """A link to confirm a sign-up's address. Uses: the store's name, the link, its lifetime."""
    store = _printable(store_name)
    return _message(
        sender=sender,
        to=to,
        subject=f"Confirm your email address for {store}",
        body=(
            "Hello,\n\n"
            f"An account at {store} was opened with this email address. If it was you, follow "
            f"this link and enter your password to confirm the address; it works once, within "
            f"{lifetime(ttl)}:\n\n"
            f"{link}\n\n"
            "If you did not open an account, ignore this mail: without its password, nobody can "
            "confirm this address with it.\n"
        ),
    )


def email_change_message(
    *, sender: str, to: str, store_name: str, link: str, ttl: int
) -> EmailMessage:
    """A link to move an account to this new address. Uses: the store's name, the link, its
    lifetime."""
    store = _printable(store_name)
    return _message(
        sender=sender,
        to=to,
        subject=f"Confirm your new email address for {store}",
        body=(
            "Hello,\n\n"
            f"Someone, hopefully you, asked to use this address for their account at {store}. "
            f"Follow this link to confirm it; it works once, within {lifetime(ttl)}:\n\n"
            f"{link}\n\n"
            "If you did not ask, ignore this mail: nothing changes without it.\n"
        ),
    )


def email_change_notice(*, sender: str, to: str, store_name: str) -> EmailMessage:
    """To the old address of an email change. Uses: the store's name."""
    store = _printable(store_name)
    return _message(
        sender=sender,
        to=to,
        subject=f"Your email address for {store} is about to change",
        body=(
            "Hello,\n\n"
            f"Someone signed in to your account at {store} with your password and asked to move "
            "it to another email address. The change takes effect once the new address is "
            "confirmed.\n\n"
            "If it was not you, reset your password now: that cancels the change, and signs "
            "out everyone using your account.\n"
        ),
    )
