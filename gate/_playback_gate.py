"""The gate: the ledger, plus purge signalling to sinks and logging."""

from __future__ import annotations

import logging
import threading

from gate._errors import InvalidTypeError
from gate._ledger import Ledger
from gate._reasons import DropReason
from gate._sink import PurgeSink
from gate._stats import GenerationInfo

__all__ = ["PlaybackGate"]

logger = logging.getLogger("playback_gate")

_SINKS_LOCK = threading.Lock()  # registration is rare; purge reads the tuple without it


class PlaybackGate(Ledger):
    """Keys audio by generation, drops flagged generations and purges sinks.

    Everything in :class:`~gate._ledger.Ledger` (same arguments, same thread
    rules), plus: every newly flagged generation is purged from each sink
    registered with :meth:`add_sink`, on the flagging thread, after the flag
    is visible to :meth:`admit`. A sink that raises an ``Exception`` is logged
    and skipped; the other sinks are still purged. A sink that raises a
    ``BaseException`` that is not an ``Exception`` (``asyncio.CancelledError``,
    ``KeyboardInterrupt``, ``SystemExit``) does not stop the others either: every
    sink is purged, then the first such exception is re-raised from the call
    that flagged (the flag itself has already taken effect).

    Example::

        gate = PlaybackGate(audio_format=AudioFormat(24000))
        gate.expect("evt_1")                     # response.create sent
        gate.bind("evt_1", "resp_1")             # response.created arrived
        if gate.admit("resp_1", frame):          # each audio frame
            speaker.write(frame)
        gate.flag("resp_1", DropReason.INTERRUPTED)   # barge-in: drop + purge
    """

    _sinks: tuple[PurgeSink, ...] = ()

    def add_sink(self, sink: PurgeSink) -> None:
        """Register a sink to purge on every flag. Adding one twice is a no-op.

        Args:
            sink: Anything with ``purge(generation_id, reason)``.

        Raises:
            InvalidTypeError: If ``sink`` has no callable ``purge``.
        """
        if not callable(getattr(sink, "purge", None)):
            raise InvalidTypeError(
                f"{sink!r} is not a PurgeSink: it has no purge(generation_id, reason)"
            )
        with _SINKS_LOCK:
            if sink not in self._sinks:
                self._sinks = (*self._sinks, sink)

    def remove_sink(self, sink: PurgeSink) -> None:
        """Unregister a sink. Removing one not registered is a no-op.

        Args:
            sink: The sink.
        """
        with _SINKS_LOCK:
            self._sinks = tuple(s for s in self._sinks if s is not sink)

    @property
    def sinks(self) -> tuple[PurgeSink, ...]:
        """The registered sinks."""
        return self._sinks

    def _on_flagged(self, info: GenerationInfo) -> None:
        reason = info.reason or DropReason.CANCELLED
        logger.info(
            "generation %s flagged (%s%s)%s; purging %d sink(s)",
            info.generation_id,
            reason.value,
            f": {info.detail}" if info.detail else "",
            f" for request {info.request_id}" if info.request_id else "",
            len(self._sinks),
        )
        fatal: BaseException | None = None
        for sink in self._sinks:
            try:
                sink.purge(info.generation_id, reason)
            except Exception:
                logger.exception("sink %r failed to purge generation %s", sink, info.generation_id)
            except BaseException as e:  # CancelledError, KeyboardInterrupt, SystemExit
                # Purge the other sinks first: one sink's cancellation must not leave
                # flagged audio queued in the rest. Then the first one propagates.
                if fatal is None:
                    fatal = e
        if fatal is not None:
            raise fatal
