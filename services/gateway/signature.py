"""X-Twilio-Signature validation for webhooks (the URL Twilio requested + form params).

The edge middleware (services/gateway/edge/limits.py) has already refused a request with no
signature header or an oversized body; here the (bounded) form is parsed, its signature
checked, then the shape of the fields Twilio signs (services/gateway/edge/twilio_fields.py).
"""

from __future__ import annotations

from fastapi import HTTPException, Request
from starlette.datastructures import UploadFile
from twilio.request_validator import RequestValidator

from services.gateway.edge.twilio_fields import MAX_FIELDS, field_problem


def public_url(request: Request, public_base: str) -> str:
    """The URL Twilio used: our public base + the request's path and query."""
    url = public_base.rstrip("/") + request.url.path
    if request.url.query:
        url += "?" + request.url.query
    return url


async def validated_form(request: Request, auth_token: str, public_base: str) -> dict[str, str]:
    """The webhook's form fields; 403 when the signature does not match, 400 when a signed
    field is malformed (NUL bytes, a bad CallSid, a phone number that is not one)."""
    signature = request.headers.get("X-Twilio-Signature", "")
    if not signature:
        raise HTTPException(status_code=403, detail="invalid Twilio signature")
    form = await request.form(max_files=0, max_fields=MAX_FIELDS + 1)
    if any(isinstance(v, UploadFile) for v in form.values()):
        raise HTTPException(status_code=400, detail="file uploads are not accepted")
    params = {k: str(v) for k, v in form.items()}
    if not RequestValidator(auth_token).validate(
        public_url(request, public_base), params, signature
    ):
        raise HTTPException(status_code=403, detail="invalid Twilio signature")
    problem = field_problem(params)
    if problem is not None:
        raise HTTPException(status_code=400, detail=problem)
    return params
