"""After-stream with Redis unreachable resumes the call (a fresh stream), never a 500: a 6 s
Redis outage used to answer HTTP 500 and drop the call (issue 13)."""

from __future__ import annotations

from frontdesk.supervisor import free_port
from services.gateway.after_stream import Decision, decide_call
from shared.bus.streams import CallLog, connect


async def test_redis_down_resumes() -> None:
    dead = connect(f"redis://127.0.0.1:{free_port()}/0", socket_timeout=1.0)  # nobody listens
    try:
        decision, entries = await decide_call(CallLog(dead, 16), "CA" + "2" * 32, 500)
    finally:
        await dead.aclose()
    assert decision == Decision("reconnect") and entries == []
