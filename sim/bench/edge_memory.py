"""How much a hostile body costs the gateway: start a real gateway process on a free port,
read its RSS, send oversized POSTs (unsigned with Content-Length, signed-looking chunked, and
to the admin API), and read its RSS and peak RSS (VmHWM) again.

    REDIS_URL=... DATABASE_URL=... uv run python -m sim.bench.edge_memory [--mb 50]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from frontdesk.supervisor import free_port
from shared.runtime.settings import get_settings

ROOT = Path(__file__).resolve().parents[2]
CHUNK = 256 * 1024


def _kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise LookupError(field)


def _body(total: int) -> Iterator[bytes]:
    sent = 0
    while sent < total:
        piece = b"a=" + b"b" * (min(CHUNK, total - sent) - 2)
        sent += len(piece)
        yield piece


def _attack(client: httpx.Client, name: str, url: str, size: int, headers: dict[str, str]) -> str:
    began = time.perf_counter()
    try:
        status = str(client.post(url, content=_body(size), headers=headers).status_code)
    except httpx.HTTPError as exc:  # the server may close while we are still sending
        status = type(exc).__name__
    return f"{name}: {status} in {(time.perf_counter() - began) * 1000:.0f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mb", type=int, default=50, help="Body size of each attack, MiB.")
    args = parser.parse_args()
    settings = get_settings()
    port = free_port()
    env = dict(os.environ) | {
        "GATEWAY_PORT": str(port),
        "ALLOW_INSECURE_DEFAULTS": "true",
        "LOG_JSON": "false",
    }
    proc = subprocess.Popen([sys.executable, "-m", "services.gateway"], env=env, cwd=ROOT)
    base = f"http://127.0.0.1:{port}"
    size = args.mb * 1024 * 1024
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                raise SystemExit("gateway did not start")
            time.sleep(0.1)
        before = _kib(proc.pid, "VmRSS")
        with httpx.Client(timeout=60) as client:
            results = [
                _attack(
                    client,
                    "unsigned, Content-Length",
                    base + "/twilio/voice",
                    size,
                    form | {"Content-Length": str(size)},
                ),
                _attack(
                    client,
                    "signed-looking, chunked",
                    base + "/twilio/voice",
                    size,
                    form | {"X-Twilio-Signature": "x"},
                ),
                _attack(client, "admin API, chunked", base + "/v1/webhooks", size, form),
            ]
        after, peak = _kib(proc.pid, "VmRSS"), _kib(proc.pid, "VmHWM")
        print(f"redis={settings.redis_url} body={args.mb} MiB each")
        for line in results:
            print(line)
        print(f"RSS before {before / 1024:.1f} MiB, after {after / 1024:.1f} MiB, ", end="")
        print(f"peak {peak / 1024:.1f} MiB; growth {(peak - before) / 1024:.1f} MiB")
    finally:
        proc.terminate()
        proc.wait(timeout=20)


if __name__ == "__main__":
    main()
