"""Throwaway TLS for simulators: a trustme CA, a server cert for 127.0.0.1/localhost, and
the two ways a client can trust it.

Which client honours what (checked against the installed libraries):
* `ssl.create_default_context()` (websockets' default for wss://, so the ElevenLabs SDK's
  sync `convert_realtime` and deepgram-sdk sockets) loads OpenSSL's default verify paths,
  which honour the `SSL_CERT_FILE` / `SSL_CERT_DIR` environment variables of the process.
* httpx 0.28 (the ElevenLabs and Deepgram SDKs' REST clients) trusts certifi by default and
  replaces it by `SSL_CERT_FILE` when that variable is set (trust_env=True).
* FrontDesk's own adapters take neither: they build `client_ssl_context(ca)` from the
  `PROVIDER_CA_FILE` setting (system store + this CA) and pass it explicitly.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

SERVER_IDENTITIES = ("127.0.0.1", "localhost")


@dataclass(frozen=True)
class TlsFiles:
    """PEM files of one throwaway CA and the server certificate it issued."""

    ca_pem: Path
    cert_chain_pem: Path
    key_pem: Path


def tls_files_in(directory: Path) -> TlsFiles:
    """Where make_tls_files() writes (or finds) the PEMs inside `directory`."""
    return TlsFiles(
        ca_pem=directory / "ca.pem",
        cert_chain_pem=directory / "server-chain.pem",
        key_pem=directory / "server-key.pem",
    )


def make_tls_files(directory: Path) -> TlsFiles:
    """Create a CA and a 127.0.0.1/localhost server cert in `directory`; reuse existing ones.

    Reuse lets a test (or the launcher) create the directory first, hand `ca.pem` to clients,
    and start the simulator process with `--tls-dir` on the same directory.
    """
    import trustme  # dev dependency: only needed when a simulator serves TLS

    files = tls_files_in(directory)
    if files.ca_pem.is_file() and files.cert_chain_pem.is_file() and files.key_pem.is_file():
        return files
    directory.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA()
    leaf = ca.issue_cert(*SERVER_IDENTITIES)
    files.ca_pem.write_bytes(ca.cert_pem.bytes())
    files.cert_chain_pem.write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
    files.key_pem.write_bytes(leaf.private_key_pem.bytes())
    files.key_pem.chmod(0o600)
    return files


def server_ssl_context(files: TlsFiles) -> ssl.SSLContext:
    """Server-side context presenting the simulator certificate."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(str(files.cert_chain_pem), str(files.key_pem))
    return ctx


def client_ssl_context(ca_pem: Path | str | None) -> ssl.SSLContext:
    """Client context trusting the system store plus `ca_pem` (if given)."""
    ctx = ssl.create_default_context()
    if ca_pem is not None:
        ctx.load_verify_locations(cafile=str(ca_pem))
    return ctx


def ssl_cert_file_env(files: TlsFiles) -> dict[str, str]:
    """Environment that makes a client process trust only the simulator CA (see module doc)."""
    return {"SSL_CERT_FILE": str(files.ca_pem)}
