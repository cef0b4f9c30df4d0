"""Remove secrets from Realtime events before they are written anywhere."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

__all__ = ["REDACTED", "scrub"]

REDACTED = "[redacted]"

_SECRET_KEYS = frozenset(
    {
        "authorization",
        "proxy_authorization",
        "api_key",
        "apikey",
        "x_api_key",
        "openai_api_key",
        "client_secret",
        "ephemeral_key",
        "access_token",
        "refresh_token",
        "id_token",
        "secret",
        "password",
        "bearer",
        "cookie",
        "set_cookie",
    }
)
_SECRET_TEXT = re.compile(
    r"(?i:\bbearer\s+)[A-Za-z0-9._~+/=-]+|\bsk-[A-Za-z0-9_-]{8,}|\bek_[A-Za-z0-9_-]{8,}"
)
_MAX_SCRUB_DEPTH = 64


def _is_secret_key(key: str) -> bool:
    k = key.lower().replace("-", "_")
    return k in _SECRET_KEYS or k.endswith(("_api_key", "_secret", "_token"))


def scrub(value: Any, _depth: int = 0) -> Any:
    """Return a copy of ``value`` with secrets replaced by ``"[redacted]"``.

    Values under secret-looking keys (``authorization``, ``api_key``,
    ``client_secret``, ``*_token``, ...) are redacted whole; bearer tokens,
    ``sk-...`` keys and ``ek_...`` ephemeral keys inside any string are redacted
    in place. Nesting deeper than 64 levels is replaced too.

    Args:
        value: A JSON-like value.

    Returns:
        The scrubbed copy; the input is not modified.
    """
    if _depth > _MAX_SCRUB_DEPTH:
        return REDACTED
    if isinstance(value, str):
        return _SECRET_TEXT.sub(_redact_match, value) if _maybe_secret(value) else value
    if isinstance(value, Mapping):
        return {
            str(k): REDACTED if _is_secret_key(str(k)) else scrub(v, _depth + 1)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [scrub(v, _depth + 1) for v in value]
    return value


def _maybe_secret(text: str) -> bool:
    return "sk-" in text or "ek_" in text or "earer" in text or "EARER" in text


def _redact_match(match: re.Match[str]) -> str:
    text = match.group(0)
    return "Bearer " + REDACTED if text[:6].lower() == "bearer" else REDACTED
