"""Start and stop the platform's processes (used by `frontdesk up`, the demo and the tests)."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import IO, TYPE_CHECKING

import httpx

if TYPE_CHECKING:
    from sim.tls import TlsFiles

SERVICES = ("gateway", "media", "brain", "tools", "recorder")
LOCAL_OUTBOUND_ALLOW = "127.0.0.0/8,::1/128"
"""Where a local stack's webhook receivers and calendar servers listen (loopback only)."""


def _die_with_parent() -> None:
    """In the child: get SIGTERM when the launcher dies, however it dies (Linux prctl)."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Ports:
    """Where each HTTP/WebSocket server of a local stack listens."""

    gateway: int = 8010
    media: int = 8020
    stt: int = 8031
    tts: int = 8032
    llm: int = 8033
    el_agent: int = 8034  # ElevenLabs ConvAI simulator (https/wss)
    el_agent_control: int = 8035  # the same simulator over plain http (script/policy control)
    dg_agent: int = 8036  # Deepgram Voice Agent simulator (ws; script/policy control too)
    twilio: int = 8037  # Twilio REST simulator (outbound calls; it dials the restaurant host)
    speech: int = 8030  # self-hosted speech service (`--speech local`; issue 15)
    brain_metrics: int = 9101  # workers' /metrics, /healthz, /readyz (METRICS_PORT)
    tools_metrics: int = 9102
    recorder_metrics: int = 9103
    balancer_stats: int = 9100  # HAProxy's stats page when replicas sit behind it (CSV: /stats;csv)

    def metrics_port(self, service: str) -> int:
        """Where a service serves /metrics (the HTTP services on their own port)."""
        port: int = getattr(self, f"{service}_metrics", None) or getattr(self, service)
        return port

    @classmethod
    def random(cls) -> Ports:
        """Free ports for a throwaway stack (tests)."""
        return cls(*(free_port() for _ in fields(cls)))


def sim_tls_dir(ports: Ports) -> Path:
    """Where the simulators' throwaway CA and server certificate live (sim/tls.py)."""
    return Path(tempfile.gettempdir()) / f"frontdesk-sim-tls-{ports.gateway}-{ports.media}"


def service_env(ports: Ports, *, with_sims: bool) -> dict[str, str]:
    """Environment telling every service where the others (and the simulators) are."""
    env = {
        "GATEWAY_PORT": str(ports.gateway),
        "MEDIA_PORT": str(ports.media),
        "PUBLIC_GATEWAY_URL": f"http://127.0.0.1:{ports.gateway}",
        "PUBLIC_MEDIA_WS_URL": f"ws://127.0.0.1:{ports.media}/twilio/stream",
        # A local stack: simulator secrets are fine, and webhooks/calendars live on loopback.
        "ALLOW_INSECURE_DEFAULTS": "true",
        "OUTBOUND_ALLOW": LOCAL_OUTBOUND_ALLOW,
    }
    if with_sims:
        env |= {
            "DEEPGRAM_STT_URL": f"ws://127.0.0.1:{ports.stt}",
            "DEEPGRAM_TTS_URL": f"ws://127.0.0.1:{ports.tts}",
            "OPENAI_BASE_URL": f"http://127.0.0.1:{ports.llm}/v1",
            "DEEPGRAM_API_KEY": "dg-sim",
            "OPENAI_API_KEY": "sk-sim",
            "TWILIO_API_BASE_URL": f"http://127.0.0.1:{ports.twilio}",
            "DEEPGRAM_AGENT_URL": f"ws://127.0.0.1:{ports.dg_agent}",
            "ELEVENLABS_CONVAI_URL": f"wss://127.0.0.1:{ports.el_agent}",
            "ELEVENLABS_AGENT_ID": "agent_frontdesk_private",
            "ELEVENLABS_AGENT_PRIVATE": "true",
            "PROVIDER_CA_FILE": str(_sim_tls(ports).ca_pem),
        }
    return env


def _sim_tls(ports: Ports) -> TlsFiles:
    from sim.tls import make_tls_files  # trustme is a dev dependency

    return make_tls_files(sim_tls_dir(ports))


RESTART_BACKOFF_S = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
"""Waits before restarting a crashed process, growing with consecutive crashes."""
HEALTHY_AFTER_S = 60.0
"""A process up this long is healthy again: its next crash restarts it after the first wait."""


@dataclass
class _Crashes:
    count: int = 0
    started_at: float = 0.0
    restart_at: float | None = None


@dataclass
class Stack:
    """Running processes of one local platform.

    With `restart` (what `frontdesk up` uses, like compose's `restart: unless-stopped` or a k8s
    Deployment), `restart_crashed` starts a process that exited again, with growing backoff.
    Tests leave it off: their deliberate kills (`kill`) and `check_alive` must see a death.
    """

    ports: Ports
    log_dir: Path
    restart: bool = False
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    _logs: list[IO[bytes]] = field(default_factory=list)
    _specs: dict[str, tuple[list[str], dict[str, str]]] = field(default_factory=dict)
    _crashes: dict[str, _Crashes] = field(default_factory=dict)

    def spawn(self, name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        """Start one process, its output going to log_dir/NAME.log."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        out = open(self.log_dir / f"{name}.log", "ab")
        self._logs.append(out)
        proc = subprocess.Popen(
            argv, env=env, stdout=out, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent
        )
        self.procs[name] = proc
        self._specs[name] = (argv, env)
        self._crashes.setdefault(name, _Crashes()).started_at = time.monotonic()
        return proc

    def restart_crashed(self, now: float | None = None) -> list[str]:
        """Restart processes that exited once their backoff has passed; the names restarted.
        Does nothing without `restart`."""
        if not self.restart:
            return []
        now = time.monotonic() if now is None else now
        restarted = []
        for name, proc in list(self.procs.items()):
            if proc.poll() is None:
                continue
            crashes = self._crashes.setdefault(name, _Crashes())
            if crashes.restart_at is None:
                if now - crashes.started_at >= HEALTHY_AFTER_S:
                    crashes.count = 0
                wait = RESTART_BACKOFF_S[min(crashes.count, len(RESTART_BACKOFF_S) - 1)]
                crashes.count += 1
                crashes.restart_at = now + wait
                print(
                    f"{name} exited with {proc.returncode}; restarting in {wait:g} s"
                    f" (crash {crashes.count})",
                    file=sys.stderr,
                    flush=True,
                )
            if now >= crashes.restart_at:
                crashes.restart_at = None
                argv, env = self._specs[name]
                self.spawn(name, argv, env)
                restarted.append(name)
        return restarted

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Send a signal to one process (SIGKILL for crash tests) and reap it."""
        proc = self.procs.pop(name)
        proc.send_signal(sig)
        proc.wait(timeout=30)

    def stop(self) -> None:
        """SIGTERM everything, then SIGKILL what does not exit in time."""
        for proc in self.procs.values():
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
        deadline = time.monotonic() + 10
        for proc in self.procs.values():
            try:
                proc.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.procs.clear()
        for f in self._logs:
            f.close()
        self._logs.clear()

    def check_alive(self) -> None:
        """Raise if a process died (with the tail of its log)."""
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                tail = (self.log_dir / f"{name}.log").read_text(errors="replace")[-3000:]
                raise RuntimeError(f"{name} exited with {proc.returncode}:\n{tail}")


def wait_http(url: str, stack: Stack, timeout_s: float = 180.0) -> None:
    """Block until `url` answers 200, failing early if a process of the stack dies."""
    deadline = time.monotonic() + timeout_s
    while True:
        stack.check_alive()
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{url} did not come up in {timeout_s}s")
        time.sleep(0.1)


def start_sims(
    stack: Stack, env: dict[str, str], policy: str | None = None, extra: list[str] | None = None
) -> None:
    """Start the provider simulators (STT, TTS, LLM) in one process and wait for them;
    `extra` are more `python -m sim` options (e.g. latencies)."""
    p = stack.ports
    argv = [
        sys.executable,
        "-m",
        "sim",
        "--stt-port",
        str(p.stt),
        "--tts-port",
        str(p.tts),
        "--llm-port",
        str(p.llm),
        "--el-agent-port",
        str(p.el_agent),
        "--el-agent-control-port",
        str(p.el_agent_control),
        "--dg-agent-port",
        str(p.dg_agent),
        "--twilio-port",
        str(p.twilio),
        "--tls-dir",
        str(sim_tls_dir(p)),
    ]
    if policy:
        argv += ["--policy", policy]
    stack.spawn("sims", argv + (extra or []), env)
    for port in (p.stt, p.tts, p.llm, p.el_agent_control, p.dg_agent, p.twilio):
        wait_http(f"http://127.0.0.1:{port}/healthz", stack, timeout_s=300)  # a busy box


def replica_label(service: str, index: int) -> str:
    """A replica's process label: `media`, `media-1`, `media-2`, ..."""
    return service if index == 0 else f"{service}-{index}"


def speech_env(ports: Ports) -> dict[str, str]:
    """Environment pointing media's Deepgram STT and TTS at the local speech service for every
    tenant (both metered `local`). `SPEECH_URL` also serves tenants with `speech: local` in a
    deployment that otherwise uses the vendors."""
    return {
        "SPEECH_PORT": str(ports.speech),
        "DEEPGRAM_STT_URL": f"ws://127.0.0.1:{ports.speech}",
        "DEEPGRAM_TTS_URL": f"ws://127.0.0.1:{ports.speech}",  # Piper (/v1/speak)
        "DEEPGRAM_TTS_REST_URL": f"http://127.0.0.1:{ports.speech}",
        "STT_PROVIDER": "local",
        "TTS_PROVIDER": "local",
        "SPEECH_URL": f"ws://127.0.0.1:{ports.speech}",
    }


def start_speech(stack: Stack, env: dict[str, str], timeout_s: float = 120.0) -> None:
    """Start the speech service (its models load before /healthz answers) and wait for it."""
    stack.spawn("speech", [sys.executable, "-m", "services.speech"], env)
    wait_http(f"http://127.0.0.1:{stack.ports.speech}/healthz", stack, timeout_s)


def start_services(
    stack: Stack,
    env: dict[str, str],
    replicas: Mapping[str, int] | None = None,
    http_ports: Mapping[str, int] | None = None,
    replica_env: Mapping[str, Mapping[str, str]] | None = None,
    timeout_s: float = 300.0,
) -> None:
    """Start the five services (each may have several replicas, or 0: none) and wait for them
    (each within `timeout_s`).

    Workers get a metrics port per replica. Gateway and media replicas listen on
    `http_ports[label]` when given (behind a balancer, frontdesk/balancer.py), otherwise on
    the stack's gateway/media port (one replica each). `replica_env[label]` is added to one
    replica's environment. REPLICA_NAME is label-pid-port: unique on the host."""
    waits: list[int] = []
    for name in SERVICES:
        for i in range((replicas or {}).get(name, 1)):
            label = replica_label(name, i)
            if name in ("gateway", "media"):
                port = (http_ports or {}).get(label, stack.ports.metrics_port(name))
                child = env | {f"{name.upper()}_PORT": str(port)}
            else:  # workers: a metrics port per replica
                port = stack.ports.metrics_port(name) if i == 0 else free_port()
                child = env | {"METRICS_PORT": str(port)}
            child |= {"REPLICA_NAME": f"{label}-{os.getpid()}-{port}"}
            child |= (replica_env or {}).get(label, {})
            stack.spawn(label, [sys.executable, "-m", f"services.{name}"], child)
            waits.append(port)
    for port in waits:
        wait_http(f"http://127.0.0.1:{port}/healthz", stack, timeout_s)
