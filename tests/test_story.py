"""The scripted #6222 story and the CLI around it."""

from __future__ import annotations

import subprocess
import sys

import pytest

from gate import __version__
from gate.cli import main
from gate.story import FRAME_SAMPLES, run_story


def test_story_drops_exactly_the_unwanted_audio() -> None:
    rows = {r.generation_id: r for r in run_story()}
    assert rows["resp_1"].played == rows["resp_1"].sent == 50 * FRAME_SAMPLES
    assert rows["resp_2"].played == 0 and rows["resp_2"].reason == "timed_out"
    assert rows["resp_3"].played == 20 * FRAME_SAMPLES and rows["resp_3"].reason == "interrupted"
    assert rows["resp_4"].played == rows["resp_4"].sent
    for row in rows.values():
        assert row.played + row.dropped == row.sent


def test_cli_demo_prints_the_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    assert "timed out, server kept streaming" in out and "timed_out" in out


def test_cli_version_and_help() -> None:
    version = subprocess.run(
        [sys.executable, "-m", "gate.cli", "--version"], capture_output=True, text=True, check=True
    )
    assert version.stdout.strip() == f"playback-gate {__version__}"
    help_text = subprocess.run(
        [sys.executable, "-m", "gate.cli", "--help"], capture_output=True, text=True, check=True
    )
    assert "demo" in help_text.stdout


def test_cli_without_command_prints_help_and_fails(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "usage: playback-gate" in capsys.readouterr().out
