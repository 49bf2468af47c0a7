"""The console's pure parts: the session cookie, the live view folded from call-log events,
the SVG charts and the waterfall geometry."""

from __future__ import annotations

import re

from services.gateway.console import charts
from services.gateway.console import session as cookies
from services.gateway.console.live_view import fold
from shared.contract.events import (
    AgentText,
    CallEnded,
    CallStarted,
    LatencyMark,
    ToolRequested,
    TranscriptFinal,
    TurnRequested,
)

SECRET = b"k" * 32


def test_cookie_round_trip_tamper_and_expiry() -> None:
    data = cookies.new_session("key1", "tenant1", False, 60)
    value = cookies.sign(data, SECRET)
    assert cookies.verify(value, SECRET) == data
    assert cookies.verify(value, b"other" * 8) is None
    _body, mac = value.split(".")
    forged = cookies.sign(cookies.new_session("key1", "tenant2", True, 60), b"x" * 32)
    assert cookies.verify(forged.split(".")[0] + "." + mac, SECRET) is None
    assert cookies.verify(value, SECRET, now=data.expires + 1) is None
    for junk in [None, "", "a.b.c", "x" * 5000, "....", "e30.AAAA"]:
        assert cookies.verify(junk, SECRET) is None
    assert cookies.new_session("k", "t", False, 60).csrf != data.csrf


def test_secret_is_derived_when_not_set() -> None:
    derived = cookies.secret_from("", "stream-secret-a")
    assert derived == cookies.secret_from("", "stream-secret-a")
    assert derived != cookies.secret_from("", "stream-secret-b")
    assert cookies.secret_from("explicit", "stream-secret-a") == b"explicit"


def test_live_view_folds_transcript_stage_and_end() -> None:
    sid, t0 = "CA" + "0" * 32, 1000.0
    state = fold(
        [
            CallStarted(call_sid=sid, from_number="+1", to_number="+2", at=t0),
            AgentText(call_sid=sid, turn_id=0, seq=0, text="Hello,", at=t0 + 0.5),
            AgentText(call_sid=sid, turn_id=0, seq=1, text="how can I help?", at=t0 + 0.6),
            TranscriptFinal(
                call_sid=sid, text="A haircut", audio_start_ms=1, audio_end_ms=2, at=t0 + 3
            ),
            TurnRequested(call_sid=sid, turn_id=1, text="A haircut", at=t0 + 3.1),
            LatencyMark(
                call_sid=sid, turn_id=1, stage="llm_request", stage_at=t0 + 3.2, at=t0 + 3.2
            ),
        ]
    )
    assert [(x.role, x.text) for x in state.lines] == [
        ("agent", "Hello, how can I help?"),
        ("caller", "A haircut"),
    ]
    assert round(state.lines[1].at_s, 3) == 3.1 and state.lines[1].turn_id == 1
    assert (state.turn_id, state.stage, state.ended) == (1, "asking the LLM", False)
    fold(
        [ToolRequested(call_sid=sid, turn_id=1, tool_call_id="t", name="book", arguments="{}")],
        state,
    )
    assert state.stage == "tool book"
    fold([CallEnded(call_sid=sid, reason="caller-hangup", duration_s=5)], state)
    assert state.ended and state.stage == "ended"


def test_waterfall_bars_follow_the_stages() -> None:
    stages = {
        "stt_final": 100.0,
        "llm_request": 110.0,
        "llm_first_token": 400.0,
        "first_speakable": 450.0,
        "tts_first_byte": 600.0,
        "first_audio_sent": 620.0,
    }
    bars = charts.waterfall(stages, 1000.0)
    assert [b.css for b in bars] == ["stt", "wait", "llm", "speak", "tts", "send"]
    assert bars[0].left_pct == 0 and bars[0].width_pct == 10.0
    assert bars[2].left_pct == 11.0 and bars[2].ms == 290.0
    partial = charts.waterfall({"first_audio_sent": 50.0}, 1000.0)
    assert partial == []  # nothing to draw without the stages between


def test_chart_draws_one_bar_per_value_and_escapes() -> None:
    svg = charts.chart(
        "Calls <per> day",
        ["1 Jan", "2 Jan", "3 Jan"],
        [charts.Series("calls", [1.0, 0.0, 7.0]), charts.Series("booked", [None, 0.0, 3.0])],
        bars=True,
    )
    assert svg.count("<rect") == 5 and "Calls &lt;per&gt; day" in svg and "<per>" not in svg
    line = charts.chart("p50", ["a", "b"], [charts.Series("ms", [120.0, None])], bars=False)
    assert len(re.findall(r"<circle", line)) == 1


def test_live_view_shows_a_filler_as_its_own_marked_line() -> None:
    from shared.contract.events import AgentFiller

    sid = "CAfill"
    state = fold(
        [
            TurnRequested(call_sid=sid, turn_id=1, text="How much?"),
            AgentFiller(call_sid=sid, turn_id=1, seq=-1, text="One moment."),
            AgentText(call_sid=sid, turn_id=1, seq=0, text="It is £25."),
        ]
    )
    assert [(x.role, x.kind, x.text) for x in state.lines] == [
        ("caller", "speech", "How much?"),
        ("agent", "filler", "One moment."),
        ("agent", "speech", "It is £25."),
    ]
