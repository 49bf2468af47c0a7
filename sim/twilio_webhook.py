"""Twilio-side HTTP pieces of the simulated caller: inbound-call params, request signing,
the signed voice-webhook POST and TwiML parsing. See shared/protocols/twilio-media-streams.md
sections 1, 2 and 7."""

from __future__ import annotations

import secrets
import ssl
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from functools import cache
from urllib.parse import urljoin

import httpx
from twilio.request_validator import RequestValidator

_PLACE_FIELDS = ("City", "State", "Zip", "Country")


@cache
def _tls_context() -> ssl.SSLContext:
    """httpx's default verifying TLS context (certifi CAs), built once per process: building
    one costs ~19 ms of CPU, which every simulated call used to spend on its own client."""
    return httpx.create_ssl_context(trust_env=False)


def http_client(timeout_s: float) -> httpx.AsyncClient:
    """An HTTP client as the caller simulator uses one: environment proxies ignored, the
    process's shared TLS context."""
    return httpx.AsyncClient(timeout=timeout_s, trust_env=False, verify=_tls_context())


def new_sid(prefix: str) -> str:
    """A Twilio-style SID: two-letter prefix + 32 lowercase hex digits."""
    return prefix + secrets.token_hex(16)


def inbound_call_params(
    *,
    call_sid: str,
    account_sid: str,
    from_number: str,
    to_number: str,
    call_status: str = "ringing",
    direction: str = "inbound",
    places: dict[str, str] | None = None,
    extra: dict[str, str] | None = None,
) -> dict[str, str]:
    """The form fields Twilio sends for an inbound call (section 1). ``places`` may set e.g.
    ``FromCity``; every From*/To*/Caller*/Called* place field defaults to ''."""
    params = {
        "CallSid": call_sid,
        "AccountSid": account_sid,
        "From": from_number,
        "To": to_number,
        "CallStatus": call_status,
        "ApiVersion": "2010-04-01",
        "Direction": direction,
        "Caller": from_number,
        "Called": to_number,
    }
    for who in ("From", "To", "Caller", "Called"):
        for what in _PLACE_FIELDS:
            params[who + what] = ""
    places = places or {}
    for key, value in places.items():
        params[key] = value
        # Caller* mirrors From*, Called* mirrors To*.
        if key.startswith("From"):
            params["Caller" + key[4:]] = value
        elif key.startswith("To"):
            params["Called" + key[2:]] = value
    params.update(extra or {})
    return params


def sign_request(auth_token: str, url: str, params: dict[str, str] | None = None) -> str:
    """``X-Twilio-Signature`` for ``url`` (exactly as requested) + form ``params``."""
    return str(RequestValidator(auth_token).compute_signature(url, params or {}))


class TwimlError(ValueError):
    """The response body is not a TwiML document we can parse."""


@dataclass
class TwimlStream:
    url: str
    name: str | None = None
    parameters: dict[str, str] = field(default_factory=dict)
    attributes: dict[str, str] = field(default_factory=dict)


@dataclass
class ParsedTwiml:
    """The parts of a TwiML <Response> the simulator acts on."""

    verbs: list[str] = field(default_factory=list)  # top-level verb tags, in order
    connect_action: str | None = None  # <Connect action=...> (absolute, resolved)
    connect_method: str = "POST"
    stream: TwimlStream | None = None  # <Connect><Stream>
    says: list[str] = field(default_factory=list)
    hangup: bool = False
    redirect: str | None = None
    verbs_after_connect: list[str] = field(default_factory=list)


def parse_twiml(text: str, base_url: str | None = None) -> ParsedTwiml:
    """Parse a TwiML document; relative ``action``/``Redirect`` URLs resolve against
    ``base_url``. Raises :class:`TwimlError` if it is not XML with a <Response> root."""
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise TwimlError(f"invalid XML: {exc}") from exc
    if root.tag != "Response":
        raise TwimlError(f"root element is <{root.tag}>, expected <Response>")

    def resolve(url: str) -> str:
        return urljoin(base_url, url) if base_url else url

    out = ParsedTwiml()
    seen_connect = False
    for verb in root:
        out.verbs.append(verb.tag)
        if seen_connect:
            out.verbs_after_connect.append(verb.tag)
        if verb.tag == "Say":
            out.says.append((verb.text or "").strip())
        elif verb.tag == "Hangup":
            out.hangup = True
        elif verb.tag == "Redirect":
            out.redirect = resolve((verb.text or "").strip())
        elif verb.tag == "Connect" and not seen_connect:
            seen_connect = True
            action = verb.get("action")
            out.connect_action = resolve(action) if action else None
            out.connect_method = (verb.get("method") or "POST").upper()
            stream = verb.find("Stream")
            if stream is not None:
                params = {
                    p.get("name", ""): p.get("value", "") for p in stream.findall("Parameter")
                }
                out.stream = TwimlStream(
                    url=stream.get("url", ""),
                    name=stream.get("name"),
                    parameters=params,
                    attributes=dict(stream.attrib),
                )
    return out


@dataclass
class WebhookResult:
    """Outcome of one signed webhook request. ``error`` is set on transport failure,
    non-200 status or unparsable TwiML; the call should not proceed then."""

    url: str
    params: dict[str, str]
    signature: str
    status_code: int | None = None
    twiml: str = ""
    parsed: ParsedTwiml | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def stream_url(self) -> str | None:
        stream = self.parsed.stream if self.parsed else None
        return stream.url if stream else None

    @property
    def custom_parameters(self) -> dict[str, str]:
        stream = self.parsed.stream if self.parsed else None
        return dict(stream.parameters) if stream else {}

    @property
    def action_url(self) -> str | None:
        return self.parsed.connect_action if self.parsed else None


async def post_voice_webhook(
    url: str,
    auth_token: str,
    params: dict[str, str],
    *,
    signature: str | None = None,
    method: str = "POST",
    timeout_s: float = 15.0,
    client: httpx.AsyncClient | None = None,
) -> WebhookResult:
    """Send a signed Twilio webhook (form POST by default) and parse the TwiML reply.
    ``signature`` overrides the computed one (for negative tests). Never raises for
    HTTP/transport problems: they land in ``WebhookResult.error``."""
    if method.upper() == "GET":
        req_url = str(httpx.URL(url, params=params))
        sig = signature if signature is not None else sign_request(auth_token, req_url)
    else:
        req_url = url
        sig = signature if signature is not None else sign_request(auth_token, url, params)
    result = WebhookResult(url=url, params=dict(params), signature=sig)
    headers = {"X-Twilio-Signature": sig, "User-Agent": "TwilioProxy/1.1"}
    own = client is None
    http = client or http_client(timeout_s)
    try:
        if method.upper() == "GET":
            resp = await http.get(req_url, headers=headers)
        else:
            resp = await http.post(url, data=params, headers=headers)
    except httpx.HTTPError as exc:
        result.error = f"webhook request failed: {type(exc).__name__}: {exc}"
        return result
    finally:
        if own:
            await http.aclose()
    result.status_code = resp.status_code
    result.twiml = resp.text
    if resp.status_code != 200:
        result.error = f"webhook returned HTTP {resp.status_code}"
        return result
    try:
        result.parsed = parse_twiml(resp.text, base_url=url)
    except TwimlError as exc:
        result.error = f"webhook returned bad TwiML: {exc}"
    return result
