"""The benchmark's outputs: a text table, a JSON file and a PNG plot."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench.cut_panels import note
from bench.results import Section, Table

__all__ = ["format_text", "plot", "plot_json", "to_json", "write_json"]


def _table(table: Table) -> list[str]:
    rows = [table.headers, *table.rows]
    widths = [max(len(r[i]) for r in rows) for i in range(len(table.headers))]

    def line(cells: list[str]) -> str:
        first = cells[0].ljust(widths[0])
        rest = (c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True))
        return "  ".join([first, *rest]).rstrip()

    out = [table.title, line(table.headers), "  ".join("-" * w for w in widths)]
    out += [line(r) for r in table.rows]
    return out


def _verdict(met: bool | None) -> str:
    return {True: "met", False: "MISSED", None: "not measured"}[met]


def format_text(sections: list[Section]) -> str:
    """Render every section, then the targets, as plain text.

    Args:
        sections: The results.

    Returns:
        The report, ready to print.
    """
    out: list[str] = []
    for section in sections:
        out += ["", f"== {section.title} =="]
        if section.todo:
            out.append(f"TODO: {section.todo}")
        for table in section.tables:
            out += ["", *_table(table)]
        if section.notes:
            out += ["", *(f"  * {n}" for n in section.notes)]
    targets = Table("", ["target", "limit", "measured", "verdict"])
    for section in sections:
        for t in section.targets:
            targets.rows.append([t.name, t.limit, t.measured, _verdict(t.met)])
    out += ["", "== Targets ==", *_table(targets)[1:]]
    return "\n".join(out).lstrip("\n")


def to_json(sections: list[Section], meta: dict[str, Any]) -> dict[str, Any]:
    """Return the whole run as a JSON-ready dict.

    Args:
        sections: The results.
        meta: Run facts (command, machine, duration).

    Returns:
        ``{"meta": ..., "sections": {key: section}}``.
    """
    return {"meta": meta, "sections": {s.key: s.to_json() for s in sections}}


def write_json(path: Path, sections: list[Section], meta: dict[str, Any]) -> None:
    """Write :func:`to_json` to ``path``."""
    path.write_text(json.dumps(to_json(sections, meta), indent=2) + "\n")


# ---- the plot ---------------------------------------------------------------------

_MODES = {"pass": "tab:blue", "drop": "tab:red"}


def _top(cases: dict[str, Any]) -> float:
    """The admit panels' y limit: room for the 300 ns target and the slowest case."""
    return max(360.0, max(float(c["admit_ns"]["median"]) for c in cases.values()) * 1.15)


def _frames(ax: Any, data: dict[str, Any]) -> None:
    cases, floors = data["cases"], data["floors"]
    kinds = sorted({k.split("/")[1] for k in cases})
    width = 0.38
    for m, (mode, color) in enumerate(_MODES.items()):
        xs, ys, lo, hi = [], [], [], []
        for i, kind in enumerate(kinds):
            s = cases[f"{mode}/{kind}/0/1"]["admit_ns"]
            xs.append(i + (m - 0.5) * width)
            ys.append(s["median"])
            lo.append(s["median"] - s["p25"])
            hi.append(s["p75"] - s["median"])
        ax.bar(xs, ys, width, color=color, yerr=[lo, hi], capsize=3, label=f"admit {mode}")
        for x, y in zip(xs, ys, strict=True):
            ax.text(x, y / 2, f"{y:.0f}", ha="center", va="center", color="white", fontsize=8)
    noop = cases[f"pass/{kinds[0]}/0/1"]["noop_ns"]["median"]
    for value, label, style in (
        (300.0, "target 300 ns", "k--"),
        (floors["floor_call_ns"]["median"], "floor: method with dict.get + read", "g:"),
        (noop, "do-nothing call (baseline)", "c-."),
    ):
        ax.axhline(value, 0, 1, color=style[0], linestyle=style[1:], label=f"{label} ({value:.0f})")
    ax.set_xticks(range(len(kinds)), [k.replace("_", "\n") for k in kinds])
    ax.set_ylabel("ns per call")
    ax.set_ylim(0, _top(data["cases"]))
    ax.set_title("admit() per frame, 0 tombstones, 1 live\nmedian, bars = p25-p75")
    ax.legend(fontsize=7, loc="upper left")


def _tombstones(ax: Any, data: dict[str, Any]) -> None:
    cases, ratios = data["cases"], data["tombstone_ratios"]
    levels = sorted({int(k.split("/")[2]) for k in cases})
    kinds = sorted({k.split("/")[1] for k in cases})
    for mode, color in _MODES.items():
        for kind in kinds:
            ys = [cases[f"{mode}/{kind}/{t}/1"]["admit_ns"]["median"] for t in levels]
            rtc = kind.startswith("rtc")
            label = f"{mode}, {'rtc.AudioFrame 48k' if rtc else 'PcmFrame 24k'}"
            ax.plot(
                range(len(levels)),
                ys,
                "-" if rtc else "--",
                color=color,
                marker="o",
                markersize=3,
                alpha=0.8,
                label=label if kind.endswith("10ms") else None,  # 20 ms: same style
            )
    worst = max(v["median"] for k, v in ratios.items() if k.endswith("/100000"))
    ax.axhline(300.0, color="k", linestyle="--", label="target 300 ns")
    ax.set_xticks(range(len(levels)), [f"{t:,}" for t in levels])
    ax.set_xlabel("tombstones held")
    ax.set_ylabel("ns per call")
    ax.set_ylim(0, _top(data["cases"]))
    ax.set_title(f"admit() vs history size\nworst 100k/0 ratio {worst:.3f} (target <= 1.2)")
    ax.legend(fontsize=7, ncol=2, loc="lower right", title="10 and 20 ms frames", title_fontsize=7)


def _live(ax: Any, data: dict[str, Any]) -> None:
    cases = data["cases"]
    sweep = sorted({(k.split("/")[1], int(k.split("/")[3])) for k in cases if not k.endswith("/1")})
    kind = sweep[0][0]
    ks = [1, *sorted({k for _, k in sweep})]
    for mode, color in _MODES.items():
        s = [cases[f"{mode}/{kind}/0/{k}"]["admit_ns"] for k in ks]
        ax.plot(ks, [x["median"] for x in s], color=color, marker="o", label=f"admit {mode}")
        ax.fill_between(ks, [x["p25"] for x in s], [x["p75"] for x in s], color=color, alpha=0.2)
    noop = [cases[f"pass/{kind}/0/{k}"]["noop_ns"]["median"] for k in ks]
    ax.plot(ks, noop, "c-.", label="do-nothing call")
    ax.axhline(300.0, color="k", linestyle="--", label="target 300 ns")
    ax.set_xlabel("concurrent generations (frames interleaved)")
    ax.set_ylabel("ns per call")
    ax.set_ylim(0, _top(data["cases"]))
    ax.set_title(f"admit() vs concurrent generations\n{kind}, 0 tombstones")
    ax.legend(fontsize=7, loc="lower right")


def _memory(ax: Any, data: dict[str, Any]) -> None:
    session, records = data["session"], data["records"]
    curve = [p for p in session["curve"] if p["generations"] > 0]
    xs = [p["generations"] for p in curve]
    ax.plot(xs, [p["admit_ns"] for p in curve], "b-o", markersize=3, label="admit pass, ns")
    ax.plot(xs, [p["noop_ns"] for p in curve], "c-.", label="do-nothing call, ns")
    ax.set_xscale("log")
    ax.set_ylim(0, max(200.0, max(p["admit_ns"] for p in curve) * 1.3))
    ax.set_xlabel("generations so far in one session")
    ax.set_ylabel("ns per call")
    rss = ax.twinx()
    rss.plot(xs, [p["rss_mb"] for p in curve], color="tab:orange", label="process RSS, MB")
    top = max(p["rss_mb"] for p in curve)
    rss.set_ylim(0, top * 1.3)
    rss.set_ylabel("RSS, MB", color="tab:orange")
    ax.set_title(
        f"Long session: {session['generations']:,} generations\n"
        f"{records['tombstone_bytes']:.0f} B/tombstone, "
        f"RSS +{session['rss_growth_mb']:.1f} MB (peak {session['rss_peak_mb']:.0f} MB)"
    )
    lines = ax.get_legend_handles_labels()
    more = rss.get_legend_handles_labels()
    ax.legend(lines[0] + more[0], lines[1] + more[1], fontsize=7, loc="lower left")


def _track(ax: Any, data: dict[str, Any]) -> None:
    chains = data["chains"]
    names = list(chains)
    values = [[r["latency_ms"] for r in chains[n]["raw"]] for n in names]
    ax.boxplot(values, whis=(5, 95), showfliers=True)
    for i, v in enumerate(values, start=1):
        ax.plot([i] * len(v), v, "k.", alpha=0.3, markersize=3)
        p95 = chains[names[i - 1]]["latency_ms"]["p95"]
        ax.annotate(
            f"p95 {p95:.2f} ms", (i, p95), xytext=(8, 4), textcoords="offset points", fontsize=7
        )
    ax.axhline(10.0, color="k", linestyle="--", label="target p95 10 ms (gated)")
    import textwrap

    labels = [textwrap.fill(n.replace("(queue_size_ms=", "(q="), 22) for n in names]
    ax.set_xticks(range(1, len(names) + 1), labels, fontsize=6)
    ax.set_ylabel("flag -> last flagged sample out, ms")
    ax.set_ylim(-1, max(12.0, max(max(v) for v in values) * 1.1))
    ax.set_title("Cancel-to-silence at the track\n(box 25-75 %, whiskers 5-95 %)")
    ax.legend(fontsize=7)


def _adapter(ax: Any, data: dict[str, Any]) -> None:
    # (label, spread of the added fraction, added ns, colour, hatch); horizontal bars, so
    # long labels never overlap
    bars: list[tuple[str, dict[str, Any], dict[str, Any], str, str]] = []
    if "source" in data:
        src = data["source"]
        bars += [
            (
                "rtc.AudioSource B vs A\n(A/A noise)",
                src["control_added_fraction"],
                src["control_added_ns"],
                "tab:gray",
                "",
            ),
            (
                "GatedAudioSource\nvs bare source",
                src["added_fraction"],
                src["added_ns"],
                "tab:blue",
                "",
            ),
        ]
    if "output" in data:
        out = data["output"]
        bars += [
            (
                "RoomIO output B vs A\n(A/A noise)",
                out["control_added_fraction"],
                out["control_added_ns"],
                "tab:gray",
                "",
            ),
            (
                "do-nothing io.AudioOutput\nwrapper vs bare output\n(floor of any wrapper)",
                out["floor_added_fraction"],
                out["floor_added_ns"],
                "tab:cyan",
                "",
            ),
            (
                "GatedAudioOutput\nvs bare output",
                out["added_fraction"],
                out["added_ns"],
                "tab:blue",
                "",
            ),
        ]
        if "gate_beyond_floor_fraction" in out:
            bars.append(
                (
                    "GatedAudioOutput vs the\ndo-nothing wrapper\n(the gate's own share)",
                    out["gate_beyond_floor_fraction"],
                    out["gate_beyond_floor_ns"],
                    "white",
                    "//",
                )
            )
    if not bars:
        note(ax, "adapter: not measured")
        return
    ys = [b[1]["median"] * 100 for b in bars]
    lo = [(b[1]["median"] - b[1]["p25"]) * 100 for b in bars]
    hi = [(b[1]["p75"] - b[1]["median"]) * 100 for b in bars]
    pos = range(len(bars))
    ax.barh(
        pos,
        ys,
        0.6,
        color=[b[3] for b in bars],
        edgecolor="tab:blue",
        hatch=[b[4] for b in bars],
        xerr=[lo, hi],
        capsize=3,
    )
    right = max(10.0, max(ys) * 1.45)
    for y, x, up, b in zip(pos, ys, hi, bars, strict=True):
        ax.text(
            max(x + up, 3.0) + right * 0.03,  # right of the bar, its error bar, the target
            y,
            f"{x:.1f} % ({b[2]['median']:.0f} ns)",
            va="center",
            fontsize=7,
        )
    ax.axvline(3.0, color="k", linestyle="--", label="target: 3 % added vs the bare chain")
    ax.axvline(0.0, color="k", linewidth=0.5)
    ax.set_yticks(list(pos), [b[0] for b in bars], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlim(min(-3.0, min(ys) - 2), right)
    ax.set_xlabel("added per frame, % of the chain compared with (the bare one unless stated)")
    ax.set_title("Adapter overhead per frame, median over rounds\nbars = p25-p75")
    ax.legend(fontsize=7, loc="lower right")


def _leaks(ax: Any, data: dict[str, Any]) -> None:
    from bench.leaks import SCENARIOS

    rows = data["scenarios"]
    keys = list(rows)
    ys = range(len(keys))
    h = 0.38
    for j, (who, color, label) in enumerate(
        (
            ("gate", "tab:green", "with the gate"),
            ("livekit_alone", "tab:red", "LiveKit Agents alone"),
        )
    ):
        vals = [rows[k][who].get("unwanted_samples", 0) / 24.0 for k in keys]
        pos = [y + (j - 0.5) * h for y in ys]
        ax.barh(pos, vals, h, color=color, label=label)
        for p, v, k in zip(pos, vals, keys, strict=True):
            text = "error" if "error" in rows[k][who] else f"{v:.0f} ms"
            ax.text(v + 5, p, text, va="center", fontsize=7)
    ax.set_yticks(list(ys), [SCENARIOS[k][0].replace(" (", "\n(") for k in keys], fontsize=7)
    ax.invert_yaxis()
    top = max(r[w].get("unwanted_samples", 0) / 24.0 for r in rows.values() for w in r)
    ax.set_xlim(0, max(top, 10.0) * 1.25)
    ax.set_xlabel("unwanted audio that left the track, ms (24 kHz samples / 24)")
    ax.set_title(
        "Leak scenarios: gate vs LiveKit Agents 1.8.9 alone\n"
        "(gate target: 0 beyond the frame in flight)"
    )
    ax.legend(fontsize=7, loc="lower right")


def _targets(ax: Any, sections: list[Section]) -> None:
    import textwrap

    ax.axis("off")
    ax.set_title("Targets (verdicts of this run)")
    colors = {True: "tab:green", False: "tab:red", None: "tab:gray"}
    lines: list[tuple[str, str]] = []  # (text, colour), one entry per target
    for section in sections:
        for t in section.targets:
            mark = {True: "MET", False: "MISSED", None: "N/A"}[t.met]
            name = textwrap.wrap(t.name, 90)
            body = textwrap.wrap(f"{t.limit}: {t.measured}", 90)
            text = "\n".join([f"{mark:6s} {name[0]}", *(f"       {b}" for b in [*name[1:], *body])])
            lines.append((text, colors[t.met]))
        if section.todo:
            lines.append((f"TODO   {section.title}", "tab:gray"))
    heights = [t.count("\n") + 2 for t, _ in lines]  # its lines and a blank one
    half = sum(heights) / 2
    step = min(1.0 / max(half + 2, 1), 0.035)  # one text line, in axes fraction
    x, y, used = 0.0, 1.0, 0
    for (text, color), h in zip(lines, heights, strict=True):
        if x == 0.0 and used >= half:  # the second column
            x, y = 0.5, 1.0
        ax.text(
            x,
            y,
            text,
            color=color,
            fontsize=8,
            family="monospace",
            va="top",
            transform=ax.transAxes,
        )
        y -= step * h
        used += h


def plot(path: Path, sections: list[Section], subtitle: str) -> None:
    """Draw every section with data into one PNG.

    Args:
        path: Where to write the PNG.
        sections: The results.
        subtitle: A line under the title (machine, mode).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from bench.cut_panels import draw_e2e, draw_floor, draw_sessions, draw_speaker, draw_track_ci

    by_key = {s.key: s for s in sections if not s.todo}
    panels = {
        "A": ("overhead", _frames),
        "B": ("overhead", _tombstones),
        "C": ("overhead", _live),
        "D": ("memory", _memory),
        "E": ("adapter", _adapter),
        "F": ("track", _track),
        "G": ("track", draw_track_ci),
        "H": ("e2e", draw_e2e),
        "I": ("speaker", draw_speaker),
        "J": ("speaker", draw_floor),
        "K": ("sessions", draw_sessions),
        "L": ("leaks", _leaks),
    }
    fig, axes = plt.subplot_mosaic(
        [["A", "B", "C", "D"], ["E", "F", "G", "H"], ["I", "J", "K", "L"], ["T", "T", "T", "T"]],
        figsize=(26, 24),
        height_ratios=[1, 1, 1, 1.1],
    )
    for slot, (key, draw) in panels.items():
        if key in by_key:
            draw(axes[slot], by_key[key].data)
        else:
            note(axes[slot], f"{key}: not run")
    _targets(axes["T"], sections)
    fig.suptitle(f"playback-gate bench\n{subtitle}", fontsize=12)
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_json(json_path: Path, png_path: Path) -> None:
    """Redraw the PNG of a run from its JSON file (same figures, e.g. after a plot fix).

    Args:
        json_path: A file written by ``--json``.
        png_path: Where to write the PNG.
    """
    from bench.results import Target

    run = json.loads(json_path.read_text())
    sections = [
        Section(
            key=key,
            title=sec["title"],
            targets=[Target(**t) for t in sec["targets"]],
            data=sec["data"],
            notes=sec["notes"],
            todo=sec["todo"],
        )
        for key, sec in run["sections"].items()
    ]
    meta = run["meta"]
    subtitle = (
        f"{meta['mode']} run, {meta['seconds']:.0f} s, CPython {meta['python']} on "
        f"{meta['machine']}, {meta['cpus']} CPUs (shared), {meta['started']}"
    )
    plot(png_path, sections, subtitle)
