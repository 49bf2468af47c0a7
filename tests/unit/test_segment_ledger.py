"""Segment bookkeeping: audio accounting, first-audio flag, flushed -> sent -> played."""

from __future__ import annotations

from services.media.agent_speech.segment_ledger import Segment, SegmentLedger


def test_mark_name() -> None:
    assert Segment(3, 7, "hi").mark == "t3-s7"


def test_audio_without_segment() -> None:
    ledger = SegmentLedger()
    assert ledger.audio(160) == (None, False)
    assert ledger.flushed() is None
    assert ledger.pending_marks == 0


def test_audio_accumulates_on_head_segment() -> None:
    ledger = SegmentLedger()
    s1 = ledger.queue(1, 0, "Hello.")
    s2 = ledger.queue(1, 1, "How can I help?")
    assert (s1.turn_id, s1.seq, s1.text, s1.audio_bytes) == (1, 0, "Hello.", 0)
    seg, first = ledger.audio(100)
    assert seg is s1 and first is True
    seg, first = ledger.audio(60)
    assert seg is s1 and first is False
    assert s1.audio_bytes == 160
    assert s2.audio_bytes == 0
    assert ledger.flushed() is s1
    seg, first = ledger.audio(40)
    assert seg is s2
    assert first is False  # same turn already had audio
    assert s2.audio_bytes == 40
    assert s1.audio_bytes == 160


def test_first_audio_per_turn() -> None:
    ledger = SegmentLedger()
    ledger.queue(1, 0, "a")
    ledger.queue(2, 0, "b")
    ledger.queue(2, 1, "c")
    flags = []
    for _ in range(3):
        seg, first = ledger.audio(10)
        assert seg is not None
        flags.append((seg.turn_id, seg.seq, first))
        seg2, again = ledger.audio(10)
        assert seg2 is seg and again is False
        ledger.flushed()
    assert flags == [(1, 0, True), (2, 0, True), (2, 1, False)]


def test_segment_without_audio_does_not_consume_first_flag() -> None:
    ledger = SegmentLedger()
    ledger.queue(5, 0, "silent")
    ledger.queue(5, 1, "spoken")
    assert ledger.flushed() is not None  # no audio for seq 0
    seg, first = ledger.audio(8)
    assert seg is not None and seg.seq == 1 and first is True


def test_flushed_then_played() -> None:
    ledger = SegmentLedger()
    s1 = ledger.queue(1, 0, "a")
    s2 = ledger.queue(1, 1, "b")
    ledger.audio(320)
    assert ledger.pending_marks == 0
    assert ledger.flushed() is s1
    assert ledger.pending_marks == 1
    assert ledger.flushed() is s2
    assert ledger.pending_marks == 2
    assert ledger.flushed() is None
    played = ledger.played("t1-s0")
    assert played is s1 and played.audio_bytes == 320
    assert ledger.pending_marks == 1
    assert ledger.played("t1-s0") is None  # echoed twice
    assert ledger.played("t1-s1") is s2
    assert ledger.pending_marks == 0


def test_unknown_mark() -> None:
    ledger = SegmentLedger()
    ledger.queue(1, 0, "a")
    assert ledger.played("t1-s0") is None  # queued but not yet flushed
    ledger.flushed()
    assert ledger.played("utt-7") is None
    assert ledger.played("") is None
    assert ledger.pending_marks == 1


def test_played_out_of_order() -> None:
    ledger = SegmentLedger()
    for seq in range(3):
        ledger.queue(9, seq, f"s{seq}")
        ledger.flushed()
    assert ledger.played("t9-s2") is not None
    assert ledger.pending_marks == 2
    seg = ledger.played("t9-s0")
    assert seg is not None and seg.text == "s0"


def test_a_filler_is_not_the_replys_first_audio_nor_its_heard_text() -> None:
    ledger = SegmentLedger()
    filler = ledger.queue(4, -1, "One moment.")
    assert filler.filler and filler.mark == "t4-s-1"
    assert ledger.audio(800) == (filler, False)  # no stage of the reply
    ledger.flushed()
    reply = ledger.queue(4, 0, "It is £25.")
    assert ledger.played(filler.mark) is filler and filler.played
    assert ledger.audio(160) == (reply, True)  # the reply's first audio is its own
    ledger.flushed()
    ledger.played(reply.mark)
    assert ledger.heard_text(4) == "It is £25."
