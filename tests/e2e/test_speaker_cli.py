"""``playback-gate speakers``: listing, the scene on the test device, the WAV fallback."""

from __future__ import annotations

import argparse
import importlib
import wave
from pathlib import Path

import numpy as np
import pytest

from gate.cli import build_parser, main
from integrations.speakers import PortAudioMissingError
from integrations.speakers import _devices as devices
from integrations.speakers import cli as speakers_cli
from integrations.testing.audio_device import AudioTestDevice


def parse(*argv: str) -> argparse.Namespace:
    parser = build_parser([speakers_cli.COMMAND])
    return parser.parse_args(["speakers", *argv])


def read_wav(path: Path) -> np.ndarray:
    with wave.open(str(path)) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, 48_000)
        return np.frombuffer(w.readframes(w.getnframes()), np.int16)


def test_scene_to_a_wav_file_plays_replies_one_and_three_and_cuts_two(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "scene.wav"
    assert speakers_cli.run(parse("--wav", str(path))) == 0
    out = capsys.readouterr().out
    assert "cut resp_2: cancel-to-silence 5.0 ms measured on the virtual clock" in out
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines() if "resp_" in line}
    assert rows["resp_1"] == ["0.800", "0.800", "0.800"]  # sent, admitted, played (s)
    assert rows["resp_2"][0] == "1.600" and rows["resp_2"][2] == "0.500"
    assert rows["resp_3"] == ["0.600", "0.600", "0.600"]
    x = read_wav(path)
    # 0.8 + 0.5 + 0.6 s of tone plus the 5 ms fade, at 48 kHz, are all the non-silent audio.
    loud = np.flatnonzero(np.abs(x) > 0)
    assert len(x) >= 48_000 * 1.9 and len(loud) <= 48_000 * 1.905 + 48


def test_list_names_the_test_device(
    audio_device: AudioTestDevice, capsys: pytest.CaptureFixture[str]
) -> None:
    assert speakers_cli.run(parse("--list")) == 0
    assert audio_device.device in capsys.readouterr().out


def test_list_without_a_device_says_how_to_get_one(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # PortAudio is there but finds no output device (a headless machine, no sound server)
    monkeypatch.setattr(devices, "list_devices", lambda: [])
    assert speakers_cli.run(parse("--list")) == 0
    out = capsys.readouterr().out
    assert out.strip() == speakers_cli.NO_DEVICE_HINT
    assert "scripts/audio-device.sh start" in out and "sound server" in out
    assert "(none)" not in out


def test_scene_on_the_device_reports_a_measured_cut(
    audio_device: AudioTestDevice, capsys: pytest.CaptureFixture[str]
) -> None:
    args = parse("--device", audio_device.device, "--samplerate", "48000", "--fade-ms", "3")
    assert speakers_cli.run(args) == 0
    out = capsys.readouterr().out
    print(out)
    line = next(ln for ln in out.splitlines() if ln.startswith("cut resp_2"))
    assert "measured on the stream clock (DAC time); block 10.0 ms + fade 3.0 ms" in line
    c2s = float(line.split("cancel-to-silence ")[1].split(" ms")[0])
    assert c2s >= 3.0  # at least the fade; the rest is device latency, not asserted
    tee = audio_device.read()
    assert np.count_nonzero(tee) > 48_000  # it really played


def test_no_device_falls_back_to_a_wav_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(devices, "_query", lambda sd: [])
    assert speakers_cli.run(parse()) == 0
    out = capsys.readouterr().out
    assert "no audio output device found" in out and "(--wav)" in out
    assert "falling back to a WAV file: speakers.wav" in out
    assert len(read_wav(tmp_path / "speakers.wav")) > 48_000


def test_a_named_device_that_does_not_exist_is_an_error_listing_those_that_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    fake = [
        {
            "index": 0,
            "name": "speaker A",
            "max_output_channels": 2,
            "hostapi": 0,
            "default_samplerate": 48e3,
        },
        {
            "index": 1,
            "name": "mic",
            "max_output_channels": 0,
            "hostapi": 0,
            "default_samplerate": 48e3,
        },
    ]
    monkeypatch.setattr(devices, "_query", lambda sd: fake)
    assert main(["speakers", "--device", "typo"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and len(err.splitlines()) == 1
    assert "'typo'" in err and "0: speaker A" in err and "mic" not in err
    assert not (tmp_path / "speakers.wav").exists()  # no silent fallback


@pytest.mark.parametrize(
    ("error", "fix"),
    [
        (OSError("PortAudio library not found"), "apt-get install libportaudio2"),
        (ImportError("No module named 'sounddevice'"), "pip install 'playback-gate[speakers]'"),
    ],
)
def test_missing_portaudio_names_the_fix(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    error: Exception,
    fix: str,
) -> None:
    real = importlib.import_module

    def fake(name: str, package: str | None = None):  # type: ignore[no-untyped-def]
        if name == "sounddevice":
            raise error
        return real(name, package)

    monkeypatch.setattr(importlib, "import_module", fake)
    with pytest.raises(PortAudioMissingError, match=fix.replace("[", r"\[").replace("]", r"\]")):
        devices.list_devices()
    assert speakers_cli.run(parse("--list")) == 1
    assert fix in capsys.readouterr().out
    monkeypatch.chdir(tmp_path)
    assert speakers_cli.run(parse()) == 0  # the scene falls back instead of crashing
    assert "falling back to a WAV file" in capsys.readouterr().out
