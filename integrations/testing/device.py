"""The project's test audio device, as ``scripts/audio-device.sh`` sets it up.

A private PulseAudio null sink behind an ALSA ``type file`` tee PCM (``gatefile``) that
appends every sample the app plays to ``$PLAYBACK_GATE_TEE_FILE``. This module finds that
device for the benchmark and the tests; it never imports ``sounddevice`` at import time, so
:func:`adopt_running_device_env` can run before PortAudio scans devices.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

__all__ = [
    "CHANNELS",
    "DEVICE_NAME",
    "DTYPE",
    "REQUIRED_ENV",
    "SAMPLERATE",
    "SCRIPT",
    "adopt_running_device_env",
    "probe_device",
]

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "audio-device.sh"
DEVICE_NAME = "gatefile"
SAMPLERATE = 48000
CHANNELS = 1
DTYPE = "int16"

#: Environment variables printed by ``scripts/audio-device.sh env`` that the device needs.
REQUIRED_ENV = ("ALSA_CONFIG_PATH", "PULSE_SERVER", "PLAYBACK_GATE_TEE_FILE")


def adopt_running_device_env(script: Path = SCRIPT) -> bool:
    """Copy the private device's environment into ``os.environ`` if its daemon is running.

    This lets a developer run ``scripts/audio-device.sh start`` once and then plain ``pytest``
    without ``eval``. ``XDG_RUNTIME_DIR`` is not copied, so nothing else in the process is
    redirected. Must run before ``sounddevice`` is first imported to take effect cheaply;
    :func:`probe_device` re-initialises PortAudio otherwise.

    Args:
        script: The device script.

    Returns:
        True if the environment was adopted, False if it was already set or no daemon runs.
    """
    if all(os.environ.get(name) for name in REQUIRED_ENV) or not script.is_file():
        return False
    try:
        status = subprocess.run(
            ["bash", str(script), "status"], capture_output=True, timeout=10, check=False
        )
        if status.returncode != 0:
            return False
        env = subprocess.run(
            ["bash", str(script), "env"], capture_output=True, text=True, timeout=10, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return False
    for line in env.stdout.splitlines():
        if not line.startswith("export ") or "=" not in line:
            continue
        name, _, value = line.removeprefix("export ").partition("=")
        if name != "XDG_RUNTIME_DIR":
            # The script's paths never contain quotes or spaces, so %q leaves them bare.
            os.environ[name] = value
    return True


def probe_device(script: Path = SCRIPT) -> tuple[str, Path] | str:
    """Find the test device and check that PortAudio can open it.

    Args:
        script: The device script (for adopting a running daemon's environment).

    Returns:
        ``(device name, tee file)``, or a human-readable reason why it is unavailable.
    """
    adopt_running_device_env(script)
    missing = [name for name in REQUIRED_ENV if not os.environ.get(name)]
    if missing:
        return (
            f"no test audio device: {', '.join(missing)} not set; "
            'run `eval "$(scripts/audio-device.sh start)"` first'
        )
    server = os.environ["PULSE_SERVER"].removeprefix("unix:")
    if not Path(server).is_socket():
        return (
            f"no test audio device: PulseAudio socket {server} missing; "
            "run `scripts/audio-device.sh start`"
        )
    tee_path = Path(os.environ["PLAYBACK_GATE_TEE_FILE"])
    if not tee_path.parent.is_dir():
        return f"no test audio device: tee directory {tee_path.parent} does not exist"
    try:
        import sounddevice as sd
    except (ImportError, OSError) as exc:  # OSError: PortAudio library not found
        return f"no test audio device: sounddevice unusable: {exc}"
    device = os.environ.get("PLAYBACK_GATE_AUDIO_DEVICE", DEVICE_NAME)
    if not _has_output_device(sd, device):
        # sounddevice was imported (and PortAudio scanned devices) before the env was set.
        sd._terminate()
        sd._initialize()
        if not _has_output_device(sd, device):
            return (
                f"no test audio device: PortAudio does not list {device!r}; "
                f"ALSA_CONFIG_PATH={os.environ['ALSA_CONFIG_PATH']}"
            )
    try:
        with sd.OutputStream(device=device, samplerate=SAMPLERATE, channels=CHANNELS, dtype=DTYPE):
            pass
    except Exception as exc:  # sd.PortAudioError, ValueError
        return f"no test audio device: PortAudio cannot open {device!r}: {exc}"
    return device, tee_path


def _has_output_device(sd: Any, name: str) -> bool:
    return any(dev["name"] == name and dev["max_output_channels"] > 0 for dev in sd.query_devices())
