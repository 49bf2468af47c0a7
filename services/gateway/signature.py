"""X-Twilio-Signature validation for webhooks (the URL Twilio requested + form params)."""

from __future__ import annotations

from fastapi import HTTPException, Request
from twilio.request_validator import RequestValidator


def public_url(request: Request, public_base: str) -> str:
    """The URL Twilio used: our public base + the request's path and query."""
    url = public_base.rstrip("/") + request.url.path
    if request.url.query:
        url += "?" + request.url.query
    return url


async def validated_form(request: Request, auth_token: str, public_base: str) -> dict[str, str]:
    """The webhook's form fields, or 403 when the signature does not match."""
    form = await request.form()
    params = {k: str(v) for k, v in form.items()}
    signature = request.headers.get("X-Twilio-Signature", "")
    if not signature or not RequestValidator(auth_token).validate(
        public_url(request, public_base), params, signature
    ):
        raise HTTPException(status_code=403, detail="invalid Twilio signature")
    return params
