"""Dynamic endpointing: a caller who is plainly done is never answered later than with the
fixed silence rule; one who stops mid-sentence is held, in caller audio time."""

from __future__ import annotations

import pytest

from services.media.caller.end_of_turn import EndOfTurnOptions, TurnEnd, open_reason
from shared.runtime.settings import Settings

PLAINLY_DONE = [
    "Hi, how much is a haircut?",
    "I'd like to book a table for four tomorrow at seven.",
    "Can I come in on Tuesday",
    "That works for me",
    "Yes please",
    "No thanks, that's all.",
    "My name is Sam Carter",
    "It's 555 0123 4567",
    "my number is 07700 900123",
    "Could you fit me in",
    "I think so",
    "I'd love to",
    "I'll take this",
    "Great, thanks, bye.",
    "What time do you close on Saturday",
    "Actually, can I book for tomorrow morning instead",
    "cancel my booking",
    "Do you have anything later",
    "okay",
    "The second one",
]
STOPS_MID_SENTENCE = [
    ("My number is", "phrase:my number is"),
    ("my number is 07700", "digits:5"),
    ("I'd like to book a table for", "continuation:for"),
    ("I need a haircut and", "continuation:and"),
    ("Can I book the", "continuation:the"),
    ("Um, so I was wondering, um", "continuation:um"),
    ("It's for my wife,", "comma"),
    ("My name is", "phrase:my name is"),
    ("Let me think", "phrase:let me think"),
    ("I want to change it to", "continuation:to"),
    ("Hi.", "opener"),  # Whisper's "Hi." of "Hi, how much is a haircut?" said with a pause
    ("Hello?", "opener"),
    ("hi there", "opener"),
    ("Great.", "opener"),  # Whisper's "Great." of "Great, thanks, bye." (Piper's comma pause)
]
FIXED_ENDPOINTING_MS = Settings().stt_endpointing_ms  # today's rule: 300 ms of silence


def dynamic_end_ms(text: str, speech_end_ms: int, options: EndOfTurnOptions) -> int:
    """Caller audio time at which the dynamic rule ends a turn the caller does not resume:
    STT says speech_final after `short_ms`; a held one ends when the hold expires (frames
    every 20 ms, as media checks)."""
    turn = TurnEnd(options)
    final_at = speech_end_ms + options.short_ms
    if turn.speech_final(text, speech_end_ms):
        return final_at
    at = final_at
    while not turn.expired(at):
        at += 20
    return at


@pytest.mark.parametrize("text", PLAINLY_DONE)
def test_plainly_done_is_never_later_than_the_silence_rule(text: str) -> None:
    options = EndOfTurnOptions()
    assert open_reason(text) is None
    speech_end = 4321
    assert dynamic_end_ms(text, speech_end, options) <= speech_end + FIXED_ENDPOINTING_MS
    assert dynamic_end_ms(text, speech_end, options) == speech_end + options.short_ms


@pytest.mark.parametrize(("text", "reason"), STOPS_MID_SENTENCE)
def test_a_sentence_cut_short_is_held(text: str, reason: str) -> None:
    options = EndOfTurnOptions(short_ms=200, hold_ms=800)
    assert open_reason(text) == reason
    assert dynamic_end_ms(text, 1000, options) == 1000 + 200 + 800


def test_held_utterance_goes_on_when_words_arrive() -> None:
    turn = TurnEnd(EndOfTurnOptions(short_ms=200, hold_ms=800))
    assert turn.speech_final("My number is", 2000) is False
    assert turn.holding and turn.held_reason == "phrase:my number is"
    assert not turn.expired(2980)
    turn.words_arrived()  # "five five five ..."
    assert not turn.holding and not turn.expired(9000)
    assert turn.speech_final("My number is 555 0123 4567", 4800) is True


def test_no_hold_when_disabled() -> None:
    turn = TurnEnd(EndOfTurnOptions(short_ms=300, hold_ms=0))
    assert turn.speech_final("I need a haircut and", 1000) is True


def test_a_hold_waits_while_the_caller_speaks_again_before_stt_has_the_words() -> None:
    # "Great," (held as an opener), then "thanks, bye" whose words a busy recogniser sends
    # a second late: the local VAD heard the voice, so the hold does not run out under it.
    turn = TurnEnd(EndOfTurnOptions(short_ms=200, hold_ms=800, after_voice_ms=1500))
    assert turn.speech_final("Great.", 1000) is False and turn.held_reason == "opener"
    assert turn.expired(2000)  # nothing heard since: the plain rule (200 + 800 ms)
    assert not turn.expired(2000, spoke_again=True)  # the voice is still on
    assert not turn.expired(5000, spoke_again=True, voice_stopped_ms=4000)
    assert turn.expired(5500, spoke_again=True, voice_stopped_ms=4000)  # no words came


def test_voice_that_never_becomes_words_ends_the_hold_at_the_cap() -> None:
    turn = TurnEnd(EndOfTurnOptions(short_ms=200, hold_ms=800, voice_cap_ms=6000))
    assert turn.speech_final("My number is", 1000) is False
    assert not turn.expired(6980, spoke_again=True)
    assert turn.expired(7000, spoke_again=True)  # a TV in the room: 6 s after the words
