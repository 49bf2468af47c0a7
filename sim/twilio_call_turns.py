"""The caller's side of the conversation: wait for the agent, speak, press keys, talk over
the agent (barge-in or backchannel), stay silent. Works on a running `CallRun`."""

from __future__ import annotations

import asyncio
import math
import re
import time
from typing import TYPE_CHECKING

import httpx

from sim.aura_client import AuraError, synthesize
from sim.twilio_call_model import Dtmf, Misheard, Silence, SpeakOver, SpokenLine
from sim.twilio_media import FRAME_BYTES, FRAME_MS

if TYPE_CHECKING:
    from sim.twilio_call_runner import CallRun

POLL_S = 0.005
FILLER_MARK = re.compile(r"-s-\d+$")
"""A filler's mark ("One moment.", issue 17): media gives it a negative seq (`t3-s-1`). The
simulated caller cannot hear words, so it reads the mark to wait for the answer after a
filler, as a caller told "one moment" would."""
STT_LEAD_FRAMES = 5  # register an utterance this many frames before it starts
REGISTRATION_LEADS = (STT_LEAD_FRAMES, 4 * STT_LEAD_FRAMES, 16 * STT_LEAD_FRAMES)
"""Leads (frames) of the tries to register a line with STT control before its first frame:
on a starved machine the round trip can take longer than 100 ms three times in a row, so a
retry starts the line later rather than failing the call."""
STALL_MS = 100.0
"""A poll this long after the previous one means this process was starved, not that the agent
went quiet: audio may sit unread in the socket, so quiet is counted again from the stall's end."""
STOP_GRACE_MS = 1000.0
"""Quiet (heard, not starved) after which a caller waiting to talk over the agent finds it
stopped: a shorter gap is audio arriving late (a TTS slower than real time, a busy machine),
which a caller hears as a pause and waits out."""


class _Ears:
    """Since when the caller has been listening without a gap (a busy machine can starve the
    simulator for a second or more; what it did not read meanwhile was not heard yet)."""

    def __init__(self, now_ms: float) -> None:
        self._last = self.since = now_ms

    def poll(self, now_ms: float) -> float:
        """Note a poll at `now_ms`; the start of the current gap-free listening."""
        if now_ms - self._last > STALL_MS:
            self.since = now_ms
        self._last = now_ms
        return self.since


class CallError(RuntimeError):
    """The call cannot go on (timeout, STT control failure, ...)."""


class _Resumed(Exception):
    """The call moved to a new stream while the caller waited for the agent."""


class ServerHungUp(Exception):
    """The server closed the media socket while the script was still running."""


class CallTurns:
    """Runs the script's lines, turn by turn."""

    def __init__(self, run: CallRun) -> None:
        self.run = run

    async def converse(self) -> None:
        since = 0
        for line in self.run.script.lines:
            if isinstance(line, SpeakOver):
                since = await self._speak_over(line, since)
                continue
            await self._await_agent_turn(since)
            since = len(self.run.received)
            if isinstance(line, Dtmf):
                await self._press(line)
            elif isinstance(line, Silence):
                self.run.log("info", "silence", seconds=line.seconds)
                await self._quiet(line.seconds)
            elif isinstance(line, Misheard):
                await self._say(line.text, interim_text=line.interim_text)
            else:
                await self._say(line)
        if self.run.script.hangup_after_last:
            if self.run.script.wait_for_last_answer:
                await self._await_agent_turn(since)
            await self.run._hangup()
        else:
            self.run.log("info", "waiting-for-server-hangup")

    def check_open(self) -> None:
        if self.run.closed.is_set() and not self.run.between_streams:
            raise ServerHungUp()

    async def _await_agent_turn(self, since_bytes: int) -> None:
        """Agent audio arrives (after ``since_bytes``), plays out, then stays quiet for
        pause_before_speaking_ms (minus the STT registration lead). If the call moves to a
        new stream meanwhile, the agent's turn is what the new stream plays."""
        try:
            await self._await_agent_audio(since_bytes)
        except _Resumed:
            await self._await_agent_turn(self.run.stream_received_start)

    def _check_same_stream(self, resumes: int) -> None:
        if self.run.result.resumes != resumes:
            raise _Resumed()

    async def _await_agent_audio(self, since_bytes: int) -> None:
        o = self.run.opts
        resumes = self.run.result.resumes
        start = time.monotonic()
        while len(self.run.received) <= since_bytes or self.run.between_streams:
            self.check_open()
            self._check_same_stream(resumes)
            if time.monotonic() - start > o.answer_timeout_s:
                raise CallError(f"agent did not start speaking within {o.answer_timeout_s}s")
            await asyncio.sleep(POLL_S)
        lead = STT_LEAD_FRAMES * FRAME_MS if o.stt_control_url else 0
        pause = max(0, o.pause_before_speaking_ms - lead)
        start = time.monotonic()
        ears = _Ears(self.run.now_ms())
        while True:
            self.check_open()
            self._check_same_stream(resumes)
            now = self.run.now_ms()
            listening = ears.poll(now)
            drained = self.run.playout.drained_at_ms
            if self.run.between_streams:
                pass  # the turn goes on on the next stream
            elif (
                self.run.playout.is_idle(now)
                and drained is not None
                and now - max(drained, listening) >= pause
                and not self._filler_last()
            ):
                return
            audio_s = (len(self.run.received) - since_bytes) / 8000
            if time.monotonic() - start > o.answer_timeout_s + audio_s:
                raise CallError(f"agent did not finish its turn within {o.answer_timeout_s}s")
            await asyncio.sleep(POLL_S)

    def _filler_last(self) -> bool:
        """The last audio the agent played (or had cleared) was a filler: more is coming."""
        echoed = self.run.result.marks_echoed
        return bool(echoed) and FILLER_MARK.search(echoed[-1]) is not None

    async def _speak_over(self, line: SpeakOver, since: int) -> int:
        """Start talking once `after_ms` of the agent's new audio has played; returns where
        the agent's next turn starts (after the clear for a barge-in; unchanged otherwise)."""
        start = time.monotonic()
        while len(self.run.received) <= since:
            self.check_open()
            if time.monotonic() - start > self.run.opts.answer_timeout_s:
                raise CallError("agent did not start speaking before the barge-in")
            await asyncio.sleep(POLL_S)
        played0 = self.run.playout.played_bytes
        ears = _Ears(self.run.now_ms())
        while self.run.playout.played_bytes - played0 < line.after_ms * 8:
            self.check_open()
            now = self.run.now_ms()
            idle = self.run.playout.is_idle(now)  # plays out to `now` (sets drained_at_ms)
            quiet_from = max(ears.poll(now), self.run.playout.drained_at_ms or now)
            if idle and now - quiet_from >= STOP_GRACE_MS:
                raise CallError(f"agent stopped before {line.after_ms} ms of audio had played")
            await asyncio.sleep(POLL_S)
        clears = self.run.result.clears
        await self._say(line.text)
        if not line.expect_interrupt:
            return since
        start = time.monotonic()
        while self.run.result.clears == clears:
            self.check_open()
            if time.monotonic() - start > self.run.opts.answer_timeout_s:
                raise CallError(f"agent did not stop talking after {line.text!r}")
            await asyncio.sleep(POLL_S)
        return len(self.run.received)

    async def _quiet(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.check_open()
            await asyncio.sleep(POLL_S)

    async def _press(self, line: Dtmf) -> None:
        assert self.run.session is not None
        start = self.run.frames_sent * FRAME_MS
        for i, digit in enumerate(line.digits):
            if i:
                await asyncio.sleep(line.interval_ms / 1000)
            self.check_open()
            await self.run.session.send_dtmf(digit)
            self.run.log("sent", "dtmf", digit=digit)
        self.run.result.lines.append(
            SpokenLine(line.digits, "dtmf", start, self.run.frames_sent * FRAME_MS)
        )

    async def _say(self, text: str, interim_text: str | None = None) -> None:
        """Say one line; a line the call's move to a new stream cut off is said again there
        (the new stream's recogniser never heard it: its scripts start afresh)."""
        while True:
            try:
                if self.run.opts.tts_url:
                    return await self._say_aloud(text, self.run.opts.tts_url)
                return await self._say_on_this_stream(text, interim_text)
            except _Resumed:
                self.run.result.warnings.append(f"the call moved during {text!r}; said again")
                while self.run.between_streams:
                    self.check_open()
                    await asyncio.sleep(POLL_S)

    async def _say_on_this_stream(self, text: str, interim_text: str | None = None) -> None:
        resumes = self.run.result.resumes
        n_frames = max(1, math.ceil(len(text.split()) * self.run.opts.ms_per_word / FRAME_MS))
        for lead in REGISTRATION_LEADS:
            start = self.run.frames_sent + (lead if self.run.opts.stt_control_url else 1)
            window = (start, start + n_frames)
            await self._register(text, window, interim_text)
            self._check_same_stream(resumes)
            if self.run.frames_sent < start:  # no await between this check and arming
                self.run.voice, self.run.speech = b"", window
                break
            self.run.result.warnings.append(f"STT registration too slow for {text!r}; retrying")
            await self._unregister(text, window, interim_text)  # else it is heard there too
        else:
            raise CallError(f"could not register {text!r} with STT control in time")
        self.run.result.lines.append(await self._speak_window(text, window, resumes))

    async def _speak_window(self, text: str, window: tuple[int, int], resumes: int) -> SpokenLine:
        """Wait while the line's frames go out; raises _Resumed if the call moves meanwhile."""
        line = SpokenLine(text, "speech", window[0] * FRAME_MS, window[1] * FRAME_MS)
        self.run.log("sent", "say", text=text, start_ms=line.start_ms, end_ms=line.end_ms)
        end = window[1]
        while self.run.frames_sent < end:
            self.check_open()
            self._check_same_stream(resumes)
            await self.run.until_frame(
                lambda: self.run.frames_sent >= end or self.run.result.resumes != resumes
            )
        self._check_same_stream(resumes)
        return line

    async def _say_aloud(self, text: str, tts_url: str) -> None:
        """Speak `text` as synthesised speech: the platform's recogniser must hear it (nothing
        goes to an STT simulator's control API)."""
        resumes = self.run.result.resumes
        try:
            voice = await synthesize(tts_url, text, self.run.opts.tts_api_key)
        except (AuraError, OSError, TimeoutError) as exc:
            raise CallError(f"caller TTS failed for {text!r}: {exc}") from exc
        start = self.run.frames_sent + 1
        window = (start, start + math.ceil(len(voice) / FRAME_BYTES))
        self.run.voice, self.run.speech = voice, window  # no await since frames_sent was read
        line = await self._speak_window(text, window, resumes)
        self.run.log("sent", "said", text=text)
        self.run.result.lines.append(line)

    async def _register(
        self, text: str, window: tuple[int, int], interim_text: str | None = None
    ) -> None:
        url = self.run.opts.stt_control_url
        if url is None:
            return
        urls = [url, *self.run.opts.extra_control_urls]
        await asyncio.gather(*(self._register_at(u, text, window, interim_text) for u in urls))

    async def _unregister(
        self, text: str, window: tuple[int, int], interim_text: str | None = None
    ) -> None:
        """Withdraw a registration that came too late to be spoken in its window: the
        recogniser would hear it anyway (scripted words need no audio), as a second line."""
        url = self.run.opts.stt_control_url
        if url is None:
            return
        body = self._script_body(text, window, interim_text)
        try:
            resp = await self.run.http.post(url.rstrip("/") + "/sim/listen/unscript", json=body)
        except httpx.HTTPError as exc:
            raise CallError(f"STT control request failed: {exc!r}") from exc
        if resp.status_code >= 300:
            raise CallError(f"STT unscript returned HTTP {resp.status_code}: {resp.text[:200]}")

    def _script_body(
        self, text: str, window: tuple[int, int], interim_text: str | None
    ) -> dict[str, object]:
        """The STT simulator's script entry for a line said in `window` (frames)."""
        body: dict[str, object] = {
            "tag": self.run.result.call_sid,
            "text": text,
            "start_ms": window[0] * FRAME_MS,
            "end_ms": window[1] * FRAME_MS,
        }
        if interim_text:
            body["interim_text"] = interim_text
        return body

    async def _register_at(
        self, url: str, text: str, window: tuple[int, int], interim_text: str | None
    ) -> None:
        body = self._script_body(text, window, interim_text)
        for attempt in range(3):  # a loaded simulator may drop a connection: retry (the
            try:  # simulator takes the same utterance twice as once)
                resp = await self.run.http.post(url.rstrip("/") + "/sim/listen/script", json=body)
                break
            except httpx.HTTPError as exc:
                if attempt == 2:
                    raise CallError(f"STT control request failed: {exc!r}") from exc
                await asyncio.sleep(0.05 * (attempt + 1))
        if resp.status_code >= 300:
            raise CallError(f"STT control returned HTTP {resp.status_code}: {resp.text[:200]}")
