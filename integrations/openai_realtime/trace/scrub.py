"""Remove secrets from Realtime events before they are written anywhere."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from typing import Any

__all__ = ["REDACTED", "scrub"]

REDACTED = "[redacted]"

# Field names compared lower-case with "-" and "_" removed, so "api_key", "API-Key" and
# "apiKey" are one name.
_SECRET_KEYS = frozenset(
    {
        "authorization",
        "proxyauthorization",
        "apikey",
        "xapikey",
        "openaiapikey",
        "clientsecret",
        "ephemeralkey",
        "accesstoken",
        "refreshtoken",
        "idtoken",
        "token",
        "secret",
        "password",
        "passwd",
        "pwd",
        "bearer",
        "cookie",
        "setcookie",
        "privatekey",
        "credentials",
    }
)
_SECRET_SUFFIXES = ("apikey", "secret", "token", "password", "passwd", "privatekey")
# Bearer tokens, HTTP Basic credentials, sk-... keys of any length and case, ek_... keys.
_SECRET_TEXT = re.compile(
    r"(?i:\b(bearer|basic)\s+)[A-Za-z0-9._~+/=-]+"
    r"|(?i:\bsk-)[A-Za-z0-9_-]+"
    r"|(?i:\bek_)[A-Za-z0-9_-]{8,}"
)
_MAX_SCRUB_DEPTH = 64


def _is_secret_key(key: str) -> bool:
    k = key.lower().replace("-", "").replace("_", "")
    return k in _SECRET_KEYS or k.endswith(_SECRET_SUFFIXES)


def scrub(value: Any, _depth: int = 0) -> Any:
    """Return a copy of ``value`` with secrets replaced by ``"[redacted]"``.

    Values under secret-looking keys (``authorization``, ``api_key``, ``apiKey``,
    ``token``, ``password``, ``secret``, ``client_secret``, ``*_token``, ...) are
    redacted whole. Inside any string, keys of objects included, these are
    redacted in place: bearer tokens, ``Basic <base64>`` credentials, ``sk-...``
    keys of any length and case (``SK-...`` too), and ``ek_...`` ephemeral keys.
    A key that held a secret becomes ``"[redacted]"`` (``"[redacted]#2"``, ... if
    several did). Nesting deeper than 64 levels is replaced too.

    Args:
        value: A JSON-like value.

    Returns:
        The scrubbed copy; the input is not modified.
    """
    if _depth > _MAX_SCRUB_DEPTH:
        return REDACTED
    if isinstance(value, str):
        return _scrub_text(value)
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for k, v in value.items():
            key = str(k)
            clean_key = _scrub_text(key)
            if clean_key != key:  # the key itself was a secret
                clean_key, n = REDACTED, 1
                while clean_key in out:
                    n += 1
                    clean_key = f"{REDACTED}#{n}"
            out[clean_key] = REDACTED if _is_secret_key(key) else scrub(v, _depth + 1)
        return out
    if isinstance(value, list | tuple):
        return [scrub(v, _depth + 1) for v in value]
    return value


def _scrub_text(text: str) -> str:
    return _SECRET_TEXT.sub(_redact_match, text) if _maybe_secret(text) else text


def _maybe_secret(text: str) -> bool:
    # Every pattern needs "-", "_" or white space; base64 audio (the bulk of a trace)
    # has none, so it is skipped after three memchr scans and an ASCII check.
    return "-" in text or "_" in text or " " in text or not text.isascii() or _has_ascii_space(text)


def _has_ascii_space(text: str) -> bool:
    return "\t" in text or "\n" in text or "\r" in text or "\f" in text or "\v" in text


def _redact_match(match: re.Match[str]) -> str:
    scheme = match.group(1)
    if scheme is None:
        return REDACTED
    if scheme.lower() == "basic" and not _is_basic_credentials(match.group(0)):
        return match.group(0)  # "basic idea": prose, not an Authorization header
    return f"{scheme.capitalize()} {REDACTED}"


def _is_basic_credentials(text: str) -> bool:
    token = text.split(None, 1)[1]
    try:
        decoded = base64.b64decode(token + "=" * (-len(token) % 4), validate=True)
    except (binascii.Error, ValueError):
        return False
    return b":" in decoded
