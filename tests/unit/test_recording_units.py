"""Call recordings, the pure parts: the line's timeline (caller left, agent right, clears),
the µ-law stereo WAV, chunk assembly, and HTTP byte ranges."""

from __future__ import annotations

import io
import wave

import numpy as np
import pytest

from services.gateway.calls_api.byte_ranges import RangeError, parse_range
from services.media.recording.timeline import StereoTimeline
from shared.recordings import wav

TONE = bytes([0x10]) * 800  # 100 ms of loud µ-law
SILENT = 0xFF


def channels(frames: bytes) -> tuple[bytes, bytes]:
    return frames[0::2], frames[1::2]


def test_caller_lands_at_its_timestamp_and_agent_plays_after_what_is_queued() -> None:
    line = StereoTimeline()
    line.caller(800, TONE)  # 100-200 ms
    line.agent(0, TONE)  # sent at 0: plays 0-100 ms
    line.agent(0, TONE)  # sent at once too: queued behind, plays 100-200 ms
    start, frames = line.take(2400)
    caller, agent = channels(frames)
    assert start == 0 and len(caller) == 2400
    assert set(caller[:800]) == {SILENT} and caller[800:1600] == TONE
    assert agent[:1600] == TONE * 2 and set(agent[1600:]) == {SILENT}


def test_clear_silences_the_agent_from_the_clear_onwards() -> None:
    line = StereoTimeline()
    line.agent(0, TONE * 10)  # one second queued
    line.clear(2000)  # barge-in at 250 ms
    line.agent(4000, TONE)  # the next reply, sent at 500 ms
    _, frames = line.take(8000)
    _, agent = channels(frames)
    assert agent[:2000] == TONE * 2 + TONE[:400]
    assert set(agent[2000:4000]) == {SILENT}
    assert agent[4000:4800] == TONE


def test_taken_frames_are_final_and_late_caller_audio_is_counted_not_misplaced() -> None:
    line = StereoTimeline()
    line.caller(0, TONE)
    first = line.take(800)
    line.caller(400, TONE)  # half of it is before the base now
    second = line.take(1600)
    assert first[0] == 0 and second[0] == 800
    assert line.late_frames == 400
    assert channels(second[1])[0][:400] == TONE[:400]


def test_finish_drops_agent_audio_not_yet_played_and_keeps_caller_audio() -> None:
    line = StereoTimeline(base=8000)  # a stream that started 1 s into the call
    line.agent(8000, TONE * 20)  # two seconds queued
    line.caller(8000, TONE * 5)
    start, frames = line.finish(8000 + 2400)
    caller, agent = channels(frames)
    assert start == 8000 and len(caller) == 4000  # caller audio up to 500 ms is kept
    assert agent[:2400] == (TONE * 3)[:2400] and set(agent[2400:]) == {SILENT}


def test_chunks_assemble_on_the_call_clock_with_silence_between_streams() -> None:
    first = wav.interleave(TONE, TONE)
    second = wav.interleave(TONE, bytes(800))
    frames = wav.join_chunks([(8000, second), (0, first)])
    data = wav.header(len(frames) // 2) + frames
    parsed = wav.parse(data)
    assert parsed.rate == 8000 and parsed.duration_s == pytest.approx(1.1)
    assert np.all(parsed.caller[800:8000] == 0)  # the gap is silence (µ-law 0xFF decodes to 0)
    assert np.any(parsed.caller[8000:] != 0) and np.any(parsed.caller[:800] != 0)


def test_header_is_valid_mulaw_stereo_and_pcm_copy_reads_with_stdlib_wave() -> None:
    frames = wav.interleave(TONE, bytes([SILENT]) * len(TONE))
    data = wav.header(len(TONE)) + frames
    assert len(wav.header(0)) == wav.HEADER_BYTES
    assert data[20:22] == (7).to_bytes(2, "little")  # WAVE_FORMAT_MULAW
    with wave.open(io.BytesIO(wav.to_pcm16_wav(data))) as reader:
        assert reader.getnchannels() == 2 and reader.getframerate() == 8000
        pcm = np.frombuffer(reader.readframes(reader.getnframes()), dtype="<i2")
    assert np.any(pcm[0::2] != 0) and np.all(pcm[1::2] == 0)
    with pytest.raises(wav.WavError):
        wav.parse(b"RIFF\x00\x00\x00\x00WAVEjunk")


@pytest.mark.parametrize(
    ("header", "span"),
    [
        (None, None),
        ("bytes=0-99", (0, 100)),
        ("bytes=100-", (100, 1000)),
        ("bytes=-10", (990, 1000)),
        ("bytes=900-5000", (900, 1000)),
        ("bytes=0-1,5-9", None),  # several ranges: the whole body
    ],
)
def test_byte_ranges(header: str | None, span: tuple[int, int] | None) -> None:
    assert parse_range(header, 1000) == span


@pytest.mark.parametrize(
    ("header", "status"),
    [
        ("bytes=1000-", 416),
        ("bytes=-0", 416),
        ("items=0-1", 400),
        ("bytes=abc", 400),
        ("bytes=9-3", 400),
        ("bytes=-", 400),
        ("bytes=" + "1" * 300 + "-", 400),
    ],
)
def test_bad_byte_ranges(header: str, status: int) -> None:
    with pytest.raises(RangeError) as caught:
        parse_range(header, 1000)
    assert caught.value.status == status
