"""Smoke test of ``playback-gate bench --quick``: it runs, and its outputs have the right shape.

Nothing here asserts on timing: the machines are shared and noisy.
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from typing import Any

import pytest

from bench.adapter import gated_source_class
from bench.cli import COMMAND, SECTIONS
from bench.leaks import SCENARIOS
from bench.output_adapter import gated_output_class
from bench.overhead import FRAMES, TOMBSTONES
from gate.cli import build_parser

pytestmark = pytest.mark.timeout(120)

Run = tuple[dict[str, Any], Path, str]  # the JSON, the PNG's path, the printed table


def _run(argv: list[str]) -> int:
    parser = build_parser([COMMAND])
    args = parser.parse_args(argv)
    code: int = args.handler(args)
    return code


def _positive_spread(spread: dict[str, float]) -> None:
    assert set(spread) >= {"median", "p25", "p75", "min", "max", "n"}
    assert spread["n"] >= 1
    assert 0 < spread["min"] <= spread["p25"] <= spread["median"] <= spread["p75"] <= spread["max"]


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    out = tmp_path_factory.mktemp("bench")
    json_path, png_path = out / "bench.json", out / "bench.png"
    text = io.StringIO()
    with contextlib.redirect_stdout(text):
        code = _run(
            ["bench", "--quick", "--no-progress", "--json", str(json_path), "--plot", str(png_path)]
        )
    assert code == 0
    return json.loads(json_path.read_text()), png_path, text.getvalue()


def test_json_has_every_section_and_the_run_facts(quick_run: Run) -> None:
    data, _, _ = quick_run
    assert set(data["sections"]) == set(SECTIONS)
    meta = data["meta"]
    assert meta["mode"] == "quick"
    assert meta["seconds"] > 0
    assert meta["command"].startswith("playback-gate bench --quick")
    for section in data["sections"].values():
        for target in section["targets"]:
            assert set(target) == {"name", "limit", "measured", "met"}
            assert target["met"] in (True, False, None)


def test_overhead_covers_every_case_with_positive_figures(quick_run: Run) -> None:
    data, _, _ = quick_run
    overhead = data["sections"]["overhead"]["data"]
    cases = overhead["cases"]
    for mode in ("pass", "drop"):
        for kind in FRAMES:
            for tomb in TOMBSTONES:
                case = cases[f"{mode}/{kind}/{tomb}/1"]
                _positive_spread(case["admit_ns"])
                _positive_spread(case["noop_ns"])
                _positive_spread(case["ratio_to_noop"])
        for k in range(1, 9):
            _positive_spread(cases[f"{mode}/rtc48k_10ms/0/{k}"]["admit_ns"])
    for name in ("floor_inline_ns", "floor_call_ns", "fields_pcm_ns", "fields_rtc_ns"):
        _positive_spread(overhead["floors"][name])
    assert len(overhead["tombstone_ratios"]) == 2 * len(FRAMES) * (len(TOMBSTONES) - 1)
    for ratio in overhead["tombstone_ratios"].values():
        _positive_spread(ratio)
    met = [t["met"] for t in data["sections"]["overhead"]["targets"]]
    assert len(met) == 3 and None not in met


def test_memory_reports_records_and_a_growing_session(quick_run: Run) -> None:
    data, _, _ = quick_run
    memory = data["sections"]["memory"]["data"]
    records = memory["records"]
    assert records["tombstone_bytes"] > 0 and records["dict_of_ids_bytes"] > 0
    assert records["tombstone_with_request_bytes"] > records["tombstone_bytes"]
    session = memory["session"]
    assert session["rss_peak_mb"] >= session["rss_start_mb"] > 0
    curve = session["curve"]
    assert curve[0]["generations"] == 0
    assert curve[-1]["generations"] == session["generations"]
    assert [p["generations"] for p in curve] == sorted({p["generations"] for p in curve})
    assert all(p["admit_ns"] > 0 and p["noop_ns"] > 0 and p["rss_mb"] > 0 for p in curve)
    # the default bounds hold: the session ends with at most 10,000 tombstones
    assert curve[-1]["tombstones"] <= 10_000 < session["generations"]


def test_track_measures_the_livekit_baselines(quick_run: Run) -> None:
    data, _, _ = quick_run
    chains = data["sections"]["track"]["data"]["chains"]
    expected = 1 + (gated_source_class() is not None) + 2 * (gated_output_class() is not None)
    assert len(chains) == expected
    if gated_output_class() is not None:
        assert any("clear_buffer()" in name for name in chains)
    for result in chains.values():
        assert result["trials"] == len(result["raw"]) > 0
        lat = result["latency_ms"]
        assert 0 <= lat["p50"] <= lat["p95"] <= lat["max"]
        assert all(r["latency_ms"] >= 0 and r["leaked_ms"] >= 0 for r in result["raw"])


def test_adapter_section_measures_both_adapters_or_says_why_not(quick_run: Run) -> None:
    data, _, _ = quick_run
    adapter = data["sections"]["adapter"]
    assert adapter["todo"] is None
    assert [t["name"] for t in adapter["targets"]] == [
        "gated room source, added per frame",
        "gated io.AudioOutput, added per frame",
    ]
    for key, available in (("source", gated_source_class()), ("output", gated_output_class())):
        if available is None:
            assert key not in adapter["data"]
            continue
        for name in ("bare_ns", "control_ns", "gated_ns"):
            _positive_spread(adapter["data"][key][name])
    if gated_output_class() is not None:
        output = adapter["data"]["output"]
        _positive_spread(output["floor_ns"])
        for name in ("gate_beyond_floor_ns", "gate_beyond_floor_fraction"):  # may be < 0
            spread = output[name]
            assert spread["min"] <= spread["p25"] <= spread["median"] <= spread["p75"]
        assert all(t["met"] is not None for t in adapter["targets"])
        # the gate's own share is reported beside the verdict, which stays vs the bare chain
        assert "vs a do-nothing wrapper" in adapter["targets"][1]["measured"]
        assert adapter["targets"][1]["limit"].endswith("of the bare chain")


def test_speaker_is_measured_on_the_device_or_reports_why_not(quick_run: Run) -> None:
    data, _, text = quick_run
    speaker = data["sections"]["speaker"]
    (target,) = speaker["targets"]
    if "skipped" in speaker["data"]:
        # no device: a stated reason, never a number
        assert target["met"] is None and target["measured"].startswith("not measured: ")
        assert "not measured: " in text
        return
    outputs = speaker["data"]["outputs"]
    assert set(outputs) == {"gated", "ungated"}
    for result in outputs.values():
        assert result["n"] + result["invalid"] == 4  # --quick: 4 flags per output
        for trial in result["trials"]:
            assert trial["in_flight_ms"] >= 0 and trial["after_flag_ms"] >= 0
            assert trial["cancel_to_silence_ms"] >= trial["in_flight_ms"]
        if result["n"]:
            c = result["cancel_to_silence_ms"]
            assert c["p50"] <= c["p95"] <= c["max"]
    assert target["met"] in (True, False, None)


def test_leaks_run_the_quick_scenarios_gated_and_alone(quick_run: Run) -> None:
    data, _, _ = quick_run
    leaks = data["sections"]["leaks"]
    scenarios = leaks["data"]["scenarios"]
    assert set(scenarios) == {k for k, s in SCENARIOS.items() if s[4]}
    for result in scenarios.values():
        assert set(result) == {"gate", "livekit_alone"}
        for run in result.values():
            assert "error" in run or 0 <= run["unwanted_samples"] <= run["sent_samples"]
    assert any("--quick runs" in note for note in leaks["notes"])
    (target,) = leaks["targets"]
    assert target["met"] in (True, False, None)


def test_table_and_plot_are_written(quick_run: Run) -> None:
    _, png, text = quick_run
    assert "== Targets ==" in text
    assert "admit() ns per call" in text
    with png.open("rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    assert png.stat().st_size > 20_000
