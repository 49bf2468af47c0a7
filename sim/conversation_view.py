"""A call as heard, printed live from its call log: the caller's lines as the platform's
recogniser heard them, the agent's lines as they played (cut where the caller barged in),
tool calls and the end."""

from __future__ import annotations

from rich.console import Console

from shared.bus.mux import StreamMux
from shared.bus.streams import CallLog
from shared.contract import events as ev


async def print_live(
    console: Console, log: CallLog, mux: StreamMux, call_sid: str, t0: float
) -> None:
    """Print the call's events as they are appended, until `call.ended`."""
    sub = await mux.subscribe(log.key(call_sid))
    texts: dict[tuple[int, int], str] = {}
    async for _, event in sub:
        stamp = f"[dim]{event.at - t0:7.2f}s[/dim]"
        if isinstance(event, ev.TurnRequested):
            console.print(f"{stamp} [bold cyan]caller[/]  {event.text}")
        elif isinstance(event, ev.Dtmf):
            console.print(f"{stamp} [bold cyan]caller[/]  (pressed {event.digit})")
        elif isinstance(event, ev.AgentText):
            texts[(event.turn_id, event.seq)] = event.text
        elif isinstance(event, ev.SegmentPlayed):
            text = texts.get((event.turn_id, event.seq), "")
            console.print(f"{stamp} [bold green]agent[/]   {text}")
        elif isinstance(event, ev.BargeIn):
            console.print(f"{stamp} [red]barge-in[/] (the caller had heard: {event.heard_text!r})")
        elif isinstance(event, ev.ToolRequested):
            console.print(f"{stamp} [yellow]tool[/]    {event.name}({event.arguments})")
        elif isinstance(event, ev.ToolResult):
            console.print(f"{stamp} [yellow]result[/]  {event.content}")
        elif isinstance(event, ev.CallEnded):
            console.print(f"{stamp} [magenta]call ended[/] ({event.reason})")
            return
