"""Shared fixtures. The test audio device must be adopted before anything imports sounddevice."""

from integrations.testing.audio_device import adopt_running_device_env
from integrations.testing.audio_device import audio_device as audio_device  # re-exported fixture

adopt_running_device_env()
