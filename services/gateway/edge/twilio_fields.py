"""Shape checks of the form fields Twilio signs (pure): a field that fails is refused with a
400 before any value reaches Redis or Postgres (a NUL byte would make Postgres fail)."""

from __future__ import annotations

import re
from collections.abc import Mapping

CALL_SID = re.compile(r"CA[0-9a-fA-F]{32}")
ACCOUNT_SID = re.compile(r"AC[0-9a-fA-F]{32}")
DIGITS = re.compile(r"[0-9*#A-D]{0,64}")
PHONE = re.compile(r"\+?[0-9]{1,15}")
ADDRESS = re.compile(r"(client|sip):[^\x00-\x1f\x7f]{1,200}", re.IGNORECASE)
"""Twilio Client identities and SIP URIs, which Twilio sends in From/To instead of numbers."""
WITHHELD = frozenset({"anonymous", "restricted", "unknown", "private", "unavailable"})
MAX_FIELDS = 100
MAX_VALUE_CHARS = 1024

SIDS = {"CallSid": CALL_SID, "ParentCallSid": CALL_SID, "AccountSid": ACCOUNT_SID}
NUMBERS = ("From", "To", "Caller", "Called", "ForwardedFrom")


def phone_ok(value: str) -> bool:
    """E.164-ish (optional +, 1..15 digits), a withheld caller, a client: or sip: address."""
    return (
        PHONE.fullmatch(value) is not None
        or value.lower() in WITHHELD
        or ADDRESS.fullmatch(value) is not None
    )


def field_problem(form: Mapping[str, str]) -> str | None:
    """Why the signed form is malformed, or None when it is fine."""
    if len(form) > MAX_FIELDS:
        return f"more than {MAX_FIELDS} form fields"
    for name, value in form.items():
        if len(name) > 64 or len(value) > MAX_VALUE_CHARS:
            return f"form field {name[:64]!r} is too long"
        if "\x00" in name or "\x00" in value:
            return f"form field {name[:64]!r} contains a NUL character"
    for name, pattern in SIDS.items():
        if name in form and pattern.fullmatch(form[name]) is None:
            return f"{name} is malformed"
    for name in NUMBERS:
        if form.get(name) and not phone_ok(form[name]):
            return f"{name} is not a phone number"
    if "Digits" in form and DIGITS.fullmatch(form["Digits"]) is None:
        return "Digits may hold only 0-9, *, # and A-D"
    return None
