"""How deeply a JSON body nests, measured before any parser sees it.

`json.loads` recurses once per level: 2,000 `[` raise `RecursionError` (a 500 where the
contract promises a 400), and every level short of that costs the parser, and pydantic after
it, a frame. No body Keyhouse reads needs more than a few levels (a /v2 body is
`{"data": {"attributes": {...}}}`), so the token endpoint, revocation, introspection and every
/v2 route refuse a body nested deeper than `MAX_JSON_DEPTH` before parsing it.

The scan is linear and runs in C: one regex takes out the strings (where brackets are text), the
brackets left become +1 and -1, and the depth is the largest of their running sums.
"""

import json
import re
from array import array
from itertools import accumulate

# Twice what any body Keyhouse reads needs: room for clients that wrap, none for recursion.
MAX_JSON_DEPTH = 32

# A string, escapes included; an unterminated one runs to the end. Possessive and unrolled, so
# that no byte is looked at twice and a string that never ends is not tried again from inside.
_STRINGS = re.compile(rb'"[^"\\]*+(?:\\.[^"\\]*+)*+"?', re.DOTALL)
# `translate` keeps only the brackets, as signed bytes: an opening one +1, a closing one -1.
_SIGNS = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")
_NOT_BRACKETS = bytes(byte for byte in range(256) if byte not in b"[{]}")


def nests_deeper_than(body: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether the JSON text `body` opens more than `limit` arrays and objects inside each
    other. Malformed JSON is measured as far as it goes: the parser refuses it afterwards."""
    if body.count(b"[") + body.count(b"{") <= limit:
        return False  # nearly every body: too few brackets to nest that deeply anywhere
    outside_strings = _STRINGS.sub(b"", _as_utf8(body))
    signs = array("b", outside_strings.translate(_SIGNS, _NOT_BRACKETS))
    return max(accumulate(signs), default=0) > limit


def _as_utf8(body: bytes) -> bytes:
    """`body` in UTF-8, which the scan reads: `json.loads` also takes UTF-16 and UTF-32 bytes,
    where a byte of a character may look like a quote or a bracket."""
    encoding = json.detect_encoding(body)
    if encoding.startswith("utf-8"):
        return body
    try:
        return body.decode(encoding, "surrogatepass").encode("utf-8", "surrogatepass")
    except UnicodeError:
        return b""  # the parser cannot decode it either, and refuses it before any nesting
