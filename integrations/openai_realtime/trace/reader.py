"""Realtime session traces: a JSON Lines format, a recorder, and a bounded reader.

One event per line::

    {"t": 0.0123, "from": "client", "event": {"type": "response.create", ...}}

``t`` is seconds (float, monotonic) since the trace started, ``from`` is
``"client"`` (as sent) or ``"server"`` (as received), ``event`` is the raw
Realtime event with a string ``type``. Lines are in time order.

:class:`~integrations.openai_realtime.trace.recorder.TraceRecorder` writes
traces with secrets scrubbed. The reader bounds every line, so a hostile trace
gives a :class:`TraceError` with its line number, never an out-of-memory.
"""

from __future__ import annotations

import json
import math
import re
import reprlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from gate import ConfigurationError, GateError
from integrations.openai_realtime._events import Direction

__all__ = [
    "DEFAULT_LIMITS",
    "MAX_LINE_BYTES",
    "TraceEntry",
    "TraceError",
    "TraceLimits",
    "iter_trace",
    "parse_line",
    "read_trace",
]


class TraceError(GateError, ValueError):
    """A trace that cannot be read; names the line.

    Args:
        line: 1-based line number, or ``None`` for the file as a whole.
        message: What is wrong.
    """

    def __init__(self, line: int | None, message: str) -> None:
        super().__init__(f"line {line}: {message}" if line is not None else message)
        self.line = line
        self.message = message


MAX_LINE_BYTES = 1 << 30
"""The most ``TraceLimits.max_line_bytes`` may be (1 GiB): a line is read whole into memory."""


@dataclass(frozen=True, slots=True)
class TraceLimits:
    """Bounds the reader enforces.

    Attributes:
        max_line_bytes: Longest line (8 MiB: about 2 minutes of 24 kHz PCM16
            in one base64 delta).
        max_depth: Deepest nesting of objects and arrays in one event.
        max_containers: Most ``{`` and ``[`` bytes in one line, counted before
            parsing (an upper bound on its objects and arrays; base64 audio has
            none). Caps what one line can expand to in memory.
        max_duration_s: Latest ``t`` a replay accepts, and the longest output it
            writes (4 hours: 691 MB of WAV at 24 kHz). Checked before any
            silence is generated, so a gap in ``t`` never runs away.
    """

    max_line_bytes: int = 8 << 20
    max_depth: int = 32
    max_containers: int = 100_000
    max_duration_s: float = 4 * 3600.0

    def __post_init__(self) -> None:
        if not 1 <= self.max_line_bytes <= MAX_LINE_BYTES:
            raise ConfigurationError(
                f"max_line_bytes must be in 1..{MAX_LINE_BYTES}, got {self.max_line_bytes}"
            )


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


# A \uD800-\uDFFF escape: the only way JSON text can hold a surrogate. A pair is
# fine (json joins it into one character); a lone one can't be encoded as UTF-8.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


def _lone_surrogate(value: Any) -> str | None:
    """Return (the repr of, cut short) the first string in ``value`` that is not valid text."""
    stack = [value]
    while stack:
        node = stack.pop()
        strings: list[Any] = []
        if isinstance(node, str):
            strings = [node]
        elif isinstance(node, dict):
            strings = list(node)
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
        for text in strings:
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:
                return reprlib.repr(text)
    return None


def _seconds(t: object, line: int) -> float:
    """Return ``t`` as finite seconds ``>= 0``, or raise naming the line."""
    if isinstance(t, int | float) and not isinstance(t, bool):
        try:
            value = float(t)  # an int of 400 digits overflows here
        except OverflowError:
            value = math.inf
        if math.isfinite(value) and value >= 0:
            return value
    raise TraceError(line, f"'t' must be a finite number of seconds >= 0, got {reprlib.repr(t)}")


def parse_line(raw: bytes, line: int, limits: TraceLimits = DEFAULT_LIMITS) -> TraceEntry | None:
    """Parse one trace line.

    Args:
        raw: The line's bytes, with or without its newline.
        line: Its 1-based number, for errors.
        limits: Bounds to enforce.

    Returns:
        The entry, or ``None`` for a blank line.

    Raises:
        TraceError: If the line is too long, not UTF-8, holds too many objects
            and arrays, is not JSON, is too deep, holds a string with a lone
            surrogate (it could not be printed or written as UTF-8), or is not a
            valid entry (``t`` a finite number >= 0, ``from``, ``event`` with a
            ``type``).
    """
    if len(raw) > limits.max_line_bytes + 2:
        raise TraceError(line, f"line is longer than {limits.max_line_bytes} bytes")
    containers = raw.count(b"{") + raw.count(b"[")
    if containers > limits.max_containers:
        raise TraceError(
            line,
            f"line holds {containers} '{{' / '[' bytes (JSON objects and arrays), "
            f"more than {limits.max_containers}",
        )
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
    if _SURROGATE_ESCAPE.search(raw) and (bad := _lone_surrogate(obj)) is not None:
        raise TraceError(
            line, f"string {bad} holds a lone UTF-16 surrogate (an escape like \\ud800): not text"
        )
    if not isinstance(obj, dict):
        raise TraceError(line, f"expected a JSON object, got {type(obj).__name__}")
    t = _seconds(obj.get("t"), line)
    direction = obj.get("from")
    if direction not in ("client", "server"):
        raise TraceError(line, f'\'from\' must be "client" or "server", got {direction!r}')
    event = obj.get("event")
    if not isinstance(event, dict):
        raise TraceError(line, "'event' must be a JSON object")
    kind = event.get("type")
    if not isinstance(kind, str) or not kind:
        raise TraceError(line, "event has no 'type'")
    return TraceEntry(t, "client" if direction == "client" else "server", event, line)


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
