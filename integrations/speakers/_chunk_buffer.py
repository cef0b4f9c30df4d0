"""A bounded FIFO of PCM chunks tagged by generation id, drained by an audio callback.

The writer (the event loop) pushes converted audio; the reader (the audio
callback) pulls exactly one device block at a time. Storage is one
preallocated ring of frames plus a preallocated ring of *segments*
``(generation id, start, length)``; every segment is contiguous in the ring.

Purging a generation is O(1): the oldest ``n`` segments of a generation are
marked dead by a count, and :meth:`ChunkBuffer.pull` skips dead segments when
it reaches them, so their audio is gone by the next pull. If the purged
generation is the one sounding, the next pull plays a short fade of its next
frames instead of cutting mid-waveform.

Locking: one :class:`threading.Lock` guards all state. Every holder does O(1)
bookkeeping plus at most one bounded copy: ``push`` copies one chunk,
``pull`` copies one block, ``purge`` copies nothing. No holder waits on
anything else, so the callback never waits long on the event loop.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from gate import ConfigurationError
from integrations.speakers._fade import Fade
from integrations.speakers._records import BufferFullError, BufferStats, Cut

__all__ = ["BufferFullError", "BufferStats", "ChunkBuffer", "Cut"]

Array = npt.NDArray[np.generic]


class ChunkBuffer:
    """A bounded FIFO of PCM chunks, each tagged with its generation id.

    Args:
        capacity: Frames the ring holds.
        channels: Channels per frame.
        dtype: Sample type of the ring and of the device, e.g. ``"int16"``.
        fade: Fade applied when the sounding generation is purged; ``None``
            for a hard cut.
        max_segments: Chunks the FIFO holds (consecutive chunks of one
            generation merge into one segment).
        max_tracked: Generations whose played-frame counts are kept.

    Raises:
        ConfigurationError: If a size is not positive or the fade's channels differ.
    """

    def __init__(
        self,
        capacity: int,
        channels: int = 1,
        dtype: str = "int16",
        *,
        fade: Fade | None = None,
        max_segments: int = 1024,
        max_tracked: int = 256,
    ) -> None:
        if capacity < 1 or channels < 1 or max_segments < 2 or max_tracked < 1:
            raise ConfigurationError(
                f"capacity, channels, max_tracked must be >= 1 and max_segments >= 2, got "
                f"{capacity}, {channels}, {max_tracked}, {max_segments}"
            )
        fade = fade if fade is not None else Fade(0, channels)
        if fade.channels != channels:
            raise ConfigurationError(f"fade has {fade.channels} channel(s), buffer has {channels}")
        self.capacity = capacity
        self.channels = channels
        self.dtype = np.dtype(dtype)
        self.fade = fade
        self._ring: Array = np.zeros((capacity, channels), self.dtype)
        self._lock = threading.Lock()
        # The segment FIFO, as parallel preallocated lists.
        self._max_segments = max_segments
        self._seg_gid: list[str] = [""] * max_segments
        self._seg_start = [0] * max_segments
        self._seg_len = [0] * max_segments
        self._head = 0  # index of the oldest segment
        self._count = 0  # segments in the FIFO
        self._write = 0  # ring index of the next frame to write
        self._used = 0  # ring frames held, dead ones included
        # Per generation, only while it has audio queued.
        self._segments: dict[str, int] = {}  # its segments in the FIFO
        self._dead: dict[str, int] = {}  # its oldest segments that are purged
        self._queued: dict[str, int] = {}  # its live frames
        self._open: dict[str, None] = {}  # pushed to and not ended: a dry pull is an underrun
        self._pending: dict[str, Cut] = {}  # purged while sounding: fade at the next pull
        # The playhead.
        self._tail_gid: str | None = None  # generation of the last audio frame handed out
        self._ends: dict[str, int] = {}  # frame index after each generation's last frame
        self._played: dict[str, int] = {}
        self._max_tracked = max_tracked
        self.frames_out = 0
        self._frames_played = 0
        self._frames_faded = 0
        self._frames_purged = 0
        self._underruns = 0
        self._underrun_frames = 0
        self._cuts: deque[Cut] = deque(maxlen=max_tracked)
        #: Cuts whose fade the last :meth:`pull` resolved, for the sink to time-stamp.
        self.resolved: list[Cut] = []

    # ---- writer side (the event loop) -----------------------------------------------------

    def push(self, generation_id: str, data: Array) -> None:
        """Queue ``data`` for ``generation_id``, copying it into the ring.

        Args:
            generation_id: The generation it belongs to.
            data: ``(frames, channels)`` samples of the buffer's dtype.

        Raises:
            ConfigurationError: If ``data`` has the wrong shape or dtype.
            BufferFullError: If the ring or the segment FIFO has no room.
        """
        if data.ndim != 2 or data.shape[1] != self.channels or data.dtype != self.dtype:
            raise ConfigurationError(
                f"chunk must be (frames, {self.channels}) {self.dtype}, "
                f"got {data.shape} {data.dtype}"
            )
        n = data.shape[0]
        if n == 0:
            return
        with self._lock:
            if n > self.capacity - self._used:
                raise BufferFullError(
                    f"speaker buffer full: {self._used} of {self.capacity} frames queued, "
                    f"cannot add {n}; wait for playback (awrite) or raise the buffer size"
                )
            w = self._write
            first = min(n, self.capacity - w)
            if self._count + (1 if first == n else 2) > self._max_segments:
                raise BufferFullError(
                    f"speaker buffer full: {self._count} of {self._max_segments} chunk slots "
                    "used (interleaved generations take a slot per chunk); wait for playback "
                    "(awrite), push larger chunks or raise max_segments"
                )
            self._ring[w : w + first] = data[:first]
            self._add_segment(generation_id, w, first)
            if first < n:
                self._ring[: n - first] = data[first:]
                self._add_segment(generation_id, 0, n - first)
            self._write = (w + n) % self.capacity
            self._used += n
            self._queued[generation_id] = self._queued.get(generation_id, 0) + n
            self._open[generation_id] = None
            if generation_id not in self._played:
                self._forget_oldest()
                self._played[generation_id] = 0

    def end(self, generation_id: str) -> None:
        """Mark a generation's stream ended: running dry after it is not an underrun.

        Args:
            generation_id: The generation.
        """
        with self._lock:
            self._open.pop(generation_id, None)

    def end_all(self) -> None:
        """Mark every generation ended (before draining)."""
        with self._lock:
            self._open.clear()

    def purge(self, generation_id: str) -> Cut:
        """Drop every queued frame of ``generation_id``. O(1); never blocks for long.

        If it is sounding now, the next pull fades out its next frames instead
        of cutting mid-waveform. Frames pushed later are not affected.

        Args:
            generation_id: The generation.

        Returns:
            The cut; ``silent_frame`` is ``None`` until the fade has played.
        """
        with self._lock:
            return self._purge_locked(generation_id)

    def clear(self) -> list[Cut]:
        """Purge every generation (the sounding one still fades out).

        Returns:
            One cut per generation that had audio queued.
        """
        with self._lock:
            return [self._purge_locked(gid) for gid in list(self._segments)]

    def reset(self) -> None:
        """Empty the buffer at once, with no fade. Only while nothing pulls."""
        with self._lock:
            for gid, cut in self._pending.items():
                cut.silent_frame = self._ends.get(gid, self.frames_out)
            self._frames_purged += sum(self._queued.values())
            self._head = self._count = self._write = self._used = 0
            for d in (self._segments, self._dead, self._queued, self._open, self._pending):
                d.clear()

    # ---- reader side (the audio callback) -------------------------------------------------

    def pull(self, out: Array, drop: Callable[[str], bool] | None = None) -> int:
        """Fill ``out`` with the next block: queued audio, then silence.

        Skips purged audio, and audio of generations for which ``drop`` says
        so (those are purged on the spot). Allocates no array data.

        Args:
            out: ``(frames, channels)`` block to fill, of the buffer's dtype.
            drop: Re-check per generation, e.g. ``gate.is_flagged``.

        Returns:
            Frames of audio written; the rest of ``out`` is silence.
        """
        n = out.shape[0]
        pos = 0
        ring = self._ring
        with self._lock:
            self.resolved.clear()
            base = self.frames_out
            while pos < n and self._count:
                h = self._head
                gid = self._seg_gid[h]
                start = self._seg_start[h]
                length = self._seg_len[h]
                dead = gid in self._dead
                if not dead and drop is not None and drop(gid):
                    self._purge_locked(gid)
                    dead = True
                if dead:
                    cut = self._pending.pop(gid, None)
                    if cut is not None:
                        k = min(self.fade.frames, length, n - pos)
                        self.fade.apply(ring[start : start + k], out[pos : pos + k])
                        pos += k
                        self._frames_faded += k
                        self._frames_played += k
                        cut.faded_frames = k
                        cut.silent_frame = base + pos
                        self._ends[gid] = base + pos
                        self._tail_gid = gid
                        self.resolved.append(cut)
                    self._frames_purged += length - (cut.faded_frames if cut else 0)
                    self._used -= length
                    self._pop_segment(gid, dead=True)
                    continue
                k = min(length, n - pos)
                out[pos : pos + k] = ring[start : start + k]
                pos += k
                self._used -= k
                self._queued[gid] -= k
                self._frames_played += k
                self._played[gid] = self._played.get(gid, 0) + k
                self._ends[gid] = base + pos
                self._tail_gid = gid
                if k == length:
                    if not self._queued[gid]:
                        del self._queued[gid]
                    self._pop_segment(gid, dead=False)
                else:
                    self._seg_start[h] = start + k
                    self._seg_len[h] = length - k
            if pos < n:
                out[pos:] = 0
                if self._open:
                    self._underruns += 1
                    self._underrun_frames += n - pos
            self.frames_out = base + n
        return pos

    # ---- inspection -----------------------------------------------------------------------

    @property
    def frames_queued(self) -> int:
        """Live frames waiting to play."""
        with self._lock:
            return self._used_live()

    @property
    def empty(self) -> bool:
        """Whether nothing is left to pull, dead audio and pending fades included."""
        return self._count == 0

    @property
    def free_frames(self) -> int:
        """Frames that can be pushed now."""
        return self.capacity - self._used

    @property
    def free_segments(self) -> int:
        """Segment slots free now; a push takes at most two (one if it does not wrap)."""
        return self._max_segments - self._count

    @property
    def max_segments(self) -> int:
        """Segments the FIFO holds."""
        return self._max_segments

    def fits(self, frames: int) -> bool:
        """Whether a push of ``frames`` frames would succeed now.

        Lock-free: only a pull changes the state from another thread, and it
        only frees room, so a stale read errs on the side of "no room".

        Args:
            frames: Frames of the chunk.

        Returns:
            ``True`` if both the ring and the segment FIFO have room.
        """
        if frames <= 0:
            return True
        if frames > self.capacity - self._used:
            return False
        wraps = frames > self.capacity - self._write
        return self._count + (2 if wraps else 1) <= self._max_segments

    @property
    def last_audio_end(self) -> int:
        """Frame index right after the last audio frame handed out (0 if none)."""
        tail = self._tail_gid
        return self._ends.get(tail, 0) if tail is not None else 0

    def queued(self, generation_id: str) -> int:
        """Live frames of ``generation_id`` waiting to play.

        Args:
            generation_id: The generation.

        Returns:
            The frame count.
        """
        return self._queued.get(generation_id, 0)

    def played(self, generation_id: str) -> int:
        """Frames of ``generation_id`` handed to the device, faded ones excluded.

        Args:
            generation_id: The generation.

        Returns:
            The frame count (0 if unknown or forgotten).
        """
        return self._played.get(generation_id, 0)

    def cuts(self) -> list[Cut]:
        """The most recent cuts, oldest first.

        Returns:
            The cuts (shared objects: a pending one fills in later).
        """
        with self._lock:
            return list(self._cuts)

    def stats(self) -> BufferStats:
        """A snapshot of the counters.

        Returns:
            The stats.
        """
        with self._lock:
            return BufferStats(
                frames_out=self.frames_out,
                frames_played=self._frames_played,
                frames_faded=self._frames_faded,
                frames_purged=self._frames_purged,
                frames_queued=self._used_live(),
                underruns=self._underruns,
                underrun_frames=self._underrun_frames,
                played=dict(self._played),
            )

    # ---- internals (lock held) ------------------------------------------------------------

    def _used_live(self) -> int:
        return sum(self._queued.values())

    def _add_segment(self, gid: str, start: int, length: int) -> None:
        if self._count and gid not in self._dead:
            t = (self._head + self._count - 1) % self._max_segments
            if self._seg_gid[t] == gid and self._seg_start[t] + self._seg_len[t] == start:
                self._seg_len[t] += length
                return
        t = (self._head + self._count) % self._max_segments
        self._seg_gid[t] = gid
        self._seg_start[t] = start
        self._seg_len[t] = length
        self._count += 1
        self._segments[gid] = self._segments.get(gid, 0) + 1

    def _pop_segment(self, gid: str, *, dead: bool) -> None:
        self._head = (self._head + 1) % self._max_segments
        self._count -= 1
        left = self._segments[gid] - 1
        if left:
            self._segments[gid] = left
        else:
            del self._segments[gid]
        if dead:
            d = self._dead[gid] - 1
            if d:
                self._dead[gid] = d
            else:
                del self._dead[gid]

    def _purge_locked(self, gid: str) -> Cut:
        dropped = self._queued.pop(gid, 0)
        self._open.pop(gid, None)
        cut = Cut(gid, flagged_frame=self.frames_out, dropped_frames=dropped)
        segments = self._segments.get(gid, 0)
        if segments:
            self._dead[gid] = segments
        sounding = (
            gid == self._tail_gid
            and self._ends.get(gid) == self.frames_out
            and self._count > 0
            and self._seg_gid[self._head] == gid
        )
        if sounding and self.fade.frames > 0 and gid not in self._pending:
            self._pending[gid] = cut
        else:
            cut.silent_frame = self._ends.get(gid, self.frames_out)
        self._cuts.append(cut)
        return cut

    def _forget_oldest(self) -> None:
        while len(self._played) >= self._max_tracked:
            oldest = next(iter(self._played))
            del self._played[oldest]
            self._ends.pop(oldest, None)
