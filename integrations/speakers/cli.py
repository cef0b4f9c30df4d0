"""``playback-gate speakers``: hear the gate cut a reply on this machine's speakers."""

from __future__ import annotations

import argparse
from typing import Any

from gate.cli import Command, integer, number, output_path

__all__ = ["COMMAND", "NO_DEVICE_HINT", "add_arguments", "check", "run"]

DEFAULT_WAV = "speakers.wav"
MAX_FADE_MS = 1000.0
SAMPLERATES = (8_000, 384_000)

NO_DEVICE_HINT = """\
no output device found. To get one:
  - on a desktop, start its sound server (PulseAudio or PipeWire) and plug in or enable a device;
  - on a headless machine or in CI, start the project's test device from a clone of the
    repository, a private PulseAudio null sink (it installs PulseAudio when missing, as root):
    eval "$(scripts/audio-device.sh start)"
then run 'playback-gate speakers --list' again. Without a device, the scene writes a WAV file."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``speakers`` options.

    Args:
        parser: The subcommand's parser.
    """
    parser.add_argument("--device", "-d", help="output device index or name (see --list)")
    parser.add_argument("--list", action="store_true", help="list output devices and exit")
    parser.add_argument(
        "--fade-ms",
        type=number(0.0, MAX_FADE_MS),
        default=5.0,
        help=f"fade-out of a cut reply, ms (0: hard cut; at most {MAX_FADE_MS:g})",
    )
    parser.add_argument(
        "--samplerate",
        type=integer(*SAMPLERATES),
        help="device sample rate in Hz (default: device's)",
    )
    parser.add_argument(
        "--wav",
        metavar="PATH",
        type=output_path,
        help=f"write a WAV file instead of playing (the fallback writes {DEFAULT_WAV})",
    )


def check(args: argparse.Namespace) -> None:
    """Refuse an output device that was named but does not exist (no silent WAV fallback).

    Args:
        args: Parsed arguments.

    Raises:
        ConfigurationError: Naming the device and listing those that exist.
    """
    if not (args.list or args.wav):
        from integrations.speakers._devices import check_named_device

        check_named_device(args.device)


def run(args: argparse.Namespace) -> int:
    """Run the scene.

    Args:
        args: Parsed arguments.

    Returns:
        0 on success, 1 if the device listing or the scene failed, 2 if the named
        device could not be opened.
    """
    import asyncio
    import sys

    from gate import PlaybackGate
    from integrations.speakers._base_sink import BaseSink
    from integrations.speakers._devices import SpeakerError, list_devices
    from integrations.speakers._speaker_sink import SpeakerSink
    from integrations.speakers._wav_sink import WavSink
    from integrations.speakers.scene import run_scene

    if args.list:
        try:
            devices = list_devices()
        except SpeakerError as e:
            print(f"speakers: {e}")
            return 1
        if not devices:
            print(NO_DEVICE_HINT)
            return 0
        print("output devices (* = default):")
        for d in devices:
            print(d)
        return 0

    gate = PlaybackGate()
    sink: BaseSink
    if args.wav:
        sink = WavSink(
            gate,
            path=args.wav,
            samplerate=args.samplerate or 48_000,
            paced=False,
            fade_ms=args.fade_ms,
        )
    else:
        try:
            sink = SpeakerSink(
                gate, device=args.device, samplerate=args.samplerate, fade_ms=args.fade_ms
            )
        except SpeakerError as e:
            if args.device is not None:  # named, so never swapped for a file
                print(f"playback-gate speakers: error: {e}", file=sys.stderr)
                return 2
            print(f"speakers: {e}")
            print(f"speakers: falling back to a WAV file: {DEFAULT_WAV}")
            sink = WavSink(
                gate,
                path=DEFAULT_WAV,
                samplerate=args.samplerate or 48_000,
                paced=False,
                fade_ms=args.fade_ms,
            )
    print(f"speakers: playing on {sink!r}")
    try:
        with sink:
            result = asyncio.run(run_scene(sink, gate, progress=lambda s: print(f"  {s}")))
    except SpeakerError as e:
        print(f"speakers: {e}")
        return 1
    print(format_result(result, sink))
    return 0


def format_result(result: Any, sink: Any) -> str:
    """Format the scene's table and the measured cut.

    Args:
        result: A :class:`~integrations.speakers.scene.SceneResult`.
        sink: The sink it played on.

    Returns:
        The report.
    """
    from integrations.speakers._wav_sink import WavSink
    from integrations.speakers.scene import SOURCE_RATE

    rows = [f"{'reply':<8} {'sent':>8} {'admitted':>9} {'played':>8}  (seconds)"]
    for gid, sent in result.sent.items():
        played = result.played.get(gid, 0) / result.device_rate
        rows.append(
            f"{gid:<8} {sent / SOURCE_RATE:8.3f} {result.admitted[gid] / SOURCE_RATE:9.3f} "
            f"{played:8.3f}"
        )
    cut = result.cut
    virtual = isinstance(sink, WavSink)
    if cut is not None and cut.cancel_to_silence is not None:
        block_ms = 1000 * sink.blocksize / sink.samplerate
        fade_ms = 1000 * cut.faded_frames / sink.samplerate
        clock = "virtual clock, no device latency" if virtual else "stream clock (DAC time)"
        rows.append(
            f"cut {cut.generation_id}: cancel-to-silence {1000 * cut.cancel_to_silence:.1f} ms "
            f"measured on the {clock}; block {block_ms:.1f} ms + fade {fade_ms:.1f} ms"
            + ("" if virtual else f" + device latency {1000 * sink.latency:.1f} ms")
        )
        rows.append(f"        {cut.dropped_frames / sink.samplerate:.3f} s of queued audio purged")
    rows.append(f"underruns: {result.underruns}")
    if virtual:
        rows.append(f"wrote {sink.path}")
    return "\n".join(rows)


COMMAND = Command(
    name="speakers",
    help="play a short scene on local speakers, one reply cut mid-way, and time the cut",
    description=(
        "Plays three tones, one per reply (440, 660, 550 Hz), through the gate on a local "
        "output device. The second reply is interrupted after 0.5 s while the server keeps "
        "sending it. Reports what played and the cancel-to-silence time measured on the "
        "stream's own clock. Without a usable device it writes a WAV file instead."
    ),
    add_arguments=add_arguments,
    run=run,
    check=check,
)
