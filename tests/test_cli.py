"""The top-level command line."""

from __future__ import annotations

import subprocess
import sys

import pytest

from gate import __version__
from gate.cli import COMMAND_MODULES, build_parser, main


def test_version_and_help() -> None:
    version = subprocess.run(
        [sys.executable, "-m", "gate.cli", "--version"], capture_output=True, text=True, check=True
    )
    assert version.stdout.strip() == f"playback-gate {__version__}"
    help_text = subprocess.run(
        [sys.executable, "-m", "gate.cli", "--help"], capture_output=True, text=True, check=True
    ).stdout
    for command in ("demo", "simulator", "speakers", "replay", "bench"):
        assert command in help_text


def test_every_subcommand_has_help() -> None:
    parser = build_parser()
    assert len(COMMAND_MODULES) >= 4
    for action in parser._subparsers._group_actions:  # type: ignore[union-attr]
        for name, sub in action.choices.items():
            assert sub.format_help().startswith(f"usage: playback-gate {name}")


def test_without_command_prints_help_and_fails(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "usage: playback-gate" in capsys.readouterr().out
