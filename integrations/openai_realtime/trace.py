"""Realtime session traces: a JSON Lines format, a recorder, and a bounded reader.

One event per line::

    {"t": 0.0123, "from": "client", "event": {"type": "response.create", ...}}

``t`` is seconds (float, monotonic) since the trace started, ``from`` is
``"client"`` (as sent) or ``"server"`` (as received), ``event`` is the raw
Realtime event with a string ``type``. Lines are in time order.

The recorder scrubs secrets (API keys, auth headers, bearer tokens, ephemeral
client secrets) before anything reaches the file, and by default leaves out the
user's microphone audio (``input_audio_buffer.append``), which replay never needs.
The reader bounds every line, so a hostile trace gives a :class:`TraceError`
with its line number, never an out-of-memory.
"""

from __future__ import annotations

import json
import logging
import math
import re
import threading
import time
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Protocol

from integrations.openai_realtime.events import Direction

__all__ = [
    "DEFAULT_LIMITS",
    "REDACTED",
    "TraceEntry",
    "TraceError",
    "TraceLimits",
    "TraceRecorder",
    "iter_trace",
    "parse_line",
    "read_trace",
    "scrub",
]

logger = logging.getLogger("playback_gate.trace")

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


class TraceError(ValueError):
    """A trace that cannot be read; names the line.

    Args:
        line: 1-based line number, or ``None`` for the file as a whole.
        message: What is wrong.
    """

    def __init__(self, line: int | None, message: str) -> None:
        super().__init__(f"line {line}: {message}" if line is not None else message)
        self.line = line
        self.message = message


@dataclass(frozen=True, slots=True)
class TraceLimits:
    """Bounds the reader enforces.

    Attributes:
        max_line_bytes: Longest line (8 MiB: about 2 minutes of 24 kHz PCM16
            in one base64 delta).
        max_depth: Deepest nesting of objects and arrays in one event.
    """

    max_line_bytes: int = 8 << 20
    max_depth: int = 32


DEFAULT_LIMITS = TraceLimits()


@dataclass(frozen=True, slots=True)
class TraceEntry:
    """One trace line.

    Attributes:
        t: Seconds since the trace started.
        direction: ``"client"`` or ``"server"``.
        event: The raw event.
        line: 1-based line number in the file (0 if not from a file).
    """

    t: float
    direction: Direction
    event: dict[str, Any]
    line: int = 0


def _depth_exceeds(value: Any, limit: int) -> bool:
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        if isinstance(node, dict):
            stack.extend((v, depth + 1) for v in node.values() if isinstance(v, dict | list))
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node if isinstance(v, dict | list))
    return False


def parse_line(raw: bytes, line: int, limits: TraceLimits = DEFAULT_LIMITS) -> TraceEntry | None:
    """Parse one trace line.

    Args:
        raw: The line's bytes, with or without its newline.
        line: Its 1-based number, for errors.
        limits: Bounds to enforce.

    Returns:
        The entry, or ``None`` for a blank line.

    Raises:
        TraceError: If the line is too long, not UTF-8, not JSON, too deep, or
            not a valid entry (``t``, ``from``, ``event`` with a ``type``).
    """
    if len(raw) > limits.max_line_bytes + 2:
        raise TraceError(line, f"line is longer than {limits.max_line_bytes} bytes")
    try:
        text = raw.decode("utf-8").strip()
    except UnicodeDecodeError as e:
        raise TraceError(line, f"not UTF-8 ({e.reason} at byte {e.start})") from None
    if not text:
        return None
    try:
        obj = json.loads(text)
    except RecursionError:
        raise TraceError(line, f"nested deeper than {limits.max_depth} levels") from None
    except ValueError as e:
        raise TraceError(line, f"invalid JSON ({e})") from None
    if _depth_exceeds(obj, limits.max_depth):
        raise TraceError(line, f"nested deeper than {limits.max_depth} levels")
    if not isinstance(obj, dict):
        raise TraceError(line, f"expected a JSON object, got {type(obj).__name__}")
    t = obj.get("t")
    if isinstance(t, bool) or not isinstance(t, int | float) or not math.isfinite(t) or t < 0:
        raise TraceError(line, f"'t' must be a finite number of seconds >= 0, got {t!r}")
    direction = obj.get("from")
    if direction not in ("client", "server"):
        raise TraceError(line, f'\'from\' must be "client" or "server", got {direction!r}')
    event = obj.get("event")
    if not isinstance(event, dict):
        raise TraceError(line, "'event' must be a JSON object")
    kind = event.get("type")
    if not isinstance(kind, str) or not kind:
        raise TraceError(line, "event has no 'type'")
    return TraceEntry(float(t), "client" if direction == "client" else "server", event, line)


def iter_trace(stream: IO[bytes], limits: TraceLimits = DEFAULT_LIMITS) -> Iterator[TraceEntry]:
    """Yield the entries of a trace stream, one line at a time.

    Memory is bounded by ``limits.max_line_bytes``: a longer line is never
    read whole.

    Args:
        stream: A binary stream.
        limits: Bounds to enforce.

    Yields:
        Each entry, in file order.

    Raises:
        TraceError: On the first bad line, or if ``t`` goes back in time.
    """
    last_t = 0.0
    line = 0
    while True:
        raw = stream.readline(limits.max_line_bytes + 2)
        if not raw:
            return
        line += 1
        if len(raw) > limits.max_line_bytes + 1 or (
            len(raw) > limits.max_line_bytes and not raw.endswith(b"\n")
        ):
            raise TraceError(line, f"line is longer than {limits.max_line_bytes} bytes")
        entry = parse_line(raw, line, limits)
        if entry is None:
            continue
        if entry.t < last_t:
            raise TraceError(line, f"'t' goes back in time ({entry.t} after {last_t})")
        last_t = entry.t
        yield entry


def read_trace(path: str | Path, limits: TraceLimits = DEFAULT_LIMITS) -> list[TraceEntry]:
    """Read a whole trace file.

    Args:
        path: The ``.jsonl`` file.
        limits: Bounds to enforce.

    Returns:
        Every entry.

    Raises:
        TraceError: On the first bad line.
        OSError: If the file cannot be read.
    """
    with open(path, "rb") as f:
        return list(iter_trace(f, limits))


class _EventSource(Protocol):
    def on(self, event: str, callback: Callable[[Any], object]) -> Any: ...

    def off(self, event: str, callback: Callable[[Any], object]) -> Any: ...


class TraceRecorder:
    """Writes a trace from a LiveKit ``RealtimeSession`` or any raw client loop.

    Example::

        with TraceRecorder("session.jsonl") as rec:
            rec.attach(session)          # livekit-plugins-openai 1.8.9 RealtimeSession
            ...                          # or: rec.record_client(ev); rec.record_server(ev)

    Thread-safe; each line is written whole.

    Args:
        out: A path (opened for writing, truncated) or a text stream (not closed).
        clock: Seconds, monotonic; the trace's ``t = 0`` is construction time.
        exclude_types: Event types left out; the microphone audio by default.
    """

    def __init__(
        self,
        out: str | Path | IO[str],
        *,
        clock: Callable[[], float] = time.monotonic,
        exclude_types: Collection[str] = ("input_audio_buffer.append",),
    ) -> None:
        if isinstance(out, str | Path):
            self._stream: IO[str] = open(out, "w", encoding="utf-8")  # noqa: SIM115
            self._owns = True
        else:
            self._stream, self._owns = out, False
        self._clock = clock
        self._t0 = clock()
        self._exclude = frozenset(exclude_types)
        self._lock = threading.Lock()
        self._attached: list[tuple[_EventSource, str, Callable[[Any], object]]] = []
        self.written = 0
        """Lines written."""
        self.skipped = 0
        """Events left out: excluded types, non-objects, no ``type``, unserialisable."""

    def record(self, direction: Direction, event: Mapping[str, Any]) -> bool:
        """Append one event. Never raises (a failure is logged and counted).

        Args:
            direction: ``"client"`` (as sent) or ``"server"`` (as received).
            event: The raw event.

        Returns:
            Whether a line was written.
        """
        t = self._clock() - self._t0
        try:
            if not isinstance(event, Mapping) or not isinstance(event.get("type"), str):
                raise TypeError("event is not an object with a string 'type'")
            if event["type"] in self._exclude:
                self.skipped += 1
                return False
            line = json.dumps(
                {"t": round(max(t, 0.0), 6), "from": direction, "event": scrub(event)},
                separators=(",", ":"),
                ensure_ascii=False,
                allow_nan=False,
                default=_json_default,
            )
            with self._lock:
                if self._stream.closed:
                    raise ValueError("recorder is closed")
                self._stream.write(line + "\n")
                self.written += 1
            return True
        except Exception as e:
            self.skipped += 1
            logger.warning("trace: skipped a %s event (%s)", direction, e)
            return False

    def record_client(self, event: Mapping[str, Any]) -> bool:
        """Record a client event as sent. See :meth:`record`."""
        return self.record("client", event)

    def record_server(self, event: Mapping[str, Any]) -> bool:
        """Record a server event as received. See :meth:`record`."""
        return self.record("server", event)

    def attach(self, session: _EventSource) -> None:
        """Record a LiveKit Agents OpenAI ``RealtimeSession`` through its public events.

        Subscribes to ``openai_client_event_queued`` and ``openai_server_event_received``.

        Args:
            session: The session (``RealtimeModel.session()``).
        """
        for name, callback in (
            ("openai_client_event_queued", self.record_client),
            ("openai_server_event_received", self.record_server),
        ):
            session.on(name, callback)
            self._attached.append((session, name, callback))

    def detach(self) -> None:
        """Unsubscribe from every attached session."""
        for session, name, callback in self._attached:
            try:
                session.off(name, callback)
            except Exception:
                logger.debug("trace: could not detach from %r", session, exc_info=True)
        self._attached.clear()

    def flush(self) -> None:
        """Flush the stream."""
        with self._lock:
            if not self._stream.closed:
                self._stream.flush()

    def close(self) -> None:
        """Detach, flush, and close the file if the recorder opened it."""
        self.detach()
        with self._lock:
            if self._stream.closed:
                return
            self._stream.flush()
            if self._owns:
                self._stream.close()

    def __enter__(self) -> TraceRecorder:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _json_default(value: object) -> Any:
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return scrub(dump(by_alias=True, exclude_unset=True))
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")
