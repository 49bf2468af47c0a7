"""Quiet-frame batching for STT: which µ-law frames count as quiet, and when one may wait."""

from __future__ import annotations

import numpy as np

from services.media.caller.quiet_audio import QuietBatcher, QuietBatching, quiet_codes
from shared.codecs import ULAW_SILENCE, pcm16_to_ulaw, ulaw_to_pcm16

SILENCE = bytes([ULAW_SILENCE]) * 160


def tone(amplitude: float) -> bytes:
    """A 20 ms 440 Hz tone at `amplitude` (of full scale), as µ-law."""
    t = np.arange(160) / 8000.0
    return pcm16_to_ulaw((np.sin(2 * np.pi * 440 * t) * amplitude * 32767).astype(np.int16))


def one_sample(value: int) -> bytes:
    return pcm16_to_ulaw(np.array([value], dtype=np.int16))


def test_quiet_codes_are_exactly_the_samples_under_the_peak() -> None:
    codes = quiet_codes(-45.0)
    limit = 32768 * 10 ** (-45 / 20)
    decoded = ulaw_to_pcm16(bytes(range(256)))
    assert set(codes) == {c for c in range(256) if abs(int(decoded[c])) < limit}
    assert ULAW_SILENCE in codes and 0x7F in codes  # both µ-law zeros
    assert 0x00 not in codes and 0x80 not in codes  # both full-scale codes


def test_a_frame_is_quiet_only_when_every_sample_is() -> None:
    batcher = QuietBatcher()
    assert batcher.is_quiet(SILENCE)
    assert batcher.is_quiet(tone(0.002))  # -54 dBFS line hiss
    assert not batcher.is_quiet(tone(0.05))  # -26 dBFS: quiet speech
    assert not batcher.is_quiet(SILENCE[:80] + one_sample(2000) + SILENCE[:79])  # -24 dBFS


def test_quiet_frames_wait_only_after_the_quiet_run_and_up_to_a_batch() -> None:
    batcher = QuietBatcher(QuietBatching(frames=4, after_ms=100))  # 5 frames of quiet first
    held = 0
    decisions = []
    for _ in range(13):
        wait = batcher.hold(SILENCE, held, False)
        decisions.append(wait)
        held = held + 1 if wait else 0
    # 5 quiet frames go out one by one, then 3 wait and the 4th sends the batch of 4, twice
    assert decisions == [False] * 5 + [True, True, True, False] * 2
    # a loud frame never waits, and restarts the quiet run
    assert batcher.hold(tone(0.5), held, False) is False
    assert [batcher.hold(SILENCE, 0, False) for _ in range(6)] == [False] * 5 + [True]


def test_one_frame_per_batch_never_holds() -> None:
    batcher = QuietBatcher(QuietBatching(frames=1, after_ms=0, settled_after_ms=0))
    assert not any(batcher.hold(SILENCE, 0, True) for _ in range(100))


def test_with_no_utterance_in_progress_quiet_waits_sooner_but_loud_never_does() -> None:
    batcher = QuietBatcher(QuietBatching(frames=3, after_ms=1000, settled_after_ms=60))
    # 3 quiet frames (60 ms, past endpointing) go at once, then batches of 3
    decisions = [batcher.hold(SILENCE, held, True) for held in (0, 0, 0, 0, 1, 2)]
    assert decisions == [False, False, False, True, True, False]
    assert batcher.hold(tone(0.5), 0, True) is False
    # the quiet run restarts; mid-utterance the 4th quiet frame still goes at once
    assert [batcher.hold(SILENCE, 0, s) for s in (True, True, True, False)] == [False] * 4
    assert batcher.hold(SILENCE, 0, True) is True
