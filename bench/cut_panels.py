"""Plot panels of the cut and scale sections: speaker, device floor, track CI, e2e, sessions.

Each panel draws one section's JSON data (as :mod:`bench.report` writes it) into one
matplotlib axis; :func:`bench.report.plot` lays them out.
"""

from __future__ import annotations

from typing import Any

__all__ = ["draw_e2e", "draw_floor", "draw_sessions", "draw_speaker", "draw_track_ci", "note"]


def note(ax: Any, text: str) -> None:
    """Write ``text`` in the middle of an empty panel."""
    ax.text(0.5, 0.5, text, ha="center", va="center", wrap=True, transform=ax.transAxes)
    ax.set_xticks([])
    ax.set_yticks([])


def draw_speaker(ax: Any, data: dict[str, Any]) -> None:
    """Cancel-to-silence at the speaker per output: device buffer + what came after, p95."""
    if "skipped" in data:
        note(ax, f"speaker: not measured\n{data['skipped']}")
        return
    outs = {k: v for k, v in data["outputs"].items() if v.get("n")}
    if not outs:
        note(ax, "speaker: no valid trial")
        return
    names = list(outs)
    dev = [outs[n]["in_flight_ms"]["p50"] for n in names]
    after = [outs[n]["after_flag_ms"]["p50"] for n in names]
    ys = range(len(names))
    ax.barh(ys, dev, 0.5, color="tab:gray", label="device buffer at the flag (p50)")
    ax.barh(ys, after, 0.5, left=dev, color="tab:red", label="flagged audio after the flag (p50)")
    for y, n in zip(ys, names, strict=True):
        p95 = outs[n]["cancel_to_silence_ms"]["p95"]
        ax.plot([p95], [y], "k|", markersize=16)
        ax.text(p95 * 1.15, y, f"p95 {p95:.1f} ms", fontsize=7, va="center")
    if any(n.endswith("_low") for n in names):
        ax.axvline(data.get("target_ms", 20.0), color="k", linestyle="--", label="low-latency goal")
    labels = {
        "gated": "gated, 10 ms blocks",
        "ungated": "ungated, 10 ms blocks",
        "gated_low": "gated, low-latency mode",
        "ungated_low": "ungated, low-latency mode",
    }
    ax.set_yticks(list(ys), [labels.get(n, n) for n in names], fontsize=7)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlim(1, max(o["cancel_to_silence_ms"]["p95"] for o in outs.values()) * 40)
    ax.set_xlabel("flag -> last flagged sample leaves the device, ms (log)")
    ax.set_title("Cancel-to-silence at the speaker (PortAudio test device)\nbars = p50, tick = p95")
    ax.legend(fontsize=6, loc="center right")  # right of the longest bar (log axis)


def draw_floor(ax: Any, data: dict[str, Any]) -> None:
    """The device buffer per block size, underflows marked, and the gated cut beside it."""
    sweep = data.get("floor_sweep") or []
    if "skipped" in data or not sweep:
        note(ax, "device floor: not measured")
        return
    blocks = [r["block_ms"] * r["buffer_blocks"] for r in sweep]
    buf = [r["in_flight_ms"] for r in sweep]
    bad = [r["device_underflows"] + r["sink_underruns"] > 0 for r in sweep]
    ax.plot(blocks, buf, "-o", color="tab:gray", label="device buffer p50 (steady play)")
    ax.plot(
        [b for b, x in zip(blocks, bad, strict=True) if x],
        [v for v, x in zip(buf, bad, strict=True) if x],
        "rx",
        markersize=10,
        label="underflowed",
    )
    floor = data.get("floor")
    if floor is not None:
        ax.axhline(floor["in_flight_ms"], color="tab:green", linestyle=":", label="floor")
    low = data["outputs"].get("gated_low", {})
    if low.get("n"):
        low_set = data["settings"]["low_latency"]
        buffer_ms = low_set["latency"] * 1e3
        p95 = low["cancel_to_silence_ms"]["p95"]
        ax.plot([buffer_ms], [p95], "b*", markersize=12, label=f"gated cut p95 ({p95:.1f} ms)")
    ax.set_xscale("log")
    ax.set_xlabel("PortAudio buffer asked for, ms (block x blocks)")
    ax.set_ylabel("ms")
    ax.set_title("The device's floor: smallest stable buffer\nvs the low-latency mode's cut")
    ax.legend(fontsize=7)


def draw_track_ci(ax: Any, data: dict[str, Any]) -> None:
    """The gate's added cut at the track per adapter: mean and bootstrap 95 % CI."""
    added = data.get("added_ms") or {}
    if not added:
        note(ax, "added cut latency: not measured")
        return
    names = list(added)
    for y, n in enumerate(names):
        ci = added[n]
        ax.errorbar(
            [ci["mean"]],
            [y],
            xerr=[[ci["mean"] - ci["lo"]], [ci["hi"] - ci["mean"]]],
            fmt="o",
            color="tab:blue",
            capsize=5,
        )
        ax.text(
            ci["hi"] + 0.01,
            y,
            f"{ci['mean']:+.3f} [{ci['lo']:+.3f}, {ci['hi']:+.3f}] ms, n={ci['n']}",
            fontsize=7,
            va="bottom",
        )
    ax.axvline(0.0, color="k", linewidth=0.6)
    ax.axvline(0.1, color="k", linestyle="--", label="goal: CI below +0.1 ms")
    ax.set_yticks(range(len(names)), [n.split(", ", 1)[1] for n in names], fontsize=7)
    ax.set_ylim(-0.7, len(names) - 0.3)
    ax.set_xlim(-0.3, 0.4)
    ax.set_xlabel("gated - LiveKit's own clear, ms (paired trials)")
    ax.set_title("Added cut latency at the track\nmean, bootstrap 95 % CI")
    ax.legend(fontsize=7, loc="lower right")


def draw_e2e(ax: Any, data: dict[str, Any]) -> None:
    """Server event -> last sample at the listener, p95 per kind, gate vs LiveKit alone."""
    from bench.e2e_cut import KINDS

    kinds = data.get("kinds") or {}
    if not kinds:
        note(ax, "e2e: not measured")
        return
    keys = list(kinds)
    h = 0.38
    for j, (who, color, label) in enumerate(
        (("gate", "tab:green", "with the gate"), ("livekit_alone", "tab:red", "LiveKit alone"))
    ):
        pos = [y + (j - 0.5) * h for y in range(len(keys))]
        for p, k in zip(pos, keys, strict=True):
            r = kinds[k].get(who)
            if r is None or "latency_ms" not in r:
                continue
            v = r["latency_ms"]["p95"]
            ax.barh([p], [max(v, 0.05)], h, color=color, label=label if p == pos[0] else None)
            ax.text(max(v, 0.05) * 1.2, p, f"{v:.1f} ms", va="center", fontsize=7)
    ax.axvline(10.0, color="k", linestyle="--", label="goal: one 10 ms frame")
    ax.set_yticks(range(len(keys)), [KINDS[k][0].split(" (")[0] for k in keys], fontsize=7)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlim(0.05, 5000)
    ax.set_xlabel("server event -> last sample of the reply at the listener, p95 ms (log)")
    ax.set_title("Cut end to end through a real track\n(AgentSession + plugin + simulator)")
    ax.legend(fontsize=7, loc="lower right")


def draw_sessions(ax: Any, data: dict[str, Any]) -> None:
    """Sessions holding real time per N, and CPU per session-second, gated vs ungated."""
    runs = data.get("runs")
    if not runs:
        note(ax, "sessions: not measured")
        return
    for kind, color in (("gated", "tab:blue"), ("ungated", "tab:orange")):
        rs = runs[kind]
        ax.plot(
            [r["n"] for r in rs],
            [r["sessions_held"] / r["n"] for r in rs],
            "-o",
            color=color,
            label=f"{kind}: largest N held {data['largest'][kind]}",
        )
    ax.set_ylim(-0.05, 1.1)
    ax.set_xlabel("concurrent sessions N")
    ax.set_ylabel("share of sessions holding real time")
    cpu = data["cpu_ms_per_session_s"]
    ax.set_title(
        f"Sessions per worker: ratio {data['ratio']:.2f} (goal >= 0.95)\n"
        f"CPU per session-second: gated {cpu['gated']:.0f} ms, ungated {cpu['ungated']:.0f} ms"
    )
    ax.legend(fontsize=7, loc="lower left")
