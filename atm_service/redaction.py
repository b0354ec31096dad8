"""Masking secrets out of text and structured values before they reach a log.

What is masked, wherever it appears in a message, an extra field or a traceback:

- the value after a secret's name: ``password=...``, ``"pin": "..."``, ``otc: ...``,
  ``token``, ``secret``, ``key``, ``signature``, ``seal``, ``csrf``, ``cookie`` and
  ``authorization`` (HTTP headers included), in ``name=value``, ``name: value`` and
  JSON forms;
- ``Bearer``/``Basic`` credentials, PEM private keys, lock master keys
  (``atm-lock-master-key:v1:...``) and Argon2 password hashes;
- card numbers: every run of 13 to 19 digits (spaces or dashes between groups
  allowed) keeps at most its first 6 and last 4 digits, the rest becomes ``*``.

Structured values (the ``extra`` fields of a log record) are masked by name as
well: a field called ``password``, ``pin``, ``otc``, ``code``, ``token``,
``csrf_token``, ``master_key``, ``cookie``... is replaced whole.

Masking errs on the side of hiding: a 13-digit number that is not a card (a
millisecond timestamp) loses its middle digits too.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

MASK = "[redacted]"

# Names whose value is secret (compared lower-case, with "-" read as "_").
_SECRET_NAMES = frozenset(
    {
        "password",
        "passwd",
        "new_password",
        "old_password",
        "pin",
        "pin_block",
        "otc",
        "one_time_code",
        "code",
        "seal",
        "secret",
        "token",
        "key",
        "signature",
        "authorization",
        "proxy_authorization",
        "cookie",
        "set_cookie",
        "csrf",
        "session",
    }
)
_SECRET_SUFFIXES = (
    "_password",
    "_secret",
    "_token",
    "_key",
    "_signature",
    "_pin",
    "_otc",
    "_csrf",
    "_session",
)
# Names that end like a secret but are identifiers, safe to show.
_PUBLIC_NAMES = frozenset({"key_id", "device_key", "idempotency_key", "public_key"})
# Identifiers logged as they are: random hex, whose digit runs are no card numbers.
_VERBATIM = frozenset({"request_id", "reference", "key_id", "master_key_id"})


def is_secret_name(name: str) -> bool:
    """Whether a field called ``name`` holds a secret."""
    normal = name.strip().lower().replace("-", "_")
    if normal in _PUBLIC_NAMES:
        return False
    if normal in _SECRET_NAMES:
        return True
    return normal.endswith(_SECRET_SUFFIXES)


_NAME_WORDS = (
    r"(?:[a-z0-9]+[_-])*(?:password|passwd|pin|pin[_-]block|otc|one[_-]time[_-]code|seal|"
    r"secret|token|csrf[_-]token|signature|authorization|cookie|set[_-]cookie|"
    r"master[_-]key|private[_-]key|signing[_-]key|api[_-]key|lock[_-]key|key)"
)
# name=value, name: value, "name": "value", 'name': 'value' (value up to a delimiter).
_NAMED_VALUE = re.compile(
    r"(?P<name>[\"']?\b" + _NAME_WORDS + r"[\"']?)(?P<sep>\s*[=:]\s*)"
    r"(?!\[redacted\])(?P<value>\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*'|"
    r"(?:(?:Bearer|Basic|Digest)\s+)?[^\s,;&)}\]]+)",
    re.IGNORECASE,
)
# A Cookie or Set-Cookie header: every cookie in it, to the end of the line.
_COOKIE_HEADER = re.compile(
    r"(?P<name>\b(?:set-cookie|cookie)[\"']?)(?P<sep>\s*[=:]\s*)(?P<value>[^\"'\r\n]*)",
    re.IGNORECASE,
)
_CREDENTIALS = re.compile(r"\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]+", re.IGNORECASE)
_PEM = re.compile(
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(?:-----END [A-Z ]*PRIVATE KEY-----|\Z)", re.DOTALL
)
_MASTER_KEY = re.compile(r"atm-lock-master-key:v1:[A-Za-z0-9+/=]*")
_PASSWORD_HASH = re.compile(r"\$argon2(?:id|i|d)\$[A-Za-z0-9$=,+/.-]*")
# 13-19 digits in a row, or a card number written in groups (4-4-4-4[-3], Amex's 4-6-5),
# not inside a longer number.
_PAN = re.compile(
    r"(?<![0-9])(?:[0-9]{13,19}|[0-9]{4}([ -])[0-9]{4}\1[0-9]{4}\1[0-9]{1,7}"
    r"|[0-9]{4}([ -])[0-9]{6}\2[0-9]{5})(?![0-9])"
)


def mask_pan(text: str) -> str:
    """A card number with only its first 6 and last 4 digits left."""
    digits = re.sub(r"[^0-9]", "", text)
    return digits[:6] + "*" * (len(digits) - 10) + digits[-4:]


def _named(match: re.Match[str]) -> str:
    name = match.group("name").strip("\"'")
    if name.lower().replace("-", "_") in _PUBLIC_NAMES:
        return match.group(0)
    value = match.group("value")
    quote = value[0] if value[:1] in {'"', "'"} else ""
    # "Authorization: Bearer abc" keeps the scheme's name, never the credential.
    return f"{match.group('name')}{match.group('sep')}{quote}{MASK}{quote}"


def redact_text(text: str) -> str:
    """``text`` with every secret this module knows masked."""
    if not text:
        return text
    text = _PEM.sub(MASK, text)
    text = _MASTER_KEY.sub(MASK, text)
    text = _PASSWORD_HASH.sub(MASK, text)
    text = _COOKIE_HEADER.sub(lambda m: f"{m.group('name')}{m.group('sep')}{MASK}", text)
    text = _NAMED_VALUE.sub(_named, text)
    text = _CREDENTIALS.sub(lambda m: f"{m.group(1)} {MASK}", text)
    return _PAN.sub(lambda m: mask_pan(m.group(0)), text)


def redact_value(name: str, value: Any) -> Any:
    """A structured value fit to log under ``name``."""
    if name in _VERBATIM and isinstance(value, str):
        return value
    if is_secret_name(name) and value is not None:
        return MASK
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, bytes | bytearray):
        return redact_text(bytes(value).decode("utf-8", "replace"))
    if isinstance(value, Mapping):
        return {str(k): redact_value(str(k), v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [redact_value(name, item) for item in value]
    if isinstance(value, int) and not isinstance(value, bool) and len(str(abs(value))) >= 13:
        return redact_text(str(value))
    return value
