"""Cutting the silence Piper puts around a text that is only part of a sentence."""

from __future__ import annotations

import numpy as np

from services.speech.tts.phrase_edges import (
    KEEP_MS,
    ends_mid_sentence,
    goes_on_a_sentence,
    trim_edges,
)

RATE = 1000  # one sample a millisecond keeps the arithmetic readable


def padded(lead_ms: int, voice_ms: int, tail_ms: int) -> np.ndarray:
    voice = np.full(voice_ms, 0.5, dtype=np.float32)
    return np.concatenate([np.zeros(lead_ms, np.float32), voice, np.zeros(tail_ms, np.float32)])


def test_a_phrase_and_the_rest_of_its_sentence_are_told_apart() -> None:
    assert ends_mid_sentence("A men's haircut") and not ends_mid_sentence("It is £25.")
    assert not ends_mid_sentence('He said "fine."') and not ends_mid_sentence("Really?  ")
    assert goes_on_a_sentence(" is £25 and takes 30 minutes.")
    assert not goes_on_a_sentence("A beard trim is £15.") and not goes_on_a_sentence("  ")


def test_only_the_asked_edges_are_cut_to_what_is_kept() -> None:
    audio = padded(120, 400, 200)
    assert len(trim_edges(audio, RATE, lead=False, tail=True)) == 120 + 400 + KEEP_MS
    assert len(trim_edges(audio, RATE, lead=True, tail=False)) == KEEP_MS + 400 + 200
    both = trim_edges(audio, RATE, lead=True, tail=True)
    assert len(both) == KEEP_MS + 400 + KEEP_MS and float(both.max()) == 0.5
    assert trim_edges(audio, RATE, lead=False, tail=False) is audio


def test_silence_shorter_than_what_is_kept_and_all_silence_stay_as_they_are() -> None:
    short = padded(10, 300, 5)
    assert len(trim_edges(short, RATE, lead=True, tail=True)) == len(short)
    quiet = np.zeros(500, dtype=np.float32)
    assert len(trim_edges(quiet, RATE, lead=True, tail=True)) == 500
