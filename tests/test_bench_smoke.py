"""Smoke test of ``playback-gate bench --quick``: it runs, and its outputs have the right shape.

Nothing here asserts on timing: the machines are shared and noisy.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
from pathlib import Path
from typing import Any

import pytest

from bench.adapter import gated_source_class
from bench.cli import SECTIONS, register
from bench.overhead import FRAMES, TOMBSTONES

pytestmark = pytest.mark.timeout(120)

Run = tuple[dict[str, Any], Path, str]  # the JSON, the PNG's path, the printed table


def _run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="playback-gate")
    register(parser.add_subparsers())
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


def test_track_measures_the_livekit_baseline(quick_run: Run) -> None:
    data, _, _ = quick_run
    chains = data["sections"]["track"]["data"]["chains"]
    expected = 2 if gated_source_class() is not None else 1
    assert len(chains) == expected
    for result in chains.values():
        assert result["trials"] == len(result["raw"]) > 0
        lat = result["latency_ms"]
        assert 0 <= lat["p50"] <= lat["p95"] <= lat["max"]
        assert all(r["latency_ms"] >= 0 and r["leaked_ms"] >= 0 for r in result["raw"])


def test_adapter_section_is_measured_or_marked_todo(quick_run: Run) -> None:
    data, _, _ = quick_run
    adapter = data["sections"]["adapter"]
    if gated_source_class() is None:
        assert adapter["todo"]
        assert adapter["data"] == {}
    else:
        assert adapter["todo"] is None
        _positive_spread(adapter["data"]["bare_ns"])
        _positive_spread(adapter["data"]["gated_ns"])
        _positive_spread(adapter["data"]["control_ns"])
        assert len(adapter["targets"]) == 2


def test_table_and_plot_are_written(quick_run: Run) -> None:
    _, png, text = quick_run
    assert "== Targets (issue 7) ==" in text
    assert "admit() ns per call" in text
    with png.open("rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    assert png.stat().st_size > 20_000
