"""``playback-gate demo``: the LiveKit #6222 story, told through the gate and without it.

The story (:mod:`~integrations.demo.story`) drives a real LiveKit ``AgentSession``
with the real ``livekit-plugins-openai`` client against the project's Realtime
simulator (or the real service), plays the audio on a gated sink
(:mod:`~integrations.demo.sink_output`), and :mod:`~integrations.demo.report`
prints what the server sent, what played and what was dropped, per reply.
Heavy imports (LiveKit) live in the submodules, not here.
"""
