"""The gateway's Twilio webhooks against the running platform."""

from __future__ import annotations

import httpx
import pytest

from sim.twilio_webhook import inbound_call_params, new_sid, post_voice_webhook, sign_request
from tests.conftest import Platform

pytestmark = pytest.mark.e2e


async def test_bad_signature_is_rejected_with_403(platform: Platform) -> None:
    url = platform.gateway + "/twilio/voice"
    params = inbound_call_params(
        call_sid=new_sid("CA"),
        account_sid=new_sid("AC"),
        from_number="+447700900123",
        to_number=platform.tenant_number,
    )
    forged = sign_request("not-the-auth-token", url, params)
    result = await post_voice_webhook(url, platform.auth_token, params, signature=forged)
    assert result.status_code == 403
    assert result.parsed is None or result.parsed.stream is None


async def test_missing_signature_is_rejected_with_403(platform: Platform) -> None:
    params = inbound_call_params(
        call_sid=new_sid("CA"),
        account_sid=new_sid("AC"),
        from_number="+447700900123",
        to_number=platform.tenant_number,
    )
    async with httpx.AsyncClient() as client:
        response = await client.post(platform.gateway + "/twilio/voice", data=params)
    assert response.status_code == 403
    assert "signature" in response.json()["detail"]


async def test_unknown_number_gets_polite_twiml_not_500(platform: Platform) -> None:
    url = platform.gateway + "/twilio/voice"
    params = inbound_call_params(
        call_sid=new_sid("CA"),
        account_sid=new_sid("AC"),
        from_number="+447700900123",
        to_number="+15005550006",
    )
    result = await post_voice_webhook(url, platform.auth_token, params)
    assert result.status_code == 200
    assert result.parsed is not None
    assert result.parsed.stream is None
    assert result.parsed.says and "not in service" in result.parsed.says[0]
    assert result.parsed.hangup


async def test_known_number_connects_a_stream_with_a_token(platform: Platform) -> None:
    url = platform.gateway + "/twilio/voice"
    params = inbound_call_params(
        call_sid=new_sid("CA"),
        account_sid=new_sid("AC"),
        from_number="+447700900123",
        to_number=platform.tenant_number,
    )
    result = await post_voice_webhook(url, platform.auth_token, params)
    assert result.status_code == 200 and result.parsed is not None
    assert result.stream_url == platform.media_ws
    assert result.action_url == platform.gateway + "/twilio/after-stream"
    assert result.custom_parameters.get("token", "").count(".") == 3  # expires.issued.id.sig


async def test_after_stream_hangs_up(platform: Platform) -> None:
    url = platform.gateway + "/twilio/after-stream"
    params = inbound_call_params(
        call_sid=new_sid("CA"),
        account_sid=new_sid("AC"),
        from_number="+447700900123",
        to_number=platform.tenant_number,
        call_status="in-progress",
    )
    result = await post_voice_webhook(url, platform.auth_token, params)
    assert result.status_code == 200 and result.parsed is not None
    assert result.parsed.hangup
