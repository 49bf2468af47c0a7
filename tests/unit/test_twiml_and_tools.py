"""TwiML documents from the gateway and the OpenAI tool schemas."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from services.gateway import twiml
from shared.tenancy.tool_specs import SPECS, openai_tools


def test_connect_stream() -> None:
    doc = twiml.connect_stream("wss://media.example/media", "https://gw.example/after", "t.ok&<")
    assert doc.startswith("<?xml")
    root = ET.fromstring(doc)
    assert root.tag == "Response"
    assert [c.tag for c in root] == ["Connect"]
    connect = root[0]
    assert connect.attrib == {"action": "https://gw.example/after", "method": "POST"}
    assert [c.tag for c in connect] == ["Stream"]
    stream = connect[0]
    assert stream.attrib == {"url": "wss://media.example/media"}
    params = list(stream)
    assert [p.tag for p in params] == ["Parameter"]
    assert params[0].attrib == {"name": "token", "value": "t.ok&<"}  # escaped, round-trips


def test_unknown_number() -> None:
    root = ET.fromstring(twiml.unknown_number())
    assert root.tag == "Response"
    assert [c.tag for c in root] == ["Say", "Hangup"]
    assert root[0].text == "Sorry, this number is not in service. Goodbye."
    assert root.find(".//Connect") is None
    assert root.find(".//Stream") is None


def test_hangup() -> None:
    root = ET.fromstring(twiml.hangup())
    assert [c.tag for c in root] == ["Hangup"]


def test_openai_tools_are_valid_function_schemas() -> None:
    tools = openai_tools()
    assert len(tools) == len(SPECS) >= 1
    names = []
    for tool in tools:
        assert set(tool) == {"type", "function"}
        assert tool["type"] == "function"
        fn = tool["function"]
        assert set(fn) == {"name", "description", "parameters"}
        assert isinstance(fn["name"], str)
        assert fn["name"].replace("_", "").isalnum() and len(fn["name"]) <= 64
        assert isinstance(fn["description"], str) and fn["description"]
        params = fn["parameters"]
        assert params["type"] == "object"
        assert isinstance(params["properties"], dict)
        assert "title" not in params
        for required in params.get("required", []):
            assert required in params["properties"]
        names.append(fn["name"])
    assert len(set(names)) == len(names)
    assert names == list(SPECS)


def test_get_business_info_takes_no_arguments() -> None:
    tool = next(t for t in openai_tools() if t["function"]["name"] == "get_business_info")
    params = tool["function"]["parameters"]
    assert params["properties"] == {}
    assert params.get("additionalProperties") is False
