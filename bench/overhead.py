"""Section 1: the gate's per-frame cost, ``admit`` pass and drop, against a do-nothing call.

Every case is timed as 8 unrolled calls per loop iteration, interleaved with
its own baseline (the same 8 calls to a do-nothing method of the same
signature) and with the physical floor (a bare dict lookup plus an attribute
read), all in one shuffled round; figures are medians over rounds of per-call
nanoseconds, the loop's own cost subtracted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bench.results import Section, Table, Target, fmt, fmt_spread, jsonify
from bench.timing import Probe, Spread, Tick, interleave, paired

__all__ = ["FRAMES", "TOMBSTONES", "OverheadPlan", "run_overhead"]

UNROLL = 8
TARGET_NS = 300.0
FRAME_PERIOD_NS = 10_000_000.0  # a 10 ms frame
TARGET_SHARE = 1e-4  # 0.01 % of the frame period
TARGET_RATIO = 1.2
TOMBSTONES = (0, 1_000, 100_000)
LIVE = tuple(range(1, 9))
SWEEP_FRAME = "rtc48k_10ms"

#: Frame kind -> (sample rate, samples per channel, LiveKit frame?).
FRAMES: dict[str, tuple[int, int, bool]] = {
    "pcm24k_10ms": (24_000, 240, False),
    "pcm24k_20ms": (24_000, 480, False),
    "rtc48k_10ms": (48_000, 480, True),
    "rtc48k_20ms": (48_000, 960, True),
}


@dataclass(frozen=True, slots=True)
class OverheadPlan:
    """How hard to measure.

    Attributes:
        rounds: Interleaved rounds.
        number: Loop iterations (of 8 calls) per probe per round.
    """

    rounds: int
    number: int


class _Noop:
    """The baseline: a bound method with ``admit``'s signature that does nothing."""

    __slots__ = ()

    def admit(self, generation_id: str, frame: object) -> bool:
        return True


class _Floor:
    """The floor: a method doing only what any gate must, one dict lookup and one read."""

    __slots__ = ("_generations", "_live")

    def __init__(self, generations: dict[str, Any], live: object) -> None:
        self._generations = generations
        self._live = live

    def admit(self, generation_id: str, frame: object) -> bool:
        return self._generations.get(generation_id).state is self._live  # type: ignore[union-attr]


def _frame(kind: str) -> object:
    import numpy as np

    rate, samples, is_rtc = FRAMES[kind]
    if is_rtc:
        from livekit import rtc

        return rtc.AudioFrame.create(rate, 1, samples)
    from gate import PcmFrame

    return PcmFrame(np.zeros(samples, dtype=np.int16), rate)


def _gate(rate: int, tombstones: int) -> tuple[Any, list[str], list[str]]:
    """A gate holding ``tombstones`` finished generations, 8 live and 8 flagged ones."""
    from gate import AudioFormat, DropReason, PlaybackGate

    gate = PlaybackGate(
        audio_format=AudioFormat(rate), max_live=64, max_tombstones=max(10_000, tombstones + 64)
    )
    for i in range(tombstones):  # history: half retired, half interrupted
        gid = f"resp_hist{i:017d}"
        if i % 2:
            gate.flag(gid, DropReason.INTERRUPTED)
        else:
            gate.retire(gid)
    live = [f"resp_live{j:017d}" for j in range(8)]
    dropped = [f"resp_drop{j:017d}" for j in range(8)]
    for gid in live + dropped:
        gate.announce(gid)
    for gid in dropped:
        gate.flag(gid, DropReason.CANCELLED)
    assert gate.stats().tombstones == tombstones + 8
    return gate, live, dropped


def _stmt(k: int) -> str:
    return "; ".join(f"admit(g{j % k}, f)" for j in range(UNROLL))


def _pair(name: str, admit: Any, noop: Any, ids: list[str], k: int, frame: object) -> list[Probe]:
    ns = {f"g{j}": ids[j] for j in range(k)} | {"f": frame}
    return [
        Probe(name, _stmt(k), ns | {"admit": admit}, UNROLL),
        Probe(name + ":base", _stmt(k), ns | {"admit": noop}, UNROLL),
    ]


def run_overhead(plan: OverheadPlan, tick: Tick | None = None) -> Section:
    """Measure ``admit`` against its baseline and floor.

    Args:
        plan: Rounds and loop sizes.
        tick: Progress callback, called once per round.

    Returns:
        The section, with ``data["cases"]`` keyed ``mode/frame/tombstones/live``.
    """
    from gate import GenerationState

    noop = _Noop().admit
    probes: list[Probe] = [Probe("loop", "pass", {}, UNROLL)]
    gates: dict[tuple[int, int], tuple[Any, list[str], list[str]]] = {}
    for kind, (rate, _, _) in FRAMES.items():
        frame = _frame(kind)
        for tomb in TOMBSTONES:
            if (rate, tomb) not in gates:
                gates[rate, tomb] = _gate(rate, tomb)
            gate, live, dropped = gates[rate, tomb]
            lives = LIVE if (kind == SWEEP_FRAME and tomb == 0) else (1,)
            for k in lives:
                for mode, ids in (("pass", live), ("drop", dropped)):
                    probes += _pair(f"{mode}/{kind}/{tomb}/{k}", gate.admit, noop, ids, k, frame)
    gate, live, _ = gates[48_000, 0]
    floor_ns = {"g0": live[0], "f": _frame(SWEEP_FRAME), "d": gate._generations}
    inline = "; ".join(["d.get(g0).state"] * UNROLL)
    probes.append(Probe("floor_inline", inline, floor_ns, UNROLL))
    fields = "; ".join(["f.samples_per_channel; f.sample_rate; f.num_channels"] * UNROLL)
    for kind in ("pcm24k_10ms", SWEEP_FRAME):
        probes.append(Probe(f"fields/{kind}", fields, {"f": _frame(kind)}, UNROLL))
    floor = _Floor(gate._generations, GenerationState.LIVE).admit
    probes.append(Probe("floor_call", _stmt(1), floor_ns | {"admit": floor}, UNROLL))

    raw = interleave(probes, rounds=plan.rounds, number=plan.number, tick=tick)
    return _section(raw, plan)


def _section(raw: dict[str, list[float]], plan: OverheadPlan) -> Section:
    loop = raw["loop"]

    def net(name: str) -> list[float]:
        return [v - lo for v, lo in zip(raw[name], loop, strict=True)]

    cases: dict[str, dict[str, Spread]] = {}
    for name in raw:
        if name.count("/") != 3 or name.endswith(":base"):
            continue
        value, base = net(name), net(name + ":base")
        cases[name] = {
            "admit_ns": Spread.of(value),
            "noop_ns": Spread.of(base),
            "added_ns": paired(value, base, lambda a, b: a - b),
            "ratio_to_noop": paired(value, base, lambda a, b: a / b),
        }
    floors = {
        "loop_ns": Spread.of(loop),
        "floor_inline_ns": Spread.of(net("floor_inline")),
        "floor_call_ns": Spread.of(net("floor_call")),
        "fields_pcm_ns": Spread.of(net("fields/pcm24k_10ms")),
        "fields_rtc_ns": Spread.of(net(f"fields/{SWEEP_FRAME}")),
    }
    ratios: dict[str, Spread] = {}
    for mode in ("pass", "drop"):
        for kind in FRAMES:
            zero = net(f"{mode}/{kind}/0/1")
            for tomb in TOMBSTONES[1:]:
                key = f"{mode}/{kind}/{tomb}"
                ratios[key] = paired(net(f"{key}/1"), zero, lambda a, b: a / b)

    section = Section(
        key="overhead",
        title="Gate per-frame overhead: admit() vs a do-nothing call",
        data=jsonify(
            {
                "unit": "ns per call",
                "rounds": plan.rounds,
                "calls_per_round": plan.number * UNROLL,
                "cases": cases,
                "floors": floors,
                "tombstone_ratios": ratios,
            }
        ),
    )
    _tables(section, cases, floors, ratios)
    _targets(section, cases, ratios)
    section.notes += [
        f"{plan.rounds} interleaved rounds x {plan.number * UNROLL} calls per probe; "
        "median [p25-p75] over rounds, ns per call, loop cost subtracted; gc off (timeit).",
        "added = admit - do-nothing call, paired per round; x noop = admit / do-nothing call.",
        "tombstones = history (half retired, half flagged) besides the 8 live and 8 flagged "
        "generations measured; live k = frames of k generations interleaved.",
    ]
    return section


def _tables(
    section: Section,
    cases: dict[str, dict[str, Spread]],
    floors: dict[str, Spread],
    ratios: dict[str, Spread],
) -> None:
    main = Table(
        "admit() ns per call by frame and tombstones (1 live generation), median [p25-p75]",
        [
            "mode",
            "frame",
            "0 tomb",
            "1k tomb",
            "100k tomb",
            "noop",
            "added",
            "x noop",
            "100k/0",
        ],
    )
    for mode in ("pass", "drop"):
        for kind in FRAMES:
            c = [cases[f"{mode}/{kind}/{t}/1"] for t in TOMBSTONES]
            main.rows.append(
                [
                    mode,
                    kind,
                    *(fmt_spread(x["admit_ns"]) for x in c),
                    fmt(c[0]["noop_ns"].median),
                    fmt(c[0]["added_ns"].median),
                    fmt(c[0]["ratio_to_noop"].median, 2),
                    fmt(ratios[f"{mode}/{kind}/100000"].median, 3),
                ]
            )
    sweep = Table(
        f"admit() ns per call with k concurrent generations ({SWEEP_FRAME}, 0 tombstones)",
        ["k", "pass", "drop", "noop"],
    )
    for k in LIVE:
        p, d = cases[f"pass/{SWEEP_FRAME}/0/{k}"], cases[f"drop/{SWEEP_FRAME}/0/{k}"]
        sweep.rows.append(
            [
                str(k),
                fmt_spread(p["admit_ns"]),
                fmt_spread(d["admit_ns"]),
                fmt(p["noop_ns"].median),
            ]
        )
    floor = Table(
        "Physical floor, same run (ns per call)",
        ["what", "median [p25-p75]"],
        [
            ["loop iteration (subtracted)", fmt_spread(floors["loop_ns"], 2)],
            ["dict.get + attribute read, inline", fmt_spread(floors["floor_inline_ns"])],
            ["method doing dict.get + attribute read", fmt_spread(floors["floor_call_ns"])],
            ["read 3 frame fields, PcmFrame (slots)", fmt_spread(floors["fields_pcm_ns"])],
            [
                "read 3 frame fields, rtc.AudioFrame (properties)",
                fmt_spread(floors["fields_rtc_ns"]),
            ],
        ],
    )
    section.tables += [main, sweep, floor]


def _targets(
    section: Section, cases: dict[str, dict[str, Spread]], ratios: dict[str, Spread]
) -> None:
    worst = max(cases.items(), key=lambda kv: kv[1]["admit_ns"].median)
    worst_ns = worst[1]["admit_ns"].median
    section.targets.append(
        Target(
            "admit pass and drop, median, worst case",
            f"<= {TARGET_NS:.0f} ns",
            f"{worst_ns:.1f} ns ({worst[0]})",
            worst_ns <= TARGET_NS,
        )
    )
    share = worst_ns / FRAME_PERIOD_NS
    section.targets.append(
        Target(
            "admit share of a 10 ms frame period, worst case",
            f"<= {TARGET_SHARE * 100:.2f} %",
            f"{share * 100:.4f} %",
            share <= TARGET_SHARE,
        )
    )
    top = max(
        ((k, v) for k, v in ratios.items() if k.endswith("/100000")),
        key=lambda kv: kv[1].median,
    )
    section.targets.append(
        Target(
            "100k / 0 tombstones, median ratio, worst case",
            f"<= {TARGET_RATIO}",
            f"{top[1].median:.3f} ({top[0]})",
            top[1].median <= TARGET_RATIO,
        )
    )
