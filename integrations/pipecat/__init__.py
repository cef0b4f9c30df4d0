"""Pipecat adapter: gate a Pipecat pipeline that uses OpenAI Realtime (pipecat-ai 1.14).

::

    from integrations.pipecat import install_gate

    llm = OpenAIRealtimeLLMService(api_key=..., settings=...)
    gated = install_gate(llm)                 # before the pipeline starts
    pipeline = Pipeline([transport.input(), llm, gated.processor, transport.output()])

Its modules are private and re-exported here. The private Pipecat names it uses are
all in ``_hooks`` (see :data:`PRIVATE_API`), checked at runtime. Its errors are the
core's: ``UnsupportedVersionError`` (not pipecat-ai 1.14.x, or a hook is gone),
``InvalidTypeError`` (not an ``OpenAIRealtimeLLMService``), ``StateError`` (installed
after the service connected).
"""

from integrations.pipecat._hooks import (
    PRIVATE_API,
    SUPPORTED_PIPECAT,
    SocketTap,
    check_pipecat_version,
    missing_private_api,
)
from integrations.pipecat._install import (
    PipecatGate,
    install_gate,
)
from integrations.pipecat._playout import PlayoutLedger
from integrations.pipecat._processor import TAG_KEY, AudioTag, GateProcessor, PurgeCounts, tag_of

__all__ = [
    "PRIVATE_API",
    "SUPPORTED_PIPECAT",
    "TAG_KEY",
    "AudioTag",
    "GateProcessor",
    "PipecatGate",
    "PlayoutLedger",
    "PurgeCounts",
    "SocketTap",
    "check_pipecat_version",
    "install_gate",
    "missing_private_api",
    "tag_of",
]
