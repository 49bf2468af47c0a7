"""One LLM turn: read the call log, stream the reply, write speakable text and tool calls."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from openai import AsyncOpenAI, OpenAIError

from services.brain.barge_pause import BargePause
from services.brain.history import Message, build_messages
from services.brain.llm import TextDelta, TokenUsage, ToolCall, stream_reply
from services.brain.speakable import SpeakableChunker
from services.brain.turn_log import (
    NOT_FOR_HISTORY,
    late_correction,
    opening_phrase_words,
    superseded,
)
from shared.bus.mux import StreamMux, Subscription
from shared.bus.streams import CallLog
from shared.bus.waiting import wait_event
from shared.contract import events as ev
from shared.contract import keys
from shared.observability.metrics import Metrics
from shared.observability.turn_stages import StageClock
from shared.runtime.logs import tenant_var
from shared.runtime.outage import Outage, until_available
from shared.runtime.settings import Settings
from shared.runtime.telemetry import context_from, tracer
from shared.tenancy.tool_specs import openai_tools

log = logging.getLogger(__name__)
_tracer = tracer(__name__)
WATCHES = frozenset(
    ev.type_of(t)
    for t in (ev.ToolResult, ev.BargeIn, ev.FalseInterrupt, ev.TurnRequested, ev.CallEnded)
)
"""The event types a running turn watches its call's log for."""

APPEND_PATIENCE_S = 10.0
"""Longest a turn waits out a Redis outage for one call-log write before giving the turn up."""
APPEND_RETRY_MAX_S = 0.1
SORRY = "Sorry, I'm having trouble right now. Could you say that again?"


@dataclass
class BrainDeps:
    """What every turn on this replica shares."""

    settings: Settings
    log: CallLog
    mux: StreamMux
    llm: AsyncOpenAI
    metrics: Metrics = field(default_factory=Metrics)  # this replica's Prometheus metrics


class TurnRunner:
    """Answers one caller turn of one call."""

    def __init__(self, deps: BrainDeps, call_sid: str, turn_id: int) -> None:
        self.deps = deps
        self.call_sid = call_sid
        self.turn_id = turn_id
        self.tenant_id = ""
        self.seq = 0
        self.marked: set[str] = set()
        self.pending_marks: list[tuple[ev.LatencyStage, float]] = []
        self.stages = StageClock()  # llm_request -> llm_first_token, for the stage histogram
        self.results: dict[str, ev.ToolResult] = {}
        self.result_arrived = asyncio.Event()
        self.interrupted = asyncio.Event()
        self.pause = BargePause(deps.settings.barge_in_verdict_wait_s, self.interrupted.set)
        self.late: dict[str, ev.ToolResult] = {}  # real results that came after our timeout
        self.late_arrived = asyncio.Event()
        self.corrected: set[str] = set()
        self.deltas = 0  # streamed text pieces (wasted completion tokens of a cancelled reply)
        self.first_phrase_words = deps.settings.reply_first_phrase_words  # the tenant's: `run`

    async def run(self) -> None:
        """Answer the turn, unless it is already answered or superseded by a newer one (whose
        history carries this turn's words: see `build_messages`)."""
        entries = await self.deps.log.entries(self.call_sid, skip=NOT_FOR_HISTORY)
        request = self._request(entries)
        if request is None:
            log.warning("turn %s of %s not in the log", self.turn_id, self.call_sid)
            return
        if superseded(entries, self.turn_id):
            return
        self.tenant_id = request.tenant_id
        self.first_phrase_words = opening_phrase_words(entries, self.deps.settings)
        # A turn taken over from a dead replica goes on after the chunks that one wrote (media
        # speaks each (turn, seq) once, so restarting at 0 would be silence).
        self.seq = 1 + max(
            (
                e.seq
                for _, e in entries
                if isinstance(e, ev.AgentText) and e.turn_id == self.turn_id
            ),
            default=-1,
        )
        tenant_var.set(request.tenant_id or None)
        with _tracer.start_as_current_span(
            "turn",
            context=context_from(request.traceparent),
            attributes={"call.sid": self.call_sid, "turn.id": self.turn_id},
        ):
            messages = self._messages(entries)
            sub = await self.deps.mux.subscribe(
                self.deps.log.key(self.call_sid), entries[-1][0], types=WATCHES
            )
            watcher = asyncio.create_task(self._watch(sub))
            converse = asyncio.create_task(self._converse(messages))
            stop = asyncio.create_task(self.interrupted.wait())
            listen_on = False  # keep the subscription to hear late tool results
            try:
                await asyncio.wait({converse, stop}, return_when=asyncio.FIRST_COMPLETED)
                if not converse.done():
                    log.info(
                        "turn %s of %s interrupted; LLM stream cancelled",
                        self.turn_id,
                        self.call_sid,
                    )
                    converse.cancel()
                await asyncio.gather(converse, return_exceptions=True)
                if converse.done() and not converse.cancelled() and converse.exception():
                    raise converse.exception()  # type: ignore[misc]
                listen_on = bool(self.timed_out) and not self.interrupted.is_set()
            finally:
                self.pause.close()
                for task in (watcher, stop):
                    task.cancel()
                await asyncio.gather(watcher, stop, return_exceptions=True)
                if not listen_on:
                    await self.deps.mux.unsubscribe(sub)
            try:
                await self._flush_marks()  # e.g. llm_request of a reply that never spoke
                if self.turn_exists:
                    await self._append(
                        ev.AgentTurnDone(
                            call_sid=self.call_sid, turn_id=self.turn_id, chunks=self.seq
                        )
                    )
                if listen_on:
                    await self._correct_late_results(sub)
            finally:
                if listen_on:
                    await self.deps.mux.unsubscribe(sub)

    def _request(
        self, entries: list[tuple[str, ev.Event]]
    ) -> ev.TurnRequested | ev.TurnPreempted | None:
        """What this turn answers: the caller's request (a subclass may answer earlier)."""
        return next(
            (
                e
                for _, e in entries
                if isinstance(e, ev.TurnRequested) and e.turn_id == self.turn_id
            ),
            None,
        )

    def _messages(self, entries: list[tuple[str, ev.Event]]) -> list[Message]:
        """The conversation the LLM answers."""
        return build_messages(entries, before_turn=self.turn_id)

    @property
    def turn_exists(self) -> bool:
        """The caller's request is in the log (so the turn gets its `agent.turn_done`)."""
        return True

    def _final_arrived(self, event: ev.TurnRequested) -> None:
        """This turn's request reached the log while the turn runs (see `preemptive`)."""

    @property
    def timed_out(self) -> set[str]:
        """Tool calls this turn answered with its own timeout result."""
        return {i for i, r in self.results.items() if r.by == "brain-timeout"} - set(self.late)

    async def _correct_late_results(self, sub: Subscription) -> None:
        """Listen a while for real results of calls we gave up on: one that succeeded after
        all is said, so the caller is not left believing it failed (e.g. a booking)."""
        watcher = asyncio.create_task(self._watch(sub))
        try:
            deadline = time.monotonic() + self.deps.settings.tool_late_result_s
            while self.timed_out and not self.interrupted.is_set():
                self.late_arrived.clear()
                if not await wait_event(self.late_arrived, max(deadline - time.monotonic(), 0)):
                    break
                for call_id in sorted(self.late):
                    result = self.late[call_id]
                    if result.ok and call_id not in self.corrected:
                        self.corrected.add(call_id)
                        if not self.interrupted.is_set():
                            await self._say(late_correction(result))
        finally:
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)

    async def _watch(self, sub: Subscription) -> None:  # subscribed to WATCHES
        """Collect tool results; notice when the caller interrupts or moves on."""
        async for _, event in sub:
            if isinstance(event, ev.TurnRequested) and event.turn_id == self.turn_id:
                self._final_arrived(event)
            elif isinstance(event, ev.ToolResult):
                first = self.results.setdefault(event.tool_call_id, event)
                if first.by == "brain-timeout" and event.by == "tools":
                    self.late.setdefault(event.tool_call_id, event)
                    self.late_arrived.set()
                self.result_arrived.set()
            elif (
                isinstance(event, ev.BargeIn)
                and event.turn_id == self.turn_id
                and not event.filler_only  # a filler talked over: the reply goes on
            ):
                self.pause.barged()  # held until the verdict (services/brain/barge_pause.py)
            elif (
                isinstance(event, ev.FalseInterrupt)
                and event.turn_id == self.turn_id
                and self.pause.paused  # not a filler's (that cut no reply)
            ):
                if event.respoken:  # media said the cut part again: the reply goes on
                    self.pause.undone()
                else:  # media did not take the turn up again: it stays cut
                    self.interrupted.set()
            elif (
                isinstance(event, ev.TurnRequested) and event.turn_id > self.turn_id
            ) or isinstance(event, ev.CallEnded):
                self.interrupted.set()

    async def _converse(self, messages: list[Message]) -> None:
        await self._rounds(messages)
        await self.pause.open.wait()  # a barge-in's verdict (or the runner cancels us)
        await self._say_held()

    async def _rounds(self, messages: list[Message]) -> None:
        tools = openai_tools()
        for _ in range(self.deps.settings.llm_max_tool_rounds + 1):
            calls = await self._one_round(messages, tools)
            if not calls:
                return
            assistant: Message = {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": c.id,
                        "type": "function",
                        "function": {"name": c.name, "arguments": c.arguments},
                    }
                    for c in calls
                ],
            }
            messages.append(assistant)
            for result in await self._run_tools(calls):
                messages.append(
                    {"role": "tool", "tool_call_id": result.tool_call_id, "content": result.content}
                )
        await self._say(SORRY)

    async def _one_round(
        self, messages: list[Message], tools: list[dict[str, Any]]
    ) -> list[ToolCall]:
        chunker = SpeakableChunker(first_phrase_words=self.first_phrase_words)
        spoken: list[str] = []
        calls: list[ToolCall] = []
        self._mark("llm_request")
        try:
            async for piece in stream_reply(self.deps.llm, self.deps.settings, messages, tools):
                if isinstance(piece, TextDelta):
                    self.deltas += 1
                    self._mark("llm_first_token")
                    for chunk in chunker.feed(piece.text):
                        spoken.append(chunk)
                        await self._say(chunk)
                elif isinstance(piece, ToolCall):
                    calls.append(piece)
                elif isinstance(piece, TokenUsage):
                    await self._usage(piece)
        except OpenAIError as exc:
            self.deps.metrics.provider_errors.labels("llm").inc()
            await self._append(
                ev.ProviderError(call_sid=self.call_sid, provider="llm", message=str(exc)[:500])
            )
            await self._say(SORRY)
            return []
        rest = chunker.flush()
        if rest:
            spoken.append(rest)
            await self._say(rest)
        if spoken and calls:
            messages.append({"role": "assistant", "content": " ".join(spoken)})
        return calls

    async def _run_tools(self, calls: list[ToolCall]) -> list[ev.ToolResult]:
        await self.pause.open.wait()  # a reply the caller may have cut acts only once undone
        waiting: dict[str, ToolCall] = {}
        timeout_s = self.deps.settings.tool_timeout_s
        deadline = time.monotonic() + timeout_s
        deadline_at = time.time() + timeout_s  # tools commits nothing after this
        for call in calls:
            entry = await self._append(
                ev.ToolRequested(
                    call_sid=self.call_sid,
                    turn_id=self.turn_id,
                    tool_call_id=call.id,
                    name=call.name,
                    arguments=call.arguments,
                    deadline_at=deadline_at,
                )
            )
            await self.deps.log.publish(
                keys.TOOLS,
                {
                    "call_sid": self.call_sid,
                    "entry_id": entry,
                    "tool_call_id": call.id,
                    "deadline_at": repr(deadline_at),
                },
            )
            waiting[call.id] = call
        while waiting.keys() - self.results.keys():
            self.result_arrived.clear()
            if not waiting.keys() - self.results.keys():
                break
            if not await wait_event(self.result_arrived, max(deadline - time.monotonic(), 0)):
                break
        for call_id in waiting.keys() - self.results.keys():
            timeout = ev.ToolResult(
                call_sid=self.call_sid,
                turn_id=self.turn_id,
                tool_call_id=call_id,
                name=waiting[call_id].name,
                ok=False,
                content='{"error": "The system did not answer in time. Please try again."}',
                by="brain-timeout",
            )
            await self._append(timeout)
            self.results.setdefault(call_id, timeout)  # unless the real one just came
        return [self.results[c.id] for c in calls]

    async def _say(self, text: str) -> None:
        self._mark("first_speakable")
        if self.pause.hold(text):
            return
        await self._say_held()
        await self._write_text(text)

    async def _say_held(self) -> None:
        for held in self.pause.take():
            await self._write_text(held)

    async def _write_text(self, text: str) -> None:
        await self._append(
            ev.AgentText(call_sid=self.call_sid, turn_id=self.turn_id, seq=self.seq, text=text)
        )
        self.seq += 1
        await self._flush_marks()

    def _mark(self, stage: ev.LatencyStage) -> None:
        """Note when a stage happened; written to the log later, off the hot path."""
        if stage in self.marked:
            return
        self.marked.add(stage)
        at = time.time()
        self.pending_marks.append((stage, at))
        for name, seconds in self.stages.mark(self.turn_id, stage, at):
            self.deps.metrics.stage(name, seconds)

    async def _flush_marks(self) -> None:
        marks, self.pending_marks = self.pending_marks, []
        for stage, at in marks:
            await self._append(
                ev.LatencyMark(
                    call_sid=self.call_sid, turn_id=self.turn_id, stage=stage, stage_at=at
                )
            )

    async def _usage(self, usage: TokenUsage) -> None:
        # One unit price per metric: prompt_tokens are the uncached ones, cached ones apart.
        model = self.deps.settings.llm_model
        for metric, quantity in (
            ("prompt_tokens", usage.prompt_tokens - usage.cached_tokens),
            ("cached_prompt_tokens", usage.cached_tokens),
            ("completion_tokens", usage.completion_tokens),
        ):
            if quantity or metric != "cached_prompt_tokens":
                await self._append(
                    ev.Usage(
                        call_sid=self.call_sid, provider=model, metric=metric, quantity=quantity
                    )
                )

    async def _append(self, event: ev.Event) -> str:
        """Write to the call log; a Redis blip is waited out (up to APPEND_PATIENCE_S), so a
        reply half written when Redis went away is finished, not answered again by whoever
        reclaims the turn. Short waits: once Redis is back the turn must be done before another
        replica's reclaim pass (every third of WORK_CLAIM_IDLE_MS) takes it over."""
        if self.tenant_id and not event.tenant_id:
            event = event.model_copy(update={"tenant_id": self.tenant_id})
        return await until_available(
            lambda: self.deps.log.append(event),
            Outage(f"call log of {self.call_sid}", log),
            max_delay_s=APPEND_RETRY_MAX_S,
            patience_s=APPEND_PATIENCE_S,
        )
