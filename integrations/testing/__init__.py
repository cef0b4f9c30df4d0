"""A test kit: harnesses that wire the real parts together (tooling, not library).

Shared by ``tests/``, ``bench/`` and the demo, and usable for testing your own agent:

- ``agent_rig``: an ``AgentSession`` with the real ``livekit-plugins-openai`` client
  against the project's simulator, a roomless RoomIO output and a track read-back;
- ``reconnect``: drops the client's socket and answers its abandoned request on the new one
  (a session-resuming server), for the LiveKit reconnect test and the demo;
- ``device``: finds the project's test audio device (``scripts/audio-device.sh``);
- ``audio_device``: reads the device's tee, locates audio in it, and the pytest fixture.

It may use LiveKit private names (``agent_rig.roomless_output`` does); the library
packages never import it.
"""
