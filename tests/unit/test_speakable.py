"""Cutting a streamed LLM reply into speakable chunks."""

from __future__ import annotations

from services.brain.speakable import SpeakableChunker


def feed_all(chunker: SpeakableChunker, deltas: list[str]) -> list[str]:
    out: list[str] = []
    for delta in deltas:
        out.extend(chunker.feed(delta))
    return out


def test_sentence_is_cut_when_its_end_arrives() -> None:
    c = SpeakableChunker()
    assert c.feed("Hello") == []
    assert c.feed(" there.") == ["Hello there."]  # no need to wait for the next space
    assert c.feed(" How") == []
    assert c.feed(" are you?") == ["How are you?"]
    assert c.flush() is None


def test_a_period_that_may_go_on_waits_for_the_next_delta() -> None:
    c = SpeakableChunker()
    assert c.feed("A trim is £7.") == []  # "£7." may be "£7.50"
    assert c.feed("50, open till 6 p.m.") == []  # an initialism
    assert c.feed(" Ask for Dr.") == ["A trim is £7.50, open till 6 p.m."]
    assert c.feed(" Smith") == ["Ask for Dr."]  # the space decides, as before
    assert c.feed(" or I.") == []  # a one-letter word
    assert c.flush() == "Smith or I."


def test_a_decimal_split_across_deltas_stays_whole() -> None:
    c = SpeakableChunker()
    assert feed_all(c, ["It is 3.", "5 miles away."]) == ["It is 3.5 miles away."]


def test_multiple_sentences_in_one_delta() -> None:
    c = SpeakableChunker()
    assert c.feed("Yes! We open at 9. Is that ok? ") == ["Yes!", "We open at 9.", "Is that ok?"]
    assert c.flush() is None


def test_sentence_split_char_by_char() -> None:
    c = SpeakableChunker()
    text = "One. Two! Three? Four"
    assert feed_all(c, list(text)) == ["One.", "Two!", "Three?"]
    assert c.flush() == "Four"


def test_closing_quotes_and_ellipsis_stay_with_sentence() -> None:
    c = SpeakableChunker()
    assert c.feed('He said "fine." Then… well. ') == ['He said "fine."', "Then…", "well."]
    assert c.feed("(Really!) ok") == ["(Really!)"]
    assert c.flush() == "ok"


def test_decimal_point_is_not_a_sentence_end() -> None:
    c = SpeakableChunker()
    assert c.feed("It costs £7.50 for a trim") == []
    assert c.flush() == "It costs £7.50 for a trim"


def test_clause_split_only_past_max_chars() -> None:
    c = SpeakableChunker(max_chars=30)
    assert c.feed("Well, we have slots") == []  # 19 chars: short, comma is not a cut
    assert c.feed(" on Monday, Tue") == ["Well,"]  # 34 chars > 30: cut at first clause
    assert c.feed("s") == []  # rest is 29 chars again: no further cut
    assert c.flush() == "we have slots on Monday, Tues"


def test_no_clause_split_when_short() -> None:
    c = SpeakableChunker(max_chars=160)
    assert c.feed("Sure, no problem; give me a second: ") == []
    assert c.flush() == "Sure, no problem; give me a second:"


def test_long_text_without_clause_waits() -> None:
    c = SpeakableChunker(max_chars=10)
    assert c.feed("abcdefghijklmnopqrstuvwxyz") == []
    assert c.feed(" more words") == []
    assert c.flush() == "abcdefghijklmnopqrstuvwxyz more words"


def test_long_text_splits_at_each_clause() -> None:
    c = SpeakableChunker(max_chars=10)
    out = c.feed("first part, second part; third part: tail")
    assert out == ["first part,", "second part;", "third part:"]
    assert c.flush() == "tail"


def test_sentence_preferred_over_clause() -> None:
    c = SpeakableChunker(max_chars=10)
    assert c.feed("Hi, this is a sentence. More") == ["Hi, this is a sentence."]
    assert c.flush() == "More"


def test_no_empty_chunks() -> None:
    c = SpeakableChunker(max_chars=5)
    out = feed_all(c, ["   ", "\n", " ", "Ok. ", "  ", "\t", "Fine. ", "   "])
    assert out == ["Ok.", "Fine."]
    assert c.flush() is None


def test_whitespace_only_reply() -> None:
    c = SpeakableChunker()
    assert c.feed("  \n ") == []
    assert c.flush() is None


def test_flush_resets_buffer() -> None:
    c = SpeakableChunker()
    c.feed("left over")
    assert c.flush() == "left over"
    assert c.feed("New. ") == ["New."]
    assert c.flush() is None


def test_newline_ends_sentence() -> None:
    c = SpeakableChunker()
    assert c.feed("Line one.\nLine two.\n") == ["Line one.", "Line two."]


def test_long_first_sentence_is_cut_at_a_clause_but_later_ones_are_not() -> None:
    chunker = SpeakableChunker(max_chars=160, first_max_chars=60)
    first = "We have openings on Tuesday morning, Wednesday afternoon and Friday at nine"
    assert chunker.feed(first) == ["We have openings on Tuesday morning,"]
    later = " and on Saturday, if that suits you, we open early"
    assert chunker.feed(later) == []
    assert chunker.flush() == (
        "Wednesday afternoon and Friday at nine and on Saturday, if that suits you, we open early"
    )


def test_the_opening_phrase_goes_once_it_holds_enough_whole_words() -> None:
    c = SpeakableChunker(first_phrase_words=3)
    assert c.feed("We're open") == []  # "open" may go on ("opening"): not a whole word yet
    assert c.feed(" Monday to") == ["We're open Monday"]  # cut at the last whole word
    assert c.feed(" Friday from nine.") == ["to Friday from nine."]  # then whole sentences
    assert c.feed(" On Saturdays we") == []  # only the first chunk is a phrase
    assert c.feed(" open at eight.") == ["On Saturdays we open at eight."]
    assert c.flush() is None


def test_an_opening_sentence_that_ends_first_is_spoken_whole() -> None:
    c = SpeakableChunker(first_phrase_words=3)
    assert c.feed("You're welcome.") == ["You're welcome."]
    assert c.feed(" Goodbye!") == ["Goodbye!"]


def test_a_sentence_end_in_the_same_delta_wins_over_the_phrase() -> None:
    c = SpeakableChunker(first_phrase_words=3)
    assert c.feed("Yes, of course. We") == ["Yes, of course."]
    assert c.feed(" can do that") == []  # the first chunk has gone: sentences from here on
    assert c.flush() == "We can do that"


def test_a_word_split_across_deltas_is_never_cut() -> None:
    c = SpeakableChunker(first_phrase_words=3)
    out = feed_all(c, ["A men", "'s hair", "cut is", " £2", "5 and"])
    assert out == ["A men's haircut"]  # "is" has no space after it yet: it may be "island"
    assert c.flush() == "is £25 and"


def test_without_an_opening_phrase_the_first_chunk_is_a_sentence() -> None:
    c = SpeakableChunker(first_phrase_words=0)
    assert feed_all(c, ["We're open", " Monday to", " Friday."]) == ["We're open Monday to Friday."]


def test_the_opening_phrase_never_ends_on_a_number_or_a_word_that_leans_on_the_next() -> None:
    c = SpeakableChunker(first_phrase_words=3)
    assert c.feed("We're at") == []
    assert c.feed(" 123 High") == []  # "at" and "123" go on: no cut that sounds like a stumble
    assert c.feed(" Street. Anything") == ["We're at 123 High Street."]
    d = SpeakableChunker(first_phrase_words=3)
    assert feed_all(d, ["A men's", " haircut is", " £25 and"]) == ["A men's haircut"]
    assert d.flush() == "is £25 and"
