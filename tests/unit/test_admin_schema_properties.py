"""Property tests (hypothesis) of the admin API's request models: what the OpenAPI schema
says about null and NUL is what validation does."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from services.gateway.admin import activity_schemas, catalog_schemas, schemas
from services.gateway.calls_api import schemas as calls_schemas
from services.gateway.edge.twilio_fields import field_problem, phone_ok


def _subclasses(base: type[BaseModel]) -> list[type[BaseModel]]:
    found: list[type[BaseModel]] = []
    for module in (schemas, catalog_schemas, activity_schemas, calls_schemas):
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, base) and value is not base:
                found.append(value)
    return sorted(set(found), key=lambda c: c.__name__)


PATCHES = _subclasses(schemas.PatchModel)
INPUTS = _subclasses(schemas.InputModel)


def _allows_null(prop: dict[str, Any]) -> bool:
    return prop.get("type") == "null" or any(o.get("type") == "null" for o in prop.get("anyOf", []))


def test_there_are_patch_models_to_check() -> None:
    assert len(PATCHES) >= 5, PATCHES


@pytest.mark.parametrize("model", PATCHES, ids=lambda m: m.__name__)
def test_patch_null_is_accepted_exactly_where_the_schema_allows_it(
    model: type[schemas.PatchModel],
) -> None:
    properties = model.model_json_schema()["properties"]
    for name, prop in properties.items():
        try:
            model.model_validate({name: None})
            accepted = True
        except ValidationError as exc:
            # null itself refused, or a cross-field rule on the result (not about null)
            accepted = not any(
                "null" in str(e["msg"]) or e["type"] != "value_error" for e in exc.errors()
            )
        assert accepted == _allows_null(prop), (model.__name__, name, prop)


def _text_fields(model: type[BaseModel]) -> list[str]:
    properties = model.model_json_schema()["properties"]
    return [n for n, p in properties.items() if p.get("type") == "string" and "enum" not in p]


@pytest.mark.parametrize("model", INPUTS, ids=lambda m: m.__name__)
@settings(max_examples=25, deadline=None)
@given(before=st.text(max_size=20), after=st.text(max_size=20))
def test_nul_in_any_text_field_is_refused(model: type[BaseModel], before: str, after: str) -> None:
    for name in _text_fields(model):
        with pytest.raises(ValidationError):
            model.model_validate({name: f"{before}\x00{after}"})


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40))
def test_phone_check_accepts_only_e164ish_withheld_or_addresses(value: str) -> None:
    if phone_ok(value):
        assert "\x00" not in value
        digits = value.removeprefix("+")
        assert (
            (digits.isdigit() and digits.isascii() and len(digits) <= 15)
            or value.lower() in {"anonymous", "restricted", "unknown", "private", "unavailable"}
            or value.lower().startswith(("client:", "sip:"))
        )


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(["CallSid", "From", "To", "Digits", "X"]), st.text()))
def test_twilio_field_check_never_passes_a_nul_or_a_bad_callsid(form: dict[str, str]) -> None:
    if field_problem(form) is None:
        assert not any("\x00" in v for v in form.values())
        if "CallSid" in form:
            sid = form["CallSid"]
            assert len(sid) == 34 and sid.startswith("CA")
