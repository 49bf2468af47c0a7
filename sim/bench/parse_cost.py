"""Parse cost of one Twilio media frame (media's per-frame hot path), optionally A/B against
another version of the parser: ``python -m sim.bench.parse_cost [OLD_PROTOCOL_PY]``
(e.g. ``git show fbf1b3e:services/media/twilio/protocol.py > /tmp/old_protocol.py``).
Rounds alternate between the parsers, so machine load hits both alike."""

from __future__ import annotations

import base64
import importlib.util
import json
import statistics
import sys
import timeit
from types import ModuleType

from services.media.twilio import protocol

FRAMES = 100_000
ROUNDS = 15


def load(path: str) -> ModuleType:
    """A parser module from a file (registered, so its dataclasses resolve)."""
    spec = importlib.util.spec_from_file_location("other_protocol", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["other_protocol"] = module
    spec.loader.exec_module(module)
    return module


def main() -> None:
    payload = base64.b64encode(bytes(range(160))).decode()
    media = {"track": "inbound", "chunk": "1", "timestamp": "52", "payload": payload}
    frame = json.dumps(
        {"event": "media", "sequenceNumber": "2", "media": media, "streamSid": "MZ" + "2" * 32}
    )
    parsers = {"this tree": protocol}
    if len(sys.argv) > 1:
        parsers = {"other": load(sys.argv[1]), **parsers}
    times: dict[str, list[float]] = {name: [] for name in parsers}
    for _ in range(ROUNDS):
        for name, module in parsers.items():
            parse = module.parse
            seconds = timeit.timeit(lambda: parse(frame), number=FRAMES)  # noqa: B023
            times[name].append(seconds / FRAMES * 1e6)
    for name, us in times.items():
        print(
            f"{name}: median {statistics.median(us):.3f} us/frame, best {min(us):.3f} "
            f"({FRAMES} frames x {ROUNDS} rounds)"
        )


if __name__ == "__main__":
    main()
