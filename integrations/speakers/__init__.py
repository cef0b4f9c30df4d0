"""Local speakers: a gated sink that purges flagged generations at the audio callback.

``SpeakerSink`` plays through PortAudio (python-sounddevice's callback API);
``WavSink`` has the same interface (``WavSink(gate, path=...)`` for
``SpeakerSink(gate, device=...)``) and writes a WAV file instead, for machines
with no sound device.
"""

from integrations.speakers._base_sink import BaseSink, SinkOptions, SinkStats
from integrations.speakers._chunk_buffer import BufferFullError, BufferStats, ChunkBuffer, Cut
from integrations.speakers._convert import FormatConverter
from integrations.speakers._devices import (
    DeviceInfo,
    NoOutputDeviceError,
    PortAudioMissingError,
    SpeakerError,
    check_named_device,
    list_devices,
    resolve_device,
)
from integrations.speakers._fade import DEFAULT_FADE_MS, Fade
from integrations.speakers._records import SinkInactiveError
from integrations.speakers._speaker_sink import (
    LOW_LATENCY_BLOCK_MS,
    LOW_LATENCY_BUFFER_BLOCKS,
    LOW_LATENCY_FADE_MS,
    SpeakerSink,
)
from integrations.speakers._wav_sink import WavSink

__all__ = [
    "DEFAULT_FADE_MS",
    "LOW_LATENCY_BLOCK_MS",
    "LOW_LATENCY_BUFFER_BLOCKS",
    "LOW_LATENCY_FADE_MS",
    "BaseSink",
    "BufferFullError",
    "BufferStats",
    "ChunkBuffer",
    "Cut",
    "DeviceInfo",
    "Fade",
    "FormatConverter",
    "NoOutputDeviceError",
    "PortAudioMissingError",
    "SinkInactiveError",
    "SinkOptions",
    "SinkStats",
    "SpeakerError",
    "SpeakerSink",
    "WavSink",
    "check_named_device",
    "list_devices",
    "resolve_device",
]
