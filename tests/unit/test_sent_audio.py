"""How much of each cut segment the caller heard, from the send times (sent_audio.py)."""

from __future__ import annotations

from services.media.agent_speech.segment_ledger import SegmentLedger
from services.media.agent_speech.sent_audio import RESUME_REWIND_MS, SentAudio, skipped_ms

MS = 8  # bytes of µ-law per ms


def test_a_cut_segment_goes_on_from_where_twilio_had_played_less_the_rewind() -> None:
    ledger, sent = SegmentLedger(), SentAudio()
    first = ledger.queue(1, 0, "A men's haircut is £25.")
    ledger.audio(2000 * MS)
    sent.sent(first.mark, b"\x00" * 2000 * MS, now=10.0)  # 2 s of audio
    ledger.flushed()
    second = ledger.queue(1, 1, "A beard trim is £15.")
    ledger.audio(1000 * MS)
    sent.sent(second.mark, b"\x01" * 1000 * MS, now=10.1)
    ledger.flushed()
    cut = ledger.clear()
    # At 10.8 s, 800 ms of the 3 s sent had played: all of it from the first segment.
    unheard = sent.cut(cut, now=10.8)
    assert len(unheard[first.mark]) == (2000 - 800 + RESUME_REWIND_MS) * MS
    assert unheard[second.mark] == b"\x01" * 1000 * MS  # not started: all of it again
    assert skipped_ms([first, second], unheard) == 800 - RESUME_REWIND_MS


def test_played_audio_is_forgotten_and_nothing_is_resumed_after_it() -> None:
    ledger, sent = SegmentLedger(), SentAudio()
    segment = ledger.queue(1, 0, "Hello.")
    ledger.audio(500 * MS)
    sent.sent(segment.mark, b"\x02" * 500 * MS, now=1.0)
    ledger.flushed()
    ledger.played(segment.mark)
    sent.played(segment.mark)
    assert sent.cut(ledger.clear(), now=5.0) == {}
    assert skipped_ms([], {}) == 0
