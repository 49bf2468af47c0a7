"""The callee of a simulated outbound call: a restaurant host (or its answering machine).

Each scripted behaviour says whether the line is answered and by whom (the AMD verdict), and
what the callee says, turn by turn, once the agent has spoken (`CallScript`, the same scripts
the caller simulator runs; each line is registered with the STT simulator before it is
"spoken"). `HostRun` is the caller simulator's `CallRun` with the outbound answer webhook
(Direction=outbound-api, CallStatus=in-progress): Twilio requests the call's `Url` when the
callee picks up, then streams the callee's audio to the platform.

Behaviours: `accepts`, `offers_alternative` ("We're full at seven, but eight thirty works"),
`declines`, `voicemail` (a machine greeting, then silence while the agent's message is
recorded), `no_answer`, `busy`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from sim.twilio_call_model import CallScript
from sim.twilio_call_runner import CallRun
from sim.twilio_webhook import inbound_call_params

Behaviour = Literal["accepts", "offers_alternative", "declines", "voicemail", "no_answer", "busy"]
BEHAVIOURS: tuple[Behaviour, ...] = (
    "accepts",
    "offers_alternative",
    "declines",
    "voicemail",
    "no_answer",
    "busy",
)

MACHINE_GREETING = (
    "Hi, you've reached Luigi's. We can't come to the phone right now."
    " Please leave a message after the beep."
)


@dataclass(frozen=True)
class Callee:
    """How one called number behaves."""

    behaviour: Behaviour
    answered_by: str | None  # the AMD verdict when answered; None: the line is not answered
    lines: tuple[str, ...] = ()
    hangs_up_after_last: bool = False  # else waits for the agent to end the call

    @property
    def answers(self) -> bool:
        return self.answered_by is not None

    @property
    def is_machine(self) -> bool:
        return (self.answered_by or "").startswith("machine")

    def script(self) -> CallScript:
        return CallScript(lines=list(self.lines), hangup_after_last=self.hangs_up_after_last)


CALLEES: dict[Behaviour, Callee] = {
    "accepts": Callee(
        "accepts",
        "human",
        ("Yes, seven o'clock is fine for four people, you're all set.", "You're welcome, bye!"),
    ),
    "offers_alternative": Callee(
        "offers_alternative",
        "human",
        (
            "Sorry, we're full at seven, but eight thirty works.",
            "Great, you're booked for eight thirty.",
            "You're welcome, bye!",
        ),
    ),
    "declines": Callee(
        "declines", "human", ("Sorry, we're fully booked all evening.", "No problem, bye now!")
    ),
    # The machine plays its greeting after the agent's opening line, then records in silence;
    # it hangs up once the agent's message has played.
    "voicemail": Callee("voicemail", "machine_end_beep", (MACHINE_GREETING,), True),
    "no_answer": Callee("no_answer", None),
    "busy": Callee("busy", None),
}
"""Every behaviour's callee."""

DIRECTORY: dict[str, Behaviour] = {
    "+441632960101": "accepts",
    "+441632960102": "offers_alternative",
    "+441632960103": "voicemail",
    "+441632960104": "no_answer",
    "+441632960105": "busy",
    "+441632960106": "declines",
}
"""Restaurant numbers of the demo and the tests (Ofcom drama range) and how each behaves;
any other number accepts."""


def callee_for(number: str, directory: dict[str, Behaviour] | None = None) -> Callee:
    """The callee behind a dialled number."""
    return CALLEES[(directory if directory is not None else DIRECTORY).get(number, "accepts")]


class HostRun(CallRun):
    """The callee side of an answered outbound call: Twilio's answer webhook to the call's
    `Url` (outbound-api, in-progress), then the Media Stream with the callee's script."""

    def params(self, status: str) -> dict[str, str]:
        o = self.opts
        return inbound_call_params(
            call_sid=self.result.call_sid,
            account_sid=o.account_sid,
            from_number=o.from_number,
            to_number=o.to_number,
            call_status="in-progress",
            direction="outbound-api",
        )
