"""LiveKit adapters: a gated room-track source and a gated AgentSession audio output.

``install_gate`` and ``GatedAudioOutput`` need ``livekit-agents``; import them from
their modules (``integrations.livekit.install``, ``integrations.livekit.gated_output``).
"""

from integrations.livekit.gated_source import GatedAudioSource
from integrations.livekit.tagging import GENERATION_KEY, generation_of, tag_frame

__all__ = ["GENERATION_KEY", "GatedAudioSource", "generation_of", "tag_frame"]
