"""LiveKit adapters: a gated room-track source and a gated AgentSession audio output.

- :class:`GatedAudioSource` wraps an ``rtc.AudioSource`` (needs ``livekit``);
- :class:`GatedAudioOutput` wraps an Agents ``io.AudioOutput``, and :func:`install_gate`
  installs it on a running ``AgentSession`` in one call (need ``livekit-agents`` 1.8.x).

Importing this package imports ``livekit.agents``. The one private LiveKit hook the
output uses lives in ``_gated_output`` and is checked at runtime by
:func:`missing_private_api` / :func:`check_agents_version`.
"""

from integrations.livekit._gated_output import GatedAudioOutput, missing_private_api
from integrations.livekit._gated_source import GatedAudioSource
from integrations.livekit._install import GateInstallation, install_gate
from integrations.livekit._signals import SUPPORTED_AGENTS_VERSIONS, check_agents_version
from integrations.livekit._tagging import GENERATION_KEY, generation_of, tag_frame

__all__ = [
    "GENERATION_KEY",
    "SUPPORTED_AGENTS_VERSIONS",
    "GateInstallation",
    "GatedAudioOutput",
    "GatedAudioSource",
    "check_agents_version",
    "generation_of",
    "install_gate",
    "missing_private_api",
    "tag_frame",
]
