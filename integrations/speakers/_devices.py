"""Finding PortAudio and its output devices, with errors that say how to fix them."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from gate import ConfigurationError, GateError

__all__ = [
    "DeviceInfo",
    "NoOutputDeviceError",
    "PortAudioMissingError",
    "SpeakerError",
    "check_named_device",
    "import_sounddevice",
    "list_devices",
    "resolve_device",
]

DeviceSpec = int | str | None


class SpeakerError(GateError, RuntimeError):
    """The speaker sink cannot play; the message says why and what to do."""


class PortAudioMissingError(SpeakerError):
    """``sounddevice`` or the PortAudio library it loads is not installed."""


class NoOutputDeviceError(SpeakerError):
    """No output device, or none matching the one asked for."""


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    """An output device as PortAudio lists it.

    Attributes:
        index: PortAudio device index.
        name: Device name.
        hostapi: Host API name, e.g. ``"ALSA"``.
        max_output_channels: Output channels it offers.
        default_samplerate: Its default sample rate, in Hz.
        is_default: Whether it is the default output device.
    """

    index: int
    name: str
    hostapi: str
    max_output_channels: int
    default_samplerate: float
    is_default: bool

    def __str__(self) -> str:
        mark = "*" if self.is_default else " "
        return (
            f"{mark} {self.index:3d}  {self.name} ({self.hostapi}, "
            f"{self.max_output_channels} out, {self.default_samplerate:.0f} Hz)"
        )


def import_sounddevice() -> ModuleType:
    """Import ``sounddevice``, turning a missing PortAudio into a clear error.

    Returns:
        The module.

    Raises:
        PortAudioMissingError: With the command that fixes it.
    """
    try:
        # import_module keeps mypy off the untyped package.
        sounddevice = importlib.import_module("sounddevice")
    except OSError as e:  # the module is there, libportaudio is not
        raise PortAudioMissingError(
            f"PortAudio library not found ({e}). Install it: `sudo apt-get install "
            "libportaudio2` (Debian/Ubuntu), `brew install portaudio` (macOS); "
            "or write to a WAV file instead (--wav)"
        ) from e
    except ImportError as e:
        raise PortAudioMissingError(
            f"sounddevice is not installed ({e}): pip install 'playback-gate[speakers]'; "
            "or write to a WAV file instead (--wav)"
        ) from e
    return sounddevice


def list_devices() -> list[DeviceInfo]:
    """List PortAudio's output devices.

    Returns:
        Every device with at least one output channel, by index.

    Raises:
        PortAudioMissingError: If PortAudio is missing.
    """
    sd = import_sounddevice()
    apis = [str(api["name"]) for api in sd.query_hostapis()]
    try:
        default = int(sd.default.device[1])
    except (TypeError, ValueError, IndexError):
        default = -1
    return [
        DeviceInfo(
            index=int(dev["index"]),
            name=str(dev["name"]),
            hostapi=apis[int(dev["hostapi"])] if int(dev["hostapi"]) < len(apis) else "?",
            max_output_channels=int(dev["max_output_channels"]),
            default_samplerate=float(dev["default_samplerate"]),
            is_default=int(dev["index"]) == default,
        )
        for dev in _query(sd)
        if int(dev["max_output_channels"]) > 0
    ]


def resolve_device(device: DeviceSpec = None) -> DeviceInfo:
    """Find an output device by index, by name, or the default one.

    A name matches exactly first, then as a unique case-insensitive substring.

    Args:
        device: Index, name (a digit string counts as an index), or ``None``.

    Returns:
        The device.

    Raises:
        PortAudioMissingError: If PortAudio is missing.
        NoOutputDeviceError: If there is no such output device, or the name is ambiguous.
    """
    devices = list_devices()
    if not devices:
        raise NoOutputDeviceError(
            "no audio output device found; connect one, start a sound server, "
            "or write to a WAV file instead (--wav)"
        )
    listing = "; ".join(f"{d.index}: {d.name}" for d in devices)
    if isinstance(device, str) and device.strip().isdigit():
        device = int(device)
    if device is None:
        for d in devices:
            if d.is_default:
                return d
        return devices[0]
    if isinstance(device, int):
        for d in devices:
            if d.index == device:
                return d
        raise NoOutputDeviceError(f"no output device with index {device}; devices: {listing}")
    exact = [d for d in devices if d.name == device]
    if exact:
        return exact[0]
    partial = [d for d in devices if device.lower() in d.name.lower()]
    if len(partial) == 1:
        return partial[0]
    if partial:
        names = ", ".join(repr(d.name) for d in partial)
        raise NoOutputDeviceError(f"device name {device!r} is ambiguous: {names}")
    raise NoOutputDeviceError(f"no output device named {device!r}; devices: {listing}")


def check_named_device(device: DeviceSpec) -> None:
    """Refuse a device the user named that cannot be found: a usage error, never a fallback.

    Args:
        device: The ``--device`` value; ``None`` (not named) passes.

    Raises:
        ConfigurationError: Naming the device and why (the devices that exist, or no
            PortAudio).
    """
    if device is None:
        return
    try:
        resolve_device(device)
    except SpeakerError as e:
        raise ConfigurationError(f"--device {device!r}: {e}") from None


def _query(sd: ModuleType) -> list[dict[str, Any]]:
    return [dict(d) for d in sd.query_devices()]
