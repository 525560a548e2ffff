"""Email addresses as Keyhouse accepts them: in request bodies, from login providers, and what
looks enough like one to be written to the audit trail as typed."""

import re
from typing import Annotated

from pydantic import AfterValidator, Field

# No control characters either: PostgreSQL refuses NUL in text, and no mail can be sent to them.
EMAIL_PATTERN = re.compile(r"[^@\s\x00-\x1f\x7f]+@[^@\s\x00-\x1f\x7f]+\.[^@\s\x00-\x1f\x7f]+")
MAX_EMAIL_LENGTH = 254


def is_email(value: str) -> bool:
    """Whether `value` has the shape of an email address (not whether anyone has it)."""
    return len(value) <= MAX_EMAIL_LENGTH and EMAIL_PATTERN.fullmatch(value) is not None


def _checked_email(value: str) -> str:
    value = value.strip()
    if not EMAIL_PATTERN.fullmatch(value):
        raise ValueError("not an email address")
    return value


# An email address in a request body, at most 254 characters, trimmed; anything else is a 400
# naming the field. The schema shows the same rule (`_checked_email` keeps its own message).
Email = Annotated[
    str,
    Field(
        max_length=MAX_EMAIL_LENGTH,
        json_schema_extra={"pattern": rf"^\s*{EMAIL_PATTERN.pattern}\s*$"},
    ),
    AfterValidator(_checked_email),
]
