"""A websocket reconnect the client gives up at, answered anyway on the new connection.

The simulator drops the client's socket while a request waits for its
``response.created``. The client reconnects and sends its session again; then
the server answers the abandoned request on the new connection, echoing its
``client_event_id``, as a server that resumes the session does (xAI's Realtime
API resumes a conversation and its in-flight output on a new socket; OpenAI's
own service starts a fresh session instead). LiveKit Agents 1.8.9 fails the
pending ``generate_reply`` at the reconnect and clears the set of requests it
gave up on, so it plays that answer. Shared by the LiveKit end-to-end test and
the demo.
"""

from __future__ import annotations

import asyncio

from integrations.openai_realtime.simulator.plans import ResponsePlan
from integrations.openai_realtime.simulator.records import ResponseRecord
from integrations.openai_realtime.simulator.server import RealtimeSimulator

__all__ = ["answer_after_reconnect"]


async def answer_after_reconnect(
    sim: RealtimeSimulator, request_id: str, plan: ResponsePlan, *, timeout: float = 10.0
) -> ResponseRecord:
    """Drop the connection; once the client is back, answer ``request_id`` on the new one.

    Args:
        sim: The simulator the client talks to (one client).
        request_id: The waiting ``response.create``'s ``client_event_id``.
        plan: How to stream the answer.
        timeout: Seconds to wait for the reconnect and for the client's ``session.update``.

    Returns:
        The answer's record.

    Raises:
        LookupError: If there is no open connection to drop.
        TimeoutError: If the client did not reconnect and send its session in time.
    """
    count = len(sim.connections)
    await sim.drop_connection()
    conn = await sim.wait_for_connection(count + 1, timeout=timeout)
    async with asyncio.timeout(timeout):  # the log is polled: appending to it wakes no waiter
        while not any(e.type == "session.update" for e in conn.log):
            await asyncio.sleep(0.01)
    return conn.start_response(
        plan, metadata={"client_event_id": request_id}, client_event_id=request_id
    )
