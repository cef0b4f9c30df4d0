"""The benchmark's outputs: a text table, a JSON file and a PNG plot."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench.results import Section, Table

__all__ = ["format_text", "plot", "to_json", "write_json"]


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
    out += ["", "== Targets (issue 7) ==", *_table(targets)[1:]]
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


def _note(ax: Any, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", wrap=True, transform=ax.transAxes)
    ax.set_xticks([])
    ax.set_yticks([])


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
    ax.set_ylim(0, 360)
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
    ax.set_ylim(0, 360)
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
    ax.set_ylim(0, 360)
    ax.set_title(f"admit() vs concurrent generations\n{kind}, 0 tombstones")
    ax.legend(fontsize=7, loc="lower right")


def _memory(ax: Any, data: dict[str, Any]) -> None:
    session, records = data["session"], data["records"]
    curve = [p for p in session["curve"] if p["generations"] > 0]
    xs = [p["generations"] for p in curve]
    ax.plot(xs, [p["admit_ns"] for p in curve], "b-o", markersize=3, label="admit pass, ns")
    ax.plot(xs, [p["noop_ns"] for p in curve], "c-.", label="do-nothing call, ns")
    ax.set_xscale("log")
    ax.set_ylim(0, 200)
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
    ax.set_xticks(range(1, len(names) + 1), [n.replace(", ", "\n") for n in names], fontsize=7)
    ax.set_ylabel("flag -> last flagged sample out, ms")
    ax.set_ylim(-1, max(12.0, max(max(v) for v in values) * 1.1))
    ax.set_title("Cancel-to-silence at the track\n(box 25-75 %, whiskers 5-95 %)")
    ax.legend(fontsize=7)


def _targets(ax: Any, sections: list[Section]) -> None:
    ax.axis("off")
    ax.set_title("Targets (issue 7)")
    y = 0.95
    colors = {True: "tab:green", False: "tab:red", None: "tab:gray"}
    for section in sections:
        for t in section.targets:
            mark = {True: "MET", False: "MISSED", None: "TODO"}[t.met]
            ax.text(
                0.0,
                y,
                f"{mark:6s} {t.name}\n       {t.limit}: {t.measured}",
                color=colors[t.met],
                fontsize=7,
                family="monospace",
                va="top",
                transform=ax.transAxes,
            )
            y -= 0.12
        if section.todo:
            ax.text(
                0.0,
                y,
                f"TODO   {section.title}",
                color="tab:gray",
                fontsize=7,
                family="monospace",
                va="top",
                transform=ax.transAxes,
            )
            y -= 0.07


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

    by_key = {s.key: s for s in sections if not s.todo}
    panels = [
        ("overhead", _frames),
        ("overhead", _tombstones),
        ("overhead", _live),
        ("memory", _memory),
        ("track", _track),
    ]
    fig, axes = plt.subplots(2, 3, figsize=(18, 10.5))
    for ax, (key, draw) in zip(axes.flat, panels, strict=False):
        if key in by_key:
            draw(ax, by_key[key].data)
        else:
            _note(ax, f"{key}: not run")
    _targets(axes.flat[5], sections)
    fig.suptitle(f"playback-gate bench\n{subtitle}", fontsize=12)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
