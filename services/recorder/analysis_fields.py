"""Check an analysis reply's structured fields against the tenant's JSON schema (pure).

Supports the subset tenants need for flat extraction: an object schema whose properties have
`type` (string, number, integer, boolean, array, object, null, or a list of those), optional
`enum`, and `required`. Properties the schema does not declare are dropped.
"""

from __future__ import annotations

from typing import Any

_CHECKS: dict[str, type | tuple[type, ...]] = {
    "string": str,
    "number": (int, float),
    "integer": int,
    "boolean": bool,
    "array": list,
    "object": dict,
}


def _matches(value: Any, kind: str) -> bool:
    if kind == "null":
        return value is None
    expected = _CHECKS.get(kind)
    if expected is None:
        return True  # a type we do not check
    if kind in ("number", "integer") and isinstance(value, bool):
        return False
    return isinstance(value, expected)


def check_fields(schema: dict[str, Any], fields: Any) -> tuple[dict[str, Any], list[str]]:
    """The declared properties of `fields`, and the problems found (empty when valid)."""
    if not isinstance(fields, dict):
        return {}, ["fields is not a JSON object"]
    properties: dict[str, Any] = schema.get("properties") or {}
    kept: dict[str, Any] = {}
    problems: list[str] = []
    for name in schema.get("required") or []:
        if name not in fields:
            problems.append(f"{name}: required")
    for name, spec in properties.items():
        if name not in fields:
            continue
        value = fields[name]
        kinds = spec.get("type") if isinstance(spec, dict) else None
        allowed = [kinds] if isinstance(kinds, str) else list(kinds or [])
        if allowed and not any(_matches(value, k) for k in allowed):
            problems.append(f"{name}: expected {'/'.join(allowed)}")
            continue
        enum = spec.get("enum") if isinstance(spec, dict) else None
        if enum is not None and value not in enum:
            problems.append(f"{name}: not one of {enum}")
            continue
        kept[name] = value
    return kept, problems
