"""The demo's closing table: per reply, what the server sent, what played, what leaked.

Under it: why each reply was dropped, where (at which layer) the gated run's
dropped audio was stopped, and one line of the gate's own counts. Every figure
comes from the same outcomes, so the lines agree with the table.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from integrations.demo.outcome import ReplyOutcome

__all__ = ["format_report", "gate_summary", "layers"]


def _s(seconds: float) -> str:
    return f"{seconds:5.2f}s"


def _replies(outcomes: Sequence[ReplyOutcome]) -> str:
    steps = [str(o.step) for o in outcomes]
    return ("reply " if len(steps) == 1 else "replies ") + ", ".join(steps)


#: (label, what it measures) for each layer, in the order audio flows.
_LAYERS: tuple[tuple[str, Callable[[ReplyOutcome], float]], ...] = (
    (
        "before the output: dead on arrival, the gate flagged it first",
        lambda o: o.before_output if o.killed_early else 0.0,
    ),
    (
        "before the output: LiveKit stopped forwarding it",
        lambda o: 0.0 if o.killed_early else o.before_output,
    ),
    ("at the output: the gate dropped its frames", lambda o: o.at_output),
    ("in the queue: the gate purged it", lambda o: o.purged_by_gate),
    ("in the queue: LiveKit's interrupt cleared it", lambda o: o.cleared_by_livekit),
)


def layers(gated: Sequence[ReplyOutcome]) -> list[tuple[str, float, list[ReplyOutcome]]]:
    """Where the gated run's dropped audio was stopped.

    Args:
        gated: The gated run's outcomes.

    Returns:
        ``(layer, seconds, replies)`` for each layer that stopped any audio;
        the seconds add up to the table's total dropped.
    """
    out = []
    for label, measure in _LAYERS:
        hit = [o for o in gated if measure(o) >= 0.005]
        if hit:
            out.append((label, sum(measure(o) for o in hit), hit))
    return out


def gate_summary(gated: Sequence[ReplyOutcome]) -> str:
    """What the gate itself did, from the same outcomes as the table.

    Args:
        gated: The gated run's outcomes.

    Returns:
        Three lines: the replies it flagged, and its share of the dropped audio per layer.
    """
    flagged = [o for o in gated if o.why and not o.why.startswith("LiveKit")]
    early = [o for o in flagged if o.killed_early]
    frames = sum(o.output_frames for o in gated)
    line = f"gate: flagged {len(flagged)} repl{'y' if len(flagged) == 1 else 'ies'}"
    if early:
        line += f" ({_replies(early)} before any of their audio reached the output)"
    line += f"; sent {sum(o.targeted_cancels for o in gated)} targeted cancel(s)."
    killed = sum(o.before_output for o in early)
    line += (
        f"\n  Of the {sum(o.dropped for o in gated):.2f} s dropped, it stopped "
        f"{killed:.2f} s before the output, "
        f"{sum(o.at_output for o in gated):.2f} s ({frames} frame{'' if frames == 1 else 's'}) "
        "at the output,"
        f"\n  {sum(o.purged_by_gate for o in gated):.2f} s in the queue"
    )
    livekit = sum(o.cleared_by_livekit for o in gated) + sum(
        o.before_output for o in gated if not o.killed_early
    )
    line += f"; LiveKit itself stopped {livekit:.2f} s." if livekit >= 0.005 else "."
    return line


def format_report(
    gated: Sequence[ReplyOutcome],
    ungated: Sequence[ReplyOutcome] | None = None,
    *,
    notes: Sequence[str] = (),
) -> str:
    """Render the outcome of a gated run, and optionally its ungated twin, as text.

    Args:
        gated: The gated run's outcomes, one per reply.
        ungated: The same story without the gate, reply for reply; ``None`` if
            it was not run.
        notes: Lines printed at the end (which real server behaviour each row is).

    Returns:
        The table and its footnotes.
    """
    head = (
        f"{'#':<2} {'reply':<34}│ {'sent':>6} {'played':>6} {'dropped':>7} {'leaked':>6} "
        f"{'why':<3} │ {'sent':>6} {'played':>6} {'leaked':>6}"
    )
    top = f"{'':<37}│ {'with the gate':^34} │ {'without the gate':^20}"
    rule = "─" * len(head)
    lines = [top, head, rule]
    whys: list[str] = []
    for i, g in enumerate(gated):
        u = ungated[i] if ungated is not None and i < len(ungated) else None
        mark = ""
        if g.why:
            whys.append(g.why)
            mark = f"[{len(whys)}]"
        label = g.label
        if g.kind in ("interrupt", "cancel"):
            label = f"{label} at {g.played_at_give_up:.2f}s"
        row = (
            f"{g.step:<2} {label:<34}│ {_s(g.sent)} {_s(g.played)} {_s(g.dropped):>7} "
            f"{_s(g.unwanted)} {mark:<3} │ "
        )
        row += f"{_s(u.sent)} {_s(u.played)} {_s(u.unwanted)}" if u is not None else "     -"
        lines.append(row)
    lines.append(rule)
    row = (
        f"{'':<2} {'total':<34}│ {_s(sum(g.sent for g in gated))} "
        f"{_s(sum(g.played for g in gated))} {_s(sum(g.dropped for g in gated)):>7} "
        f"{_s(sum(g.unwanted for g in gated))} {'':<3} │ "
    )
    if ungated is not None:
        row += (
            f"{_s(sum(u.sent for u in ungated))} {_s(sum(u.played for u in ungated))} "
            f"{_s(sum(u.unwanted for u in ungated))}"
        )
    lines.append(row)
    lines.append("")
    lines.append("leaked: audio played after the client gave up on the reply (its deadline passed,")
    lines.append(
        "        the user barged in, the app cancelled it, or the socket it asked on died)."
    )
    for n, why in enumerate(whys, 1):
        who = "" if why.startswith("LiveKit") else "flagged by the gate: "
        lines.append(f"[{n}] {who}{why}")
    if ungated is not None:
        for u in ungated:
            if u.why:
                lines.append(f"without the gate, reply {u.step}: {u.why}")
    stopped = layers(gated)
    if stopped:
        lines.append("")
        lines.append(
            f"with the gate, the {sum(g.dropped for g in gated):.2f} s dropped were stopped at:"
        )
        for label, seconds, hit in stopped:
            lines.append(f"  {seconds:5.2f} s  {label} ({_replies(hit)})")
    if notes:
        lines.append("")
        lines.extend(notes)
    return "\n".join(lines)
