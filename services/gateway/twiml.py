"""TwiML documents the gateway returns, built with the twilio library."""

from __future__ import annotations

from twilio.twiml.voice_response import Connect, VoiceResponse


def connect_stream(stream_url: str, action_url: str, token: str, disclosure: str = "") -> str:
    """`<Connect action><Stream url><Parameter token/></Stream></Connect>`, after a `<Say>` of
    the recording disclosure when there is one (spoken before the stream, so before recording)."""
    response = VoiceResponse()
    if disclosure:
        response.say(disclosure)
    connect = Connect(action=action_url, method="POST")
    stream = connect.stream(url=stream_url)
    stream.parameter(name="token", value=token)
    response.append(connect)
    return str(response)


def unknown_number() -> str:
    """A polite message for a number that belongs to no business, then hang up."""
    response = VoiceResponse()
    response.say("Sorry, this number is not in service. Goodbye.")
    response.hangup()
    return str(response)


def dial(number: str, caller_id: str) -> str:
    """Hand the caller to a person, showing the caller's own number."""
    response = VoiceResponse()
    response.dial(number, caller_id=caller_id or None)
    return str(response)


def apologize() -> str:
    """Something broke beyond repair: say so and hang up."""
    response = VoiceResponse()
    response.say("Sorry, we're having technical trouble. Please call back in a few minutes.")
    response.hangup()
    return str(response)


def hangup() -> str:
    """End the call."""
    response = VoiceResponse()
    response.hangup()
    return str(response)
