"""The top-level command line."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from gate import __version__
from gate.cli import ENTRY_POINT_GROUP, Command, build_parser, load_commands, main


def test_version_and_help() -> None:
    version = subprocess.run(
        [sys.executable, "-m", "gate.cli", "--version"], capture_output=True, text=True, check=True
    )
    assert version.stdout.strip() == f"playback-gate {__version__}"
    help_text = subprocess.run(
        [sys.executable, "-m", "gate.cli", "--help"], capture_output=True, text=True, check=True
    ).stdout
    for command in ("demo", "simulator", "speakers", "replay", "bench", "voice"):
        assert command in help_text


def test_every_subcommand_has_help() -> None:
    commands = load_commands()
    assert [c.name for c in commands] == [
        "bench",
        "demo",
        "replay",
        "simulator",
        "speakers",
        "voice",
    ]
    parser = build_parser(commands)
    for command in commands:
        sub_help = _subcommand_help(parser, command.name)
        assert sub_help.startswith(f"usage: playback-gate {command.name}")


def _subcommand_help(parser: argparse.ArgumentParser, name: str) -> str:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            sub: argparse.ArgumentParser = action.choices[name]
            return sub.format_help()
    raise AssertionError(f"no subcommand {name}")


def test_entry_point_that_is_not_a_command_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    class FakeEntryPoint:
        name = "bogus"
        value = "somewhere:thing"

        def load(self) -> object:
            return object()

    monkeypatch.setattr("gate.cli.entry_points", lambda group: [FakeEntryPoint()])
    with pytest.raises(TypeError, match="'bogus'"):
        load_commands()


def test_a_command_plugs_in_without_the_core_naming_it(capsys: pytest.CaptureFixture[str]) -> None:
    seen: list[int] = []

    def add_arguments(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--times", type=int, default=1)

    def run(args: argparse.Namespace) -> int:
        seen.append(args.times)
        return 0

    command = Command(
        name="hello",
        help="say hello",
        description="Says hello.",
        add_arguments=add_arguments,
        run=run,
    )
    args = build_parser([command]).parse_args(["hello", "--times", "3"])
    assert args.handler(args) == 0 and seen == [3]
    assert ENTRY_POINT_GROUP == "playback_gate.commands"


def test_without_command_prints_help_and_fails(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "usage: playback-gate" in capsys.readouterr().out
