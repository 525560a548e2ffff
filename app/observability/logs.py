"""Server logs: one JSON object per line on stderr, every secret-shaped string redacted.

`logging_config()` builds the `logging.config.dictConfig` dict that `keyhouse serve` hands to
Uvicorn, which applies it in the serving process and again in each worker process, so Uvicorn's
own lines (startup, errors, the access log) and Keyhouse's share one format. Every line names
its process (`pid`) and, inside a request, the request's id (`request_id`).

Nothing secret is logged on purpose. `RedactSecrets`, on the handler, is the second line of
defence: it blanks whatever looks like a JWT, a `password=`/`client_secret=`-style pair, an
`Authorization` or customer-token header value, or a password in a URL, in the message, its
arguments, the `extra=` fields and the exception text. Every pattern runs in time linear in the
text (a request's path is the client's to choose, and every access line carries it), and each
argument or field is then cut to `LOGGED_CHARS` characters, marked as cut.
"""

import logging
import re
import sys
import time
from collections.abc import Callable
from typing import Any, Literal

import orjson

from app.http.request_id import current_request

# `auto`: text for a person at a terminal, JSON lines for a collector everywhere else.
LogFormat = Literal["auto", "json", "text"]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]

REDACTED = "[redacted]"
# A logged argument or field (a path, a header value) is cut past this many characters: a line
# stays readable, and a client cannot make every access line 8 KiB long.
LOGGED_CHARS = 1024

# A JWT: `eyJ` (base64url of `{"`), a segment, and two to four `.segment`s. The plain pattern
# `eyJ[A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]*){2,4}` is tried again from every `eyJ` of a run without
# dots, each try scanning the rest of the run: quadratic (21 s for a 63 KB path of `eyJ`).
# `_JWT_RUN` tries each maximal run of base64url and dots once, from its start (the lookbehind),
# and only its first `eyJ` (the atomic group): if that one has fewer than two dots after it in
# the run, so has every later one. The runs it finds are then redacted by `_redact_jwts`.
_JWT_RUN = re.compile(
    r"(?<![A-Za-z0-9_.-])(?>[A-Za-z0-9_.-]*?eyJ)[A-Za-z0-9_-]*+\.[A-Za-z0-9_-]*+\.[A-Za-z0-9_.-]*+"
)
_JWT_TAIL = re.compile(r"[A-Za-z0-9_-]*+(?:\.[A-Za-z0-9_-]*+){0,4}")
# `name=value`, `name: value`, `"name": "value"`, `(b'name', b'value')`, where the name ends in
# secret, password, token, … (client_secret, access_token, X-Moltin-Customer-Token, …). An
# unquoted value runs to the next delimiter, spaces included: passwords may hold spaces, and
# `Authorization: Bearer …` is one value. Matched against lower-cased text: a case-insensitive
# alternation is several times slower, and the access log runs this on every request.
_NAMED = re.compile("secret|passw|pwd|token|authorization|api|credential")
_PAIR = re.compile(
    r"""(?x)
    (?:secret|passw(?:or)?d|pwd|token|authorization|api[_-]?key|credentials?)
    (?: ["']?[ \t]*[:=][ \t]* | ["'][ \t]*,[ \t]* )
    (?!\[redacted\])
    ( b?"(?:[^"\\]|\\.)*+" | b?'(?:[^'\\]|\\.)*+' | [^&"',;)}\]\s][^&"',;)}\]\r\n]* )
    """
)
# Possessive (`*+`, `++`) wherever a failed match would otherwise give characters back one by one.
_URL_PASSWORD = re.compile(r"(://[^/\s:@]++:)[^/\s@]++@")
# A provider sign-in's callback (app/customers/oidc) has the provider's code and the sign-in's
# state in its query string, and access lines print paths with their query.
_QUERY_CODE = re.compile(r"([?&](?:code|state)=)(?!\[redacted\])[^&\s\"']+")


def redact(text: str) -> str:
    """`text` with every secret-shaped part replaced by `[redacted]`."""
    # Pairs first: a value may hold a JWT, and should go as a whole.
    lowered = text.lower()
    if _NAMED.search(lowered):
        text = _redact_pairs(text, lowered)
    if "://" in text:
        text = _URL_PASSWORD.sub(rf"\1{REDACTED}@", text)
    if "eyJ" in text:
        text = _JWT_RUN.sub(_redact_jwts, text)
    if "code=" in text or "state=" in text:
        text = _QUERY_CODE.sub(_redact_after_name, text)
    return text


def _redact_pairs(text: str, lowered: str) -> str:
    if len(lowered) != len(text):  # lower-casing changed some length: no spans to share
        return re.sub(_PAIR.pattern, _redact_value_of, text, flags=re.IGNORECASE)
    parts: list[str] = []
    done = 0
    for match in _PAIR.finditer(lowered):
        parts += (text[done : match.start(1)], REDACTED)
        done = match.end(1)
    return "".join([*parts, text[done:]]) if parts else text


def _redact_jwts(run: re.Match[str]) -> str:
    """The run with every JWT in it redacted, as the plain pattern would: from each `eyJ`, up to
    four `.segment`s if there are at least two; the search goes on after what it consumed."""
    text = run[0]
    start = text.find("eyJ")
    if text.count(".", start) <= 4:  # one token to the end of the run, as nearly always
        return text[:start] + REDACTED
    parts: list[str] = []
    done = 0
    while start != -1:
        tail = _JWT_TAIL.match(text, start + 3)
        end = tail.end() if tail else start + 3  # it always matches, if only the empty string
        if text.count(".", start, end) >= 2:
            parts += (text[done:start], REDACTED)
            done = end
        start = text.find("eyJ", end)
    return "".join([*parts, text[done:]])


def _cut(text: str, limit: int = LOGGED_CHARS) -> str:
    """`text`, or its first `limit` characters and how many more there were."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}…[cut {len(text) - limit} characters]"


def _redact_after_name(match: re.Match[str]) -> str:
    # A function rather than the template rf"\1{REDACTED}", which costs several times as much.
    return match[1] + REDACTED


def _redact_value_of(match: re.Match[str]) -> str:
    return match[0][: match.start(1) - match.start(0)] + REDACTED


def _each_string(value: Any, change: Callable[[str], str]) -> Any:
    """`value` with `change` applied to every string in it, in containers too."""
    if isinstance(value, str):
        return change(value)
    if isinstance(value, dict):
        return {key: _each_string(item, change) for key, item in value.items()}
    if isinstance(value, list):
        return [_each_string(item, change) for item in value]
    if isinstance(value, tuple):
        return tuple(_each_string(item, change) for item in value)
    return value


def _redact_value(value: Any) -> Any:
    return _each_string(value, redact)


# Attributes every LogRecord has; anything else on a record came from a caller's `extra=`.
STANDARD_ATTRIBUTES = frozenset(
    [*vars(logging.LogRecord("", 0, "", 0, "", (), None)), "message", "asctime", "taskName"]
)
# Uvicorn passes its message again with ANSI colours; the plain one is enough.
_IGNORED_EXTRAS = frozenset(["color_message"])


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    fields = vars(record)
    return {key: fields[key] for key in fields.keys() - STANDARD_ATTRIBUTES - _IGNORED_EXTRAS}


class RedactSecrets(logging.Filter):
    """Blanks secret-shaped text in a record before any formatter sees it."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            _redact_record(record)
        except Exception:
            # Never let a record through unredacted, and never raise into the caller.
            for key in _extras(record):
                delattr(record, key)
            record.msg, record.args = "a log record could not be redacted and was withheld", None
            record.exc_info = record.exc_text = record.stack_info = None
        return True


def _redact_record(record: logging.LogRecord) -> None:
    fits = True
    try:
        message = record.getMessage()
    except (TypeError, ValueError):
        fits, message = False, f"{record.msg!r} with arguments that do not fit: {record.args!r}"
    redacted = redact(message)
    if redacted != message or not fits:
        # Arguments one by one, so that Uvicorn's access-log arguments stay usable as fields;
        # the whole message if that is not enough (a secret may straddle format and arguments).
        args = _redact_value(record.args)
        if not (fits and isinstance(args, tuple | dict) and _is_clean(record.msg, args)):
            record.msg, args = redacted, None
        record.args = args
    # Cut only once redacted: a cut could leave a secret's start that no pattern knows.
    if record.args:
        record.args = _each_string(record.args, _cut)
    elif isinstance(record.msg, str):
        record.msg = _cut(record.msg)
    for key, value in _extras(record).items():
        setattr(record, key, _each_string(_redact_value(value), _cut))
    if record.exc_info and not record.exc_text:
        record.exc_text = logging.Formatter().formatException(record.exc_info)
    if record.exc_text:
        record.exc_text = redact(record.exc_text)
    if record.stack_info:
        record.stack_info = redact(record.stack_info)


def _is_clean(msg: object, args: tuple[Any, ...] | dict[str, Any]) -> bool:
    try:
        message = str(msg) % args
    except (TypeError, ValueError):
        return False
    return redact(message) == message


_second: tuple[int, str] = (-1, "")


def _timestamp(record: logging.LogRecord) -> str:
    """UTC, ISO 8601, to the millisecond; the part up to the second is made once a second."""
    global _second
    second = int(record.created)
    if second != _second[0]:
        _second = (second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)))
    return f"{_second[1]}.{int(record.msecs):03d}Z"


def _access_fields(
    record: logging.LogRecord, request: tuple[bytes, float] | None
) -> dict[str, Any]:
    """Uvicorn's access line as fields: its arguments are address, method, path, version, status."""
    if not (isinstance(record.args, tuple) and len(record.args) == 5):
        return {}
    client, method, path, http_version, status = record.args
    fields = {"client": client, "method": method, "path": path, "status": status}
    fields["http_version"] = http_version
    if request is not None:
        # Uvicorn logs the line as the response starts: time to the status line, in ms.
        fields["duration_ms"] = round((record.created - request[1]) * 1000, 3)
    return fields


def _fields(formatter: logging.Formatter, record: logging.LogRecord) -> dict[str, Any]:
    request = current_request.get()
    fields: dict[str, Any] = {
        "timestamp": _timestamp(record),
        "level": record.levelname,
        "logger": record.name,
        "message": record.getMessage(),
    }
    if request is not None:
        fields["request_id"] = request[0].decode()
    fields["pid"] = record.process
    if record.name == "uvicorn.access":
        fields.update(_access_fields(record, request))
    if record.exc_info and not record.exc_text:
        record.exc_text = formatter.formatException(record.exc_info)
    if record.exc_text:
        fields["exception"] = record.exc_text
    if record.stack_info:
        fields["stack"] = formatter.formatStack(record.stack_info)
    for key, value in _extras(record).items():
        fields.setdefault(key, value)
    return fields


def _plain(value: Any) -> Any:
    if isinstance(value, str | float | bool | None) or (isinstance(value, int) and value < 2**63):
        return value
    return repr(value)


def _json(value: Any) -> str:
    try:
        return orjson.dumps(value, default=repr, option=orjson.OPT_NON_STR_KEYS).decode()
    except TypeError:  # orjson.JSONEncodeError, e.g. an integer wider than 64 bits
        return orjson.dumps(repr(value)).decode()


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line: JSON escaping keeps user input inert."""

    def format(self, record: logging.LogRecord) -> str:
        fields = _fields(self, record)
        try:
            return orjson.dumps(fields, default=repr, option=orjson.OPT_NON_STR_KEYS).decode()
        except TypeError:  # orjson.JSONEncodeError, e.g. an integer wider than 64 bits
            return orjson.dumps({key: _plain(value) for key, value in fields.items()}).decode()


# Control characters (a newline in a requested path, say) would forge or garble lines.
_CONTROL = {code: f"\\x{code:02x}" for code in [*range(0x20), 0x7F]} | {
    ord("\n"): "\\n",
    ord("\r"): "\\r",
    ord("\t"): "\\t",
}
_SHOWN_APART = frozenset(
    ["timestamp", "level", "logger", "message", "request_id", "exception", "stack"]
)


class TextFormatter(logging.Formatter):
    """For people at a terminal: `time level logger [request id] message key=value …`."""

    def format(self, record: logging.LogRecord) -> str:
        fields = _fields(self, record)
        request_id = fields.get("request_id")
        parts = [fields["timestamp"], f"{fields['level']:<7}", fields["logger"]]
        if request_id:
            parts.append(f"[{request_id}]")
        parts.append(fields["message"].translate(_CONTROL))
        parts.extend(
            f"{key}={_json(value)}" for key, value in fields.items() if key not in _SHOWN_APART
        )
        line = " ".join(parts)
        for block in (fields.get("exception"), fields.get("stack")):
            if block:
                line += "\n" + block
        return line


def resolved_format(log_format: LogFormat) -> Literal["json", "text"]:
    """`auto` is `text` when stderr, where the lines go, is a terminal, else `json`."""
    if log_format == "auto":
        return "text" if sys.stderr.isatty() else "json"
    return log_format


def logging_config(*, level: LogLevel = "INFO", log_format: LogFormat = "auto") -> dict[str, Any]:
    """The `dictConfig` for the server: Keyhouse's and Uvicorn's loggers at `level`, others
    at WARNING or above (database drivers log statements and parameters at INFO and DEBUG)."""
    formatter = {
        "json": "app.observability.logs.JsonFormatter",
        "text": "app.observability.logs.TextFormatter",
    }[resolved_format(log_format)]
    ours: dict[str, Any] = {"level": level, "handlers": [], "propagate": True}
    return {
        "version": 1,
        # Loggers that modules made at import time (keyhouse.audit, …) must keep working.
        "disable_existing_loggers": False,
        "filters": {"redact": {"()": "app.observability.logs.RedactSecrets"}},
        "formatters": {"default": {"()": formatter}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": "default",
                "filters": ["redact"],
            }
        },
        "loggers": {
            name: dict(ours)
            for name in ("keyhouse", "app", "alembic", "uvicorn", "uvicorn.error", "uvicorn.access")
        },
        "root": {"level": max(level, "WARNING", key=logging.getLevelName), "handlers": ["stderr"]},
    }
