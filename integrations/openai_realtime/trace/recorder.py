"""Record a Realtime session as a trace (see :mod:`integrations.openai_realtime.trace.reader`).

The recorder scrubs secrets (API keys, auth headers, bearer tokens, ephemeral
client secrets) before anything reaches the file, and by default leaves out the
user's microphone audio (``input_audio_buffer.append``), which replay never needs.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Protocol

from integrations.openai_realtime._events import Direction
from integrations.openai_realtime.trace.reader import DEFAULT_LIMITS, TraceLimits
from integrations.openai_realtime.trace.scrub import scrub

__all__ = ["TraceRecorder"]

logger = logging.getLogger("playback_gate.trace")


class _EventSource(Protocol):
    # ``event: Any``: LiveKit types it as a Literal of its event names.
    def on(self, event: Any, callback: Any) -> Any: ...

    def off(self, event: Any, callback: Any) -> Any: ...


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
        limits: What the reader will accept: a line longer than
            ``limits.max_line_bytes`` or with more ``{``/``[`` than
            ``limits.max_containers`` is left out (counted in :attr:`skipped` and
            logged), so a recorded trace always replays.
    """

    def __init__(
        self,
        out: str | Path | IO[str],
        *,
        clock: Callable[[], float] = time.monotonic,
        exclude_types: Collection[str] = ("input_audio_buffer.append",),
        limits: TraceLimits = DEFAULT_LIMITS,
    ) -> None:
        if isinstance(out, str | Path):
            self._stream: IO[str] = open(out, "w", encoding="utf-8")  # noqa: SIM115
            self._owns = True
        else:
            self._stream, self._owns = out, False
        self._clock = clock
        self._t0 = clock()
        self._exclude = frozenset(exclude_types)
        self._limits = limits
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
            size = len(line.encode("utf-8"))
            if size > self._limits.max_line_bytes:
                raise ValueError(f"{size} bytes, over the reader's {self._limits.max_line_bytes}")
            if line.count("{") + line.count("[") > self._limits.max_containers:
                raise ValueError(f"over {self._limits.max_containers} objects and arrays")
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
