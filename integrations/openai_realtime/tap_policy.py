"""The tap's policy for a ``response.created`` that no request of ours asked for."""

from __future__ import annotations

import enum

from gate import PlaybackGate

__all__ = ["UnattributedPolicy"]


class UnattributedPolicy(enum.Enum):
    """What to do with a ``response.created`` that no request of ours asked for.

    ``PLAY`` (the default) plays it unless it is flagged: with stamped requests
    every answer to our own request is attributed, so an unattributed reply is
    one the user's speech asked for (server VAD), and dropping it would silence
    a real turn. ``DROP_AFTER_TIMEOUT`` flags it (``TIMED_OUT``) and sends a
    targeted cancel when it arrives within ``unattributed_grace`` seconds of a
    request timing out; use it when requests cannot be stamped and an orphaned
    late reply is worse than a lost turn.
    """

    PLAY = "play"
    DROP_AFTER_TIMEOUT = "drop_after_timeout"

    def drops(self, gate: PlaybackGate, grace: float) -> bool:
        """Return whether an unattributed response arriving now is to be dropped.

        Args:
            gate: The gate; its clock and ``last_timeout_at`` decide.
            grace: Seconds after a request timeout during which
                ``DROP_AFTER_TIMEOUT`` drops.

        Returns:
            ``True`` only under ``DROP_AFTER_TIMEOUT`` within ``grace`` of the
            gate's last request timeout.
        """
        if self is not UnattributedPolicy.DROP_AFTER_TIMEOUT:
            return False
        last = gate.last_timeout_at
        return last is not None and gate.clock.now() - last <= grace
