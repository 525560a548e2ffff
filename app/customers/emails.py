"""Email addresses as Keyhouse accepts them: in request bodies, from login providers, and what
looks enough like one to be written to the audit trail as typed."""

import re
from typing import Annotated

from pydantic import AfterValidator, Field

# Whitespace as Python's `str.strip()` and `\s` know it, spelled out: ECMAScript's `\s`, which
# a client of the schema's pattern uses, differs (it leaves out U+0085 and takes U+FEFF).
SPACE = r"\t\n\v\f\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
# No control characters either: PostgreSQL refuses NUL in text, and no mail can be sent to them.
_EMAIL_CHAR = rf"[^@{SPACE}\x00-\x1f\x7f]"
# As the schema says it (ECMAScript has no possessive quantifiers):
EMAIL_SCHEMA_PATTERN = rf"{_EMAIL_CHAR}+@{_EMAIL_CHAR}+\.{_EMAIL_CHAR}+"
# The same language in linear time. Matched as above, a domain part of many dots that fails at
# its end is tried from every dot (6 s for 20,000 of them, in an ID token's email); the first
# dot after the domain's first character is enough (the atomic group keeps to it).
EMAIL_PATTERN = re.compile(rf"{_EMAIL_CHAR}++@(?>{_EMAIL_CHAR}{_EMAIL_CHAR}*?\.){_EMAIL_CHAR}++")
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
        json_schema_extra={"pattern": rf"^[{SPACE}]*{EMAIL_SCHEMA_PATTERN}[{SPACE}]*$"},
    ),
    AfterValidator(_checked_email),
]
