"""Barge-in policy (pure): words, continuous voice, backchannels, once per utterance."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from services.media.caller.barge_in import (
    DEFAULT_BACKCHANNELS,
    BargeInDetector,
    BargeInOptions,
    Interrupt,
    heard_text,
    only_backchannels,
    words_of,
)


def speaking_detector(**options: object) -> BargeInDetector:
    detector = BargeInDetector(BargeInOptions.model_validate(options))
    assert detector.agent_speaking(True, 0) is None
    return detector


def test_words_interrupt_the_speaking_agent() -> None:
    d = speaking_detector()
    assert d.voice_started(1000) is None
    assert d.transcript("wait", 1200, is_final=False) is None  # one word is not enough
    assert d.transcript("wait a", 1300, is_final=False) == Interrupt("words", 1300)


@pytest.mark.parametrize(
    "text",
    ["mhm", "yeah okay", "Uh-huh.", "uh huh", "Yes, yes!", "I see.", "OK right sure", "Mm, hmm"],
)
def test_backchannels_never_interrupt(text: str) -> None:
    d = speaking_detector()
    assert d.voice_started(1000) is None
    assert d.transcript(text, 1400, is_final=False) is None
    assert d.transcript(text, 1600, is_final=True) is None
    assert d.advance(5000) is None  # long voice, but only backchannels were heard
    assert d.voice_stopped(5000) is None


def test_backchannel_then_real_words_interrupts() -> None:
    d = speaking_detector()
    d.voice_started(1000)
    assert d.transcript("yeah okay", 1400, is_final=True) is None
    assert d.transcript("but", 1500, is_final=False) == Interrupt("words", 1500)


def test_backchannel_sequences_across_utterances() -> None:
    d = speaking_detector()
    for start in (1000, 3000, 5000):  # "mhm" ... "yeah" ... "right": the agent keeps talking
        d.voice_started(start)
        assert d.transcript("mhm yeah right", start + 400, is_final=True) is None
        d.voice_stopped(start + 500)
        d.utterance_ended(start + 800)
    assert d.agent_is_speaking


def test_continuous_voice_interrupts_before_words_arrive() -> None:
    d = speaking_detector()
    assert d.voice_started(2000) is None
    assert d.advance(2580) is None
    assert d.advance(2600) == Interrupt("voice", 2600)


def test_voice_with_non_backchannel_word_interrupts_at_min_speech() -> None:
    d = speaking_detector()
    d.voice_started(2000)
    assert d.transcript("no", 2300, is_final=False) is None  # one word, not a backchannel
    assert d.advance(2600) == Interrupt("voice", 2600)


def test_voice_that_stops_before_min_speech_does_not_interrupt() -> None:
    d = speaking_detector()
    d.voice_started(2000)
    d.advance(2500)
    assert d.voice_stopped(2500) is None
    assert d.advance(4000) is None
    assert d.voice_started(4100) is None  # a new run of the same utterance starts from 0
    assert d.advance(4600) is None
    assert d.advance(4700) == Interrupt("voice", 4700)


def test_onsets_from_vad_and_stt_are_deduplicated() -> None:
    d = speaking_detector()
    d.voice_started(2000)  # local VAD
    d.voice_started(2150)  # STT SpeechStarted for the same speech
    assert d.advance(2600) == Interrupt("voice", 2600)  # measured from the first onset


def test_interrupt_fires_once_per_utterance() -> None:
    d = speaking_detector()
    d.voice_started(1000)
    assert d.transcript("hold on", 1300, is_final=False) == Interrupt("words", 1300)
    assert d.transcript("hold on a second", 1600, is_final=False) is None
    assert d.advance(3000) is None
    assert d.transcript("hold on a second please", 1800, is_final=True) is None
    assert d.agent_speaking(False, 3100) is None
    assert d.agent_speaking(True, 3200) is None  # same utterance still open: no second fire
    d.voice_stopped(3300)
    d.utterance_ended(3600)
    d.voice_started(4000)  # the next utterance may interrupt again
    assert d.transcript("actually no", 4300, is_final=False) == Interrupt("words", 4300)


def test_speech_while_agent_silent_is_a_turn_not_barge_in() -> None:
    d = BargeInDetector()
    assert d.voice_started(1000) is None
    assert d.transcript("I'd like to book a haircut", 1500, is_final=False) is None
    assert d.advance(3000) is None
    assert d.transcript("mhm yeah okay", 3000, is_final=True) is None
    d.utterance_ended(3300)
    assert d.agent_speaking(True, 3500) is None  # the agent answers that finished turn


def test_agent_starting_over_an_ongoing_utterance_interrupts() -> None:
    d = BargeInDetector()
    d.voice_started(1000)
    assert d.transcript("can you check", 1400, is_final=False) is None
    assert d.agent_speaking(True, 1500) == Interrupt("words", 1500)


def test_finals_accumulate_and_interim_is_replaced() -> None:
    d = speaking_detector(min_words=3)
    d.voice_started(100)
    assert d.transcript("okay", 300, is_final=True) is None
    assert d.transcript("one two", 400, is_final=False) == Interrupt("words", 400)
    d2 = speaking_detector(min_words=3)
    assert d2.transcript("one", 200, is_final=False) is None
    assert d2.transcript("two", 300, is_final=False) is None  # interim replaced: one word
    assert d2.transcript("one two", 400, is_final=True) is None
    assert d2.transcript("three", 500, is_final=False) == Interrupt("words", 500)


def test_utterance_end_restarts_an_open_voice_run() -> None:
    d = speaking_detector()
    d.voice_started(1000)
    assert d.transcript("mhm", 1300, is_final=True) is None
    d.utterance_ended(1500)  # STT says done; VAD has not reported the offset yet
    assert d.voice_started(1600) is None  # ignored onset (voice still on) opens the utterance
    assert d.advance(2080) is None  # 580 ms since the utterance end, not 1080 since onset
    assert d.advance(2100) == Interrupt("voice", 2100)


def test_late_stt_event_does_not_move_the_clock_back() -> None:
    d = speaking_detector()
    d.voice_started(1000)
    d.advance(1500)
    assert d.transcript("stop please", 1200, is_final=False) == Interrupt("words", 1500)


def test_custom_options_and_normalization() -> None:
    opts = BargeInOptions(min_words=1, min_speech_ms=0, backchannels=frozenset({"Got it!"}))
    assert opts.backchannels == frozenset({"got it"})
    d = BargeInDetector(opts)
    d.agent_speaking(True, 0)
    assert d.transcript("got it.", 100, is_final=False) is None
    assert d.transcript("got it. Yeah", 200, is_final=False) == Interrupt("words", 200)


def test_words_and_backchannel_helpers() -> None:
    assert words_of("Uh-huh, I’m—SURE!") == ("uh", "huh", "i'm", "sure")
    assert words_of("  ...  ") == ()
    bc = BargeInOptions().backchannels
    assert "uh huh" in bc and "i see" in bc and len(bc) == len(DEFAULT_BACKCHANNELS) - 1
    assert only_backchannels(("uh", "huh", "yeah", "i", "see"), bc)
    assert not only_backchannels(("i",), bc)  # half of "i see"
    assert not only_backchannels(("yeah", "no"), bc)
    assert not only_backchannels((), bc)


def test_bad_options_and_input_are_rejected() -> None:
    with pytest.raises(ValidationError):
        BargeInOptions(min_words=0)
    with pytest.raises(ValidationError):
        BargeInOptions(min_speech_ms=-5)
    with pytest.raises(ValidationError):
        BargeInOptions(backchannels=frozenset({"?!"}))
    d = BargeInDetector()
    with pytest.raises(ValueError, match="audio_ms"):
        d.advance(-1)
    with pytest.raises(ValueError, match="audio_ms"):
        d.voice_started(1.5)  # type: ignore[arg-type]


def test_heard_text_keeps_only_played_segments() -> None:
    segments = [("Sure, we open at nine.", True), ("  On  Saturdays ", True), ("we", False)]
    assert heard_text(segments) == "Sure, we open at nine. On Saturdays"
    assert heard_text([("Hello", False)]) == ""
    assert heard_text([]) == ""
    assert heard_text([("", True), ("Hi", True)]) == "Hi"
