"""``replay --plot``: a replay's timeline as one picture, readable at a glance.

One lane per response, on the trace's own time axis, each with three rows: the
audio the server sent (drawn where each delta arrived), the audio the simulated
speaker played, and the audio dropped, coloured by reason (hatched where it was
purged from the queue after it was admitted). Markers show ``response.create``,
``response.created``, cancels (the client's and the tap's targeted ones),
``response.done``, missed deadlines and the gate's flags. A caption gives the
totals. matplotlib comes with the ``bench`` extra and is imported only here,
when a picture is drawn.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gate import DropReason, GateError
from integrations.openai_realtime._tap import UnattributedPolicy
from integrations.openai_realtime.trace.playout import Samples
from integrations.openai_realtime.trace.reader import (
    DEFAULT_LIMITS,
    TraceEntry,
    TraceLimits,
    iter_trace,
)
from integrations.openai_realtime.trace.replay import Replayer
from integrations.openai_realtime.trace.result import ReplayResult

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "MAX_LANES",
    "Lane",
    "PlotUnavailableError",
    "Timeline",
    "build_timeline",
    "check_destination",
    "require_matplotlib",
    "timeline_figure",
    "write_timeline_png",
]

MAX_LANES = 30
"""Lanes drawn at most: past that a picture is no longer read at a glance."""

STRAGGLER = "straggler"
"""The drop reason shown for audio that arrived after its response was done."""

_REASON_COLOURS = {
    DropReason.TIMED_OUT.value: "#e8871e",
    DropReason.CANCELLED.value: "#d62728",
    DropReason.INTERRUPTED.value: "#9467bd",
    STRAGGLER: "#8c564b",
}
_OTHER_COLOUR = "#555555"
_SENT_COLOUR = "#9aa5b1"
_PLAYED_COLOUR = "#2ca02c"
# kind -> (matplotlib marker, colour, legend label). Wire events sit on the "wire" row;
# the gate's own acts (a targeted cancel, a flag, a deadline) on the "gate" row, flags and
# deadlines also as labelled vertical lines across the lane.
_MARKERS = {
    "create": ("^", "#1f77b4", "response.create"),
    "created": ("o", "#111111", "response.created"),
    "cancel": ("X", "#d62728", "response.cancel (client)"),
    "done": ("s", "#111111", "response.done"),
    "targeted": ("P", "#e377c2", "targeted cancel (the gate)"),
}
_HOLLOW = frozenset({"created", "done"})  # a cancel at the same instant shows through
_FLAG_COLOUR = "#d62728"
_DEADLINE_COLOUR = "#e8871e"
_RECONNECT_COLOUR = "#7f7f7f"
_ROWS = ("dropped", "played", "sent", "wire", "gate")  # y = 0 .. 4


class PlotUnavailableError(GateError, RuntimeError):
    """matplotlib is not installed (it comes with the ``bench`` extra)."""


@dataclass(slots=True)
class Lane:
    """One response (or one request never answered) on the timeline. Times in seconds.

    Attributes:
        response_id: The response, or ``None`` for a request that got none.
        request_id: The request it answered, if known.
        sent: ``(arrival time, seconds of audio)`` per audio delta.
        played: ``[start, end]`` spans the speaker played, merged.
        dropped: ``(time, seconds, reason, purged)``: audio dropped on arrival
            (``purged`` false, drawn where it arrived) or purged from the queue
            (drawn from the purge on, where it would have played).
        markers: ``(time, kind)``, kinds as in the legend.
        state: The response's final state (``"no response"`` for a lone request).
        reason: Why it was flagged, if it was.
    """

    response_id: str | None
    request_id: str | None = None
    sent: list[tuple[float, float]] = field(default_factory=list)
    played: list[list[float]] = field(default_factory=list)
    dropped: list[tuple[float, float, str, bool]] = field(default_factory=list)
    markers: list[tuple[float, str]] = field(default_factory=list)
    state: str = "live"
    reason: str | None = None

    @property
    def sent_s(self) -> float:
        """Seconds of audio the server sent."""
        return sum(s for _, s in self.sent)

    @property
    def played_s(self) -> float:
        """Seconds of audio played."""
        return sum(end - start for start, end in self.played)

    @property
    def dropped_s(self) -> float:
        """Seconds of audio dropped (on arrival or purged)."""
        return sum(s for _, s, _, _ in self.dropped)


@dataclass(frozen=True, slots=True)
class Timeline:
    """What a replay did, laid out in time.

    Attributes:
        lanes: In order of first appearance.
        result: The replay's result (the same figures as ``replay`` prints).
        timeout: The request timeout the replay used.
        end: The time the last audio finished playing (or the last event).
        reconnects: When a new socket's ``session.created`` arrived after other
            server events (the client reconnected).
    """

    lanes: list[Lane]
    result: ReplayResult
    timeout: float
    end: float
    reconnects: list[float] = field(default_factory=list)


class _FlagWatch:
    """A purge sink that notes every flag: the gate calls it the moment it flags."""

    def __init__(self) -> None:
        self.flags: list[tuple[str, DropReason]] = []

    def purge(self, generation_id: str, reason: DropReason) -> None:
        self.flags.append((generation_id, reason))


class _TimelineReplayer(Replayer):
    """A :class:`Replayer` that also lays out what happened, event by event."""

    def __init__(self, *, timeout: float, policy: UnattributedPolicy, limits: TraceLimits) -> None:
        super().__init__(
            timeout=timeout, unattributed_policy=policy, write_audio=self._on_block, limits=limits
        )
        self.timeout = timeout
        self.lanes: dict[str, Lane] = {}
        self.requests: dict[str, tuple[float, Lane]] = {}  # request id -> (sent at, lane)
        self._watch = _FlagWatch()
        self.gate.add_sink(self._watch)
        self._played: dict[str, int] = {}
        self._audio_seen = 0
        self._last_played: str | None = None
        self._dropped: dict[str, int] = {}
        self._purged: dict[str, int] = {}
        self._flagged: set[str] = set()
        self._cancels_seen = 0
        self._server_events = 0
        self.reconnects: list[float] = []
        self.last_t = 0.0

    # ---- per event ------------------------------------------------------------------------

    def feed(self, entry: TraceEntry) -> None:
        """Handle one entry (see :meth:`Replayer.feed`) and note what it changed."""
        before = sum(self._received.values())
        super().feed(entry)
        t, event = entry.t, entry.event
        self.last_t = t
        kind = event.get("type")
        if entry.direction == "client":
            if kind == "response.create":
                self._on_create(t, event)
            elif kind == "response.cancel":
                rid = event.get("response_id")
                # a bare cancel is drawn on what it flagged
                targets = [rid] if isinstance(rid, str) else [g for g, _ in self._watch.flags]
                for gid in targets:
                    self._lane(gid).markers.append((t, "cancel"))
        else:
            self._on_server(t, kind, event, sum(self._received.values()) - before)
        for cancel in self._cancels[self._cancels_seen :]:
            rid = cancel.get("response_id")
            if isinstance(rid, str):
                self._lane(rid).markers.append((t, "targeted"))
        self._cancels_seen = len(self._cancels)
        for gid, _reason in self._watch.flags:
            self._on_flag(t, gid)
        self._watch.flags.clear()

    def _on_create(self, t: float, event: Mapping[str, Any]) -> None:
        params = event.get("response")
        metadata = params.get("metadata") if isinstance(params, Mapping) else None
        rid = metadata.get("client_event_id") if isinstance(metadata, Mapping) else None
        request_id = rid if isinstance(rid, str) else event.get("event_id")
        if isinstance(request_id, str) and request_id not in self.requests:
            lane = Lane(None, request_id, state="no response")
            lane.markers.append((t, "create"))
            self.requests[request_id] = (t, lane)
            self.lanes[f"request:{request_id}"] = lane

    def _on_server(self, t: float, kind: object, event: Mapping[str, Any], samples: int) -> None:
        self._server_events += 1
        if kind == "session.created" and self._server_events > 1:
            self.reconnects.append(t)
            return
        if kind in ("response.created", "response.done"):
            response = event.get("response")
            gid = response.get("id") if isinstance(response, Mapping) else None
            if not isinstance(gid, str) or not gid:
                return
            lane = self._lane(gid)
            lane.markers.append((t, "created" if kind == "response.created" else "done"))
            if kind == "response.created":
                self._adopt_request(t, lane)
            return
        gid = event.get("response_id")
        if not samples or not isinstance(gid, str) or self.playout is None:
            return
        rate = self.playout.sample_rate
        lane = self._lane(gid)
        lane.sent.append((t, samples / rate))
        info = self.gate.generation(gid)
        dropped = info.dropped.samples if info is not None else 0
        fresh = dropped - self._dropped.get(gid, 0)
        if fresh > 0:
            self._dropped[gid] = dropped
            reason = info.reason.value if info is not None and info.reason else STRAGGLER
            lane.dropped.append((t, fresh / rate, reason, False))

    def _adopt_request(self, t: float, lane: Lane) -> None:
        """Move a request's markers onto the response that answered it."""
        info = self.gate.generation(lane.response_id or "")
        request_id = info.request_id if info is not None else None
        if request_id is None or request_id not in self.requests:
            return
        sent_at, alone = self.requests[request_id]
        if alone is lane:
            return
        lane.request_id = request_id
        lane.markers.extend(alone.markers)
        self.lanes.pop(f"request:{request_id}", None)
        self.requests[request_id] = (sent_at, lane)
        if t > sent_at + self.timeout:
            lane.markers.append((sent_at + self.timeout, "deadline"))

    def _on_flag(self, t: float, gid: str) -> None:
        lane = self._lane(gid)
        if gid not in self._flagged:
            self._flagged.add(gid)
            lane.markers.append((t, "flag"))
        purged = self.playout.purged.get(gid, 0) if self.playout is not None else 0
        fresh = purged - self._purged.get(gid, 0)
        if fresh > 0 and self.playout is not None:
            self._purged[gid] = purged
            info = self.gate.generation(gid)
            reason = info.reason.value if info is not None and info.reason else "flagged"
            lane.dropped.append((t, fresh / self.playout.sample_rate, reason, True))

    def _on_block(self, rate: int, block: Samples) -> None:
        """Note which response (if any) each output block played, and when."""
        playout = self.playout
        if playout is None:
            return
        audio = playout.position - playout.silence
        if audio == self._audio_seen:
            return  # silence
        self._audio_seen = audio
        end = playout.position / rate
        start = end - len(block) / rate
        # the block is the generation whose count moved: most often the previous block's
        last = self._last_played
        candidates = [last] if last is not None else []
        for gid in [*candidates, *playout.played]:
            n = playout.played.get(gid, 0)
            if n != self._played.get(gid, 0):
                self._played[gid] = n
                self._last_played = gid
                spans = self._lane(gid).played
                if spans and abs(spans[-1][1] - start) < 1e-9:
                    spans[-1][1] = end
                else:
                    spans.append([start, end])
                return

    def _lane(self, gid: str) -> Lane:
        lane = self.lanes.get(gid)
        if lane is None:
            lane = self.lanes[gid] = Lane(gid)
        return lane

    # ---- the end ----------------------------------------------------------------------------

    def timeline(self) -> Timeline:
        """Finish the replay and return its timeline."""
        result = self.finish()
        end = self.last_t
        for sent_at, lane in self.requests.values():
            if lane.response_id is None and sent_at + self.timeout <= max(end, sent_at):
                lane.markers.append((sent_at + self.timeout, "deadline"))
        for lane in self.lanes.values():
            if lane.response_id is not None:
                info = self.gate.generation(lane.response_id)
                if info is not None:
                    lane.state = info.state.value
                    lane.reason = info.reason.value if info.reason else None
                    if lane.request_id is None:
                        lane.request_id = info.request_id
            lane.markers.sort()
            if lane.played:
                end = max(end, lane.played[-1][1])
            for t, s, _, _ in lane.dropped:
                end = max(end, t + s)
        return Timeline(list(self.lanes.values()), result, self.timeout, end, self.reconnects)


def build_timeline(
    entries: Iterable[TraceEntry],
    *,
    timeout: float = 10.0,
    unattributed_policy: UnattributedPolicy = UnattributedPolicy.PLAY,
    limits: TraceLimits = DEFAULT_LIMITS,
) -> Timeline:
    """Replay entries (as ``replay`` does) and lay out what happened in time.

    Args:
        entries: Trace entries in time order.
        timeout: Request timeout in seconds.
        unattributed_policy: The tap's policy for unattributed responses.
        limits: Bounds on ``t`` and the output, as for a replay.

    Returns:
        The timeline.

    Raises:
        TraceError: If the entries are bad.
    """
    replayer = _TimelineReplayer(timeout=timeout, policy=unattributed_policy, limits=limits)
    for entry in entries:
        replayer.feed(entry)
    return replayer.timeline()


def require_matplotlib() -> None:
    """Check that matplotlib can be imported, before any work is done.

    Raises:
        PlotUnavailableError: If it cannot (install the ``bench`` extra).
    """
    try:
        import matplotlib  # noqa: F401
    except ImportError as e:
        raise PlotUnavailableError(
            "--plot needs matplotlib: pip install 'playback-gate[bench]' or pip install matplotlib"
        ) from e


def _short(identifier: str | None, width: int = 22) -> str:
    if not identifier:
        return "-"
    return identifier if len(identifier) <= width else identifier[: width - 1] + "…"


def _colour(reason: str) -> str:
    return _REASON_COLOURS.get(reason, _OTHER_COLOUR)


def _caption(timeline: Timeline) -> str:
    totals = timeline.result.totals()
    rate = timeline.result.sample_rate

    def sec(key: str) -> str:
        return f"{totals[key] / rate:.2f} s"

    return (
        f"{totals['responses']} response(s): the server sent {sec('samples_received')} of audio;"
        f" played {sec('samples_played')}; dropped {sec('samples_dropped')}"
        f" ({sec('samples_purged')} of it purged from the queue)\n"
        f"{totals['requests_timed_out']} request(s) timed out (deadline {timeline.timeout:g} s);"
        f" {totals['cancels_sent']} targeted cancel(s) sent by the gate"
    )


def _merged(spans: list[tuple[float, float]], gap: float) -> list[tuple[float, float]]:
    """Join ``(start, length)`` spans less than ``gap`` apart: deltas arrive with jitter, and
    a gap narrower than a pixel would draw as a hairline."""
    out: list[list[float]] = []
    for start, length in sorted(spans):
        if out and start <= out[-1][1] + gap:
            out[-1][1] = max(out[-1][1], start + length)
        else:
            out.append([start, start + length])
    return [(a, b - a) for a, b in out]


def _verdict(lane: Lane) -> str:
    if lane.response_id is None:
        return "no response"
    if lane.reason is not None:
        return f"flagged: {lane.reason}"
    return "played" if lane.dropped_s == 0 else lane.state


def _draw_lane(ax: Any, lane: Lane, number: int, timeline: Timeline) -> None:
    """Draw one lane: its three audio rows, its wire and gate rows, its titles."""
    pixel = max(timeline.end, 0.1) / 1000  # about one pixel of the time axis
    if lane.sent:
        ax.broken_barh(_merged(lane.sent, pixel), (1.65, 0.7), color=_SENT_COLOUR)
    if lane.played:
        ax.broken_barh([(a, b - a) for a, b in lane.played], (0.65, 0.7), color=_PLAYED_COLOUR)
    groups: dict[tuple[str, bool], list[tuple[float, float]]] = {}
    for t, seconds, reason, purged in lane.dropped:
        groups.setdefault((reason, purged), []).append((t, seconds))
    for (reason, purged), spans in groups.items():
        colour = _colour(reason)
        ax.broken_barh(
            _merged(spans, pixel),
            (-0.35, 0.7),
            facecolor=colour,
            edgecolor="white" if purged else colour,
            hatch="///" if purged else None,
            linewidth=0,
        )
    for t in timeline.reconnects:
        ax.axvline(t, color=_RECONNECT_COLOUR, linestyle=":", lw=1.5)
    for t, kind in lane.markers:
        if kind in ("flag", "deadline"):
            colour = _FLAG_COLOUR if kind == "flag" else _DEADLINE_COLOUR
            ax.axvline(t, color=colour, linestyle="-" if kind == "flag" else "--", lw=1.3)
            # the flag's label to the right of its line, the deadline's to the left: a flag
            # often follows its deadline closely (a late response.created)
            if kind == "flag":
                ax.text(
                    t, 4.0, f" flag: {lane.reason or '?'}", color=colour, fontsize=8, va="center"
                )
            else:
                ax.text(t, 4.0, "deadline ", color=colour, fontsize=8, va="center", ha="right")
            continue
        marker, colour, _ = _MARKERS[kind]
        hollow = kind in _HOLLOW
        ax.plot(
            [t],
            [4.0 if kind == "targeted" else 3.0],
            marker=marker,
            markersize=9,
            linestyle="none",
            color=colour,
            markerfacecolor="none" if hollow else colour,
            markeredgewidth=1.6 if hollow else 1.0,
        )
    ax.set_ylim(-0.6, 4.6)
    ax.set_yticks(range(len(_ROWS)), list(_ROWS), fontsize=8)
    ax.grid(axis="x", alpha=0.3)
    ax.set_title(f"{number}. {_verdict(lane)}", loc="left", fontsize=10, fontweight="bold")
    ids = f"response {_short(lane.response_id)}   request {_short(lane.request_id, 30)}"
    ax.set_title(ids, loc="center", fontsize=8, color="#555555")
    ax.set_title(
        f"sent {lane.sent_s:.2f} s   played {lane.played_s:.2f} s   dropped {lane.dropped_s:.2f} s",
        loc="right",
        fontsize=9,
    )


def _legend(timeline: Timeline, lanes: list[Lane]) -> list[Any]:
    """Legend entries for what the figure shows (the lanes drawn), and only that."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    handles: list[Any] = [
        Patch(color=_SENT_COLOUR, label="sent by the server (at arrival)"),
        Patch(color=_PLAYED_COLOUR, label="played"),
    ]
    reasons = sorted({reason for lane in lanes for _, _, reason, _ in lane.dropped})
    handles += [Patch(color=_colour(r), label=f"dropped: {r}") for r in reasons]
    if any(purged for lane in lanes for *_, purged in lane.dropped):
        handles.append(
            Patch(
                facecolor="#bbbbbb", edgecolor="white", hatch="///", label="purged from the queue"
            )
        )
    kinds = {kind for lane in lanes for _, kind in lane.markers}
    for kind, (marker, colour, label) in _MARKERS.items():
        if kind in kinds:
            face = "none" if kind in _HOLLOW else colour
            handles.append(
                Line2D(
                    [],
                    [],
                    marker=marker,
                    color=colour,
                    markerfacecolor=face,
                    ls="none",
                    label=label,
                )
            )
    lines = [
        ("flag", _FLAG_COLOUR, "-", "flagged by the gate"),
        ("deadline", _DEADLINE_COLOUR, "--", "request deadline passed"),
    ]
    handles += [
        Line2D([], [], color=c, ls=ls, label=label) for k, c, ls, label in lines if k in kinds
    ]
    if timeline.reconnects:
        handles.append(
            Line2D([], [], color=_RECONNECT_COLOUR, ls=":", lw=1.5, label="socket reconnected")
        )
    return handles


def timeline_figure(timeline: Timeline, *, title: str = "", max_lanes: int = MAX_LANES) -> Figure:
    """Draw a timeline: one axes per lane, sharing the time axis, a legend and a caption.

    Args:
        timeline: What :func:`build_timeline` returned.
        title: The figure's title (e.g. the trace's name).
        max_lanes: Draw at most this many lanes, the first ones (the caption says so).

    Returns:
        The figure (not shown, not saved). It has one axes per lane drawn (one
        empty axes if there is none).

    Raises:
        PlotUnavailableError: If matplotlib is not installed.
    """
    require_matplotlib()
    from matplotlib.figure import Figure

    lanes = timeline.lanes[:max_lanes]
    n = max(1, len(lanes))
    fig = Figure(figsize=(12, 1.9 + 1.15 * n), layout="constrained")
    axes: list[Any] = list(fig.subplots(n, 1, sharex=True, squeeze=False)[:, 0])
    for i, lane in enumerate(lanes):
        _draw_lane(axes[i], lane, i + 1, timeline)
    if not lanes:
        axes[0].text(
            0.5, 0.5, "no response in this trace", ha="center", transform=axes[0].transAxes
        )
    axes[0].set_xlim(0, max(timeline.end, 0.1) * 1.02)
    axes[-1].set_xlabel("trace time (s)")
    handles = _legend(timeline, lanes)
    fig.legend(
        handles=handles,
        loc="outside lower center",
        ncol=min(len(handles), 5),
        fontsize=8,
        frameon=False,
    )
    caption = _caption(timeline)
    if len(timeline.lanes) > len(lanes):
        caption += f"; the first {len(lanes)} of {len(timeline.lanes)} lanes drawn"
    fig.suptitle(f"{title}\n{caption}" if title else caption, fontsize=10)
    return fig


def check_destination(out: str | Path) -> None:
    """Refuse a PNG path that cannot be written, before any work is done.

    Args:
        out: The PNG to write.

    Raises:
        OSError: Naming the path, if its folder is missing or not writable, or it is a folder.
    """
    dest = Path(out)
    folder = dest.parent
    if not folder.is_dir():
        raise FileNotFoundError(f"cannot write {dest}: no folder {folder}")
    if dest.is_dir():
        raise IsADirectoryError(f"cannot write {dest}: it is a folder")
    if not os.access(folder, os.W_OK):
        raise PermissionError(f"cannot write {dest}: {folder} is not writable")


def write_timeline_png(
    trace: str | Path,
    out: str | Path,
    *,
    timeout: float = 10.0,
    unattributed_policy: UnattributedPolicy = UnattributedPolicy.PLAY,
    limits: TraceLimits = DEFAULT_LIMITS,
    title: str | None = None,
) -> Timeline:
    """Replay a trace file and write its timeline as a PNG (whole, or not at all).

    Args:
        trace: The ``.jsonl`` trace.
        out: The PNG to write (through a temp file beside it, renamed at the end).
        timeout: Request timeout in seconds.
        unattributed_policy: The tap's policy for unattributed responses.
        limits: Bounds on what is read.
        title: The picture's title; the trace's file name by default.

    Returns:
        The timeline drawn.

    Raises:
        PlotUnavailableError: If matplotlib is not installed.
        TraceError: If the trace is bad.
        OSError: If a file cannot be read or written.
    """
    require_matplotlib()
    check_destination(out)
    with open(trace, "rb") as f:
        timeline = build_timeline(
            iter_trace(f, limits),
            timeout=timeout,
            unattributed_policy=unattributed_policy,
            limits=limits,
        )
    fig = timeline_figure(timeline, title=Path(trace).name if title is None else title)
    dest = Path(out)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent or ".")
    os.close(fd)
    try:
        fig.savefig(tmp, format="png", dpi=100)
        umask = os.umask(0)  # mkstemp made it private; give it a new file's mode
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return timeline
