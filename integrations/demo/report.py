"""The demo's closing table: per reply, what the server sent, what played, what was dropped."""

from __future__ import annotations

from collections.abc import Sequence

from integrations.demo.story import ReplyOutcome

__all__ = ["format_report"]


def _s(seconds: float) -> str:
    return f"{seconds:5.2f}s"


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
        notes: Lines printed under the table.

    Returns:
        The table and its footnotes.
    """
    head = (
        f"{'#':<2} {'reply':<33} {'sent':>6} {'late*':>6} │ {'played':>6} {'dropped':>7}"
        f" {'why':<3} │ {'played':>6} {'leaked':>6}"
    )
    top = f"{'':<36} {'server':^13} │ {'with the gate':^18} │ {'no gate':^13}"
    lines = [top, head, "─" * len(head)]
    whys: list[str] = []
    for i, g in enumerate(gated):
        u = ungated[i] if ungated is not None and i < len(ungated) else None
        mark = ""
        if g.why:
            whys.append(g.why)
            mark = f"[{len(whys)}]"
        label = g.label
        if g.kind == "interrupt":
            label = f"{label} at {g.played_at_give_up:.2f}s"
        late = _s(g.sent_after_give_up) if g.kind != "normal" else "     -"
        row = (
            f"{g.step:<2} {label:<33} {_s(g.sent)} {late} │ {_s(g.played)} {_s(g.dropped):>7}"
            f" {mark:<3} │ "
        )
        row += f"{_s(u.played)} {_s(u.unwanted)}" if u is not None else "     -      -"
        lines.append(row)
    lines.append("─" * len(head))
    total_sent = sum(g.sent for g in gated)
    total_played = sum(g.played for g in gated)
    leaked_gate = sum(g.unwanted for g in gated)
    row = f"{'':<2} {'total':<33} {_s(total_sent)} {'':>6} │ {_s(total_played)} "
    row += f"{_s(total_sent - total_played):>7} {'':<3} │ "
    if ungated is not None:
        row += f"{_s(sum(u.played for u in ungated))} {_s(sum(u.unwanted for u in ungated))}"
    lines.append(row)
    lines.append("")
    lines.append(
        "late*: audio the server sent after the client gave up on the reply (its deadline passed"
    )
    lines.append("       or the user barged in): what an output that ignores response ids plays.")
    lines.append(
        f"leaked: audio played after giving up on the reply. With the gate: {leaked_gate:.2f}s."
    )
    for n, why in enumerate(whys, 1):
        lines.append(f"[{n}] dropped by the gate: {why}")
    if ungated is not None:
        for u in ungated:
            if u.why:
                lines.append(f"no gate, reply {u.step}: {u.why}")
    lines.extend(notes)
    return "\n".join(lines)
