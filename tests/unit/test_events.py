"""Every event round-trips through stream-entry fields; unknown ones are rejected."""

from __future__ import annotations

import json
import typing

import pytest

from shared.contract import events as ev

TP = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
BASE = {"call_sid": "CA123", "tenant_id": "acme", "at": 1700000000.125, "mono_ns": 42}

SAMPLES: list[ev._Event] = [
    ev.CallStarted(
        **BASE,
        from_number="+441",
        to_number="+442",
        direction="outbound",
        pipeline="s2s",
        business_name="Acme",
        greeting="Hi",
        system_prompt="Be nice",
        voice="aura",
        language="de",
    ),
    ev.StreamStarted(**BASE, stream_sid="MZ1", replica="media-0"),
    ev.CallEnded(**BASE, reason="caller-hangup", duration_s=12.5),
    ev.SpeechStarted(**BASE, audio_ms=640),
    ev.TranscriptInterim(**BASE, text="hel", audio_start_ms=0, audio_end_ms=300),
    ev.TranscriptFinal(
        **BASE, text="hello there", audio_start_ms=0, audio_end_ms=900, speech_final=True
    ),
    ev.Dtmf(**BASE, digit="#"),
    ev.TurnRequested(**BASE, turn_id=3, text="book a haircut"),
    ev.TurnPreempted(**BASE, turn_id=3, text="book a haircut"),
    ev.PreemptResolved(
        **BASE,
        turn_id=3,
        used=False,
        preempt_text="book a haircut",
        final_text="book a haircut please",
        reason="words changed",
        wasted_prompt_tokens=120,
        wasted_completion_tokens=9,
    ),
    ev.BargeIn(
        **BASE,
        turn_id=2,
        trigger="vad:voice",
        trigger_at=1795000000.25,
        heard_text="Thanks for calling.",
        cleared_marks=["t2-s1", "t2-s2"],
    ),
    ev.FalseInterrupt(**BASE, turn_id=2, trigger_audio_ms=5120, words="mhm"),
    ev.CallIntent(**BASE, kind="transfer", target="+441632960999", reason="asked", turn_id=4),
    ev.AgentText(**BASE, turn_id=3, seq=1, text="Sure — when?"),
    ev.AgentFiller(**BASE, turn_id=3, seq=-1, text="One moment.", reason="tool_pending"),
    ev.AgentTurnDone(**BASE, turn_id=3, chunks=2, end_call=True),
    ev.ToolRequested(
        **BASE, turn_id=3, tool_call_id="call_1", name="get_business_info", arguments="{}"
    ),
    ev.ToolResult(
        **BASE,
        turn_id=3,
        tool_call_id="call_1",
        name="get_business_info",
        ok=False,
        content='{"error": "x"}',
    ),
    ev.SegmentSent(**BASE, turn_id=3, seq=1, mark="t3-s1", text="Sure.", audio_bytes=8000),
    ev.SegmentPlayed(**BASE, turn_id=3, seq=1, mark="t3-s1", cleared=True),
    ev.LatencyMark(**BASE, turn_id=3, stage="llm_first_token", stage_at=1700000001.5),
    ev.Usage(**BASE, provider="openai", metric="tokens_in", quantity=123.0),
    ev.ProviderError(**BASE, provider="deepgram", message="boom ünïcode"),
    ev.StreamEnded(**BASE, stream_sid="MZ1", replica="media-1", reason="handover", handover=True),
]


def _union_members() -> set[type]:
    union = typing.get_args(ev.Event)[0]
    return set(typing.get_args(union))


def test_samples_cover_every_event_class() -> None:
    members = _union_members()
    assert len({type(s) for s in SAMPLES}) == len(SAMPLES)  # one sample per class
    assert {type(s) for s in SAMPLES} == members


@pytest.mark.parametrize("event", SAMPLES, ids=lambda e: type(e).__name__)
def test_round_trip_str_fields(event: ev._Event) -> None:
    fields = ev.encode(event)
    assert set(fields) == {"type", "e"}
    assert fields["type"] == event.type  # type: ignore[attr-defined]
    assert json.loads(fields["e"])["type"] == fields["type"]
    decoded = ev.decode(fields)
    assert type(decoded) is type(event)
    assert decoded == event


@pytest.mark.parametrize("event", SAMPLES, ids=lambda e: type(e).__name__)
def test_round_trip_bytes_fields(event: ev._Event) -> None:
    fields = {k.encode(): v.encode() for k, v in ev.encode(event).items()}
    decoded = ev.decode(fields)
    assert type(decoded) is type(event)
    assert decoded == event


def test_round_trip_keeps_defaults_and_timestamps() -> None:
    event = ev.Dtmf(call_sid="CA9", digit="5")
    decoded = ev.decode(ev.encode(event))
    assert decoded == event
    assert decoded.v == ev.SCHEMA_VERSION
    assert decoded.at == event.at
    assert decoded.mono_ns == event.mono_ns
    assert decoded.tenant_id == ""
    assert decoded.traceparent is None


def test_traceparent_survives() -> None:
    event = ev.AgentText(call_sid="CA1", turn_id=1, seq=0, text="hi", traceparent=TP)
    decoded = ev.decode(ev.encode(event))
    assert decoded.traceparent == TP
    raw = {k.encode(): v.encode() for k, v in ev.encode(event).items()}
    assert ev.decode(raw).traceparent == TP


def test_event_type_helper() -> None:
    assert ev.event_type(SAMPLES[0]) == "call.started"
    assert ev.event_type(ev.Dtmf(call_sid="c", digit="1")) == "caller.dtmf"


def _envelope(**changes: object) -> dict[str, str]:
    body = json.loads(ev.encode(ev.Dtmf(**BASE, digit="1"))["e"])
    body.update(changes)
    return {"type": str(body["type"]), "e": json.dumps(body)}


def test_unknown_type_raises() -> None:
    with pytest.raises(ev.UnknownEvent):
        ev.decode(_envelope(type="caller.teleported"))


def test_unknown_type_bytes_raises() -> None:
    fields = {k.encode(): v.encode() for k, v in _envelope(type="nope").items()}
    with pytest.raises(ev.UnknownEvent):
        ev.decode(fields)


def test_newer_schema_version_raises() -> None:
    with pytest.raises(ev.UnknownEvent, match="schema version 2"):
        ev.decode(_envelope(v=ev.SCHEMA_VERSION + 1))


def test_current_and_older_versions_accepted() -> None:
    assert ev.decode(_envelope(v=ev.SCHEMA_VERSION)).v == ev.SCHEMA_VERSION
    assert ev.decode(_envelope(v=0)).v == 0


def test_missing_e_field_raises() -> None:
    with pytest.raises(ev.UnknownEvent, match="no 'e' field"):
        ev.decode({"type": "caller.dtmf"})
    with pytest.raises(ev.UnknownEvent):
        ev.decode({b"type": b"caller.dtmf"})


def test_extra_field_and_bad_json_raise() -> None:
    with pytest.raises(ev.UnknownEvent):
        ev.decode(_envelope(surprise=1))
    with pytest.raises(ev.UnknownEvent):
        ev.decode({"e": "{not json"})
    with pytest.raises(ev.UnknownEvent):
        ev.decode(_envelope(digit=None))


def test_unknown_event_is_value_error() -> None:
    assert issubclass(ev.UnknownEvent, ValueError)


def test_events_are_frozen() -> None:
    event = ev.Dtmf(call_sid="c", digit="1")
    with pytest.raises(ValueError):
        event.digit = "2"  # type: ignore[misc]
