"""HTTP `Range: bytes=...` for one representation (RFC 9110 §14). Pure.

One range is served (what browsers send to seek an `<audio>`); a list of ranges is answered
with the whole body, which the RFC allows. A header that is not a byte range is refused with
400 and a message; a range that starts past the end is 416.
"""

from __future__ import annotations

import re

_SPEC = re.compile(r"^\s*(\d{0,18})\s*-\s*(\d{0,18})\s*$")
MAX_HEADER = 200


class RangeError(ValueError):
    """The Range header cannot be served; `status` is 400 (malformed) or 416 (unsatisfiable)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """[start, end) of the bytes to send, or None for the whole body."""
    if header is None:
        return None
    if len(header) > MAX_HEADER:
        raise RangeError(400, f"Range header longer than {MAX_HEADER} characters")
    unit, sep, specs = header.partition("=")
    if not sep or unit.strip().lower() != "bytes":
        raise RangeError(400, "Range must be 'bytes=START-END', 'bytes=START-' or 'bytes=-N'")
    parts = specs.split(",")
    parsed = []
    for part in parts:
        match = _SPEC.match(part)
        if match is None or match.group(1) == match.group(2) == "":
            raise RangeError(400, f"malformed byte range {part.strip()!r}")
        parsed.append(match.groups())
    if len(parsed) > 1:
        return None
    first, last = parsed[0]
    if first == "":  # the last N bytes
        count = int(last)
        if count == 0 or size == 0:
            raise RangeError(416, "empty suffix range")
        return max(0, size - count), size
    start = int(first)
    if last != "" and int(last) < start:
        raise RangeError(400, f"byte range {first}-{last} ends before it starts")
    if start >= size:
        raise RangeError(416, f"range starts at {start}, the recording has {size} bytes")
    end = size if last == "" else min(size, int(last) + 1)
    return start, end
