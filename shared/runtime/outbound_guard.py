"""Which addresses outbound HTTP (webhooks, calendars) may reach: refuses loopback, private,
link-local, CGNAT, multicast, unspecified, reserved and cloud-metadata addresses (IPv4 and IPv6,
IPv4-mapped IPv6 included) unless the operator allows them.

`check_url` resolves a URL's host and checks every address it resolves to (creation time);
`shared.runtime.guarded_http` checks again at connect time and connects to the checked address
(so a DNS answer that changes in between, DNS rebinding, cannot redirect the request).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from shared.runtime.settings import Settings

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

METADATA = tuple(
    ipaddress.ip_network(n)
    for n in ("169.254.169.254/32", "fd00:ec2::254/128", "100.100.100.200/32", "168.63.129.16/32")
)
"""Cloud instance-metadata addresses (AWS/GCP/Azure/OpenStack, AWS IPv6, Alibaba, Azure wire):
refused even when private addresses are allowed; only an explicit allow-list entry opens one."""
CGNAT = ipaddress.ip_network("100.64.0.0/10")
NAT64 = ipaddress.ip_network("64:ff9b::/96")
MAX_URL_CHARS = 2000


class UnsafeUrlError(ValueError):
    """The URL may not be fetched; the message says why (safe to show the tenant who gave the
    URL), `reason` says it without naming the host or address (safe to store in a log)."""

    def __init__(self, message: str, reason: str = "") -> None:
        super().__init__(message)
        self.reason = reason or message


def _parse_allow(entries: str) -> tuple[tuple[IpNetwork, ...], frozenset[str]]:
    networks: list[IpNetwork] = []
    hosts: set[str] = set()
    for raw in entries.split(","):
        entry = raw.strip().lower()
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            hosts.add(entry.rstrip("."))
    return tuple(networks), frozenset(hosts)


@dataclass(frozen=True)
class UrlPolicy:
    """What the operator allows beyond public addresses."""

    allow_private: bool = False
    allow_networks: tuple[IpNetwork, ...] = ()
    allow_hosts: frozenset[str] = frozenset()

    @classmethod
    def from_settings(cls, settings: Settings) -> UrlPolicy:
        networks, hosts = _parse_allow(settings.outbound_allow)
        return cls(settings.outbound_allow_private, networks, hosts)

    @classmethod
    def parse(cls, allow: str, *, allow_private: bool = False) -> UrlPolicy:
        """A policy from an allow-list string like `127.0.0.0/8,::1/128,calendar.internal`."""
        networks, hosts = _parse_allow(allow)
        return cls(allow_private, networks, hosts)

    def host_allowed(self, host: str) -> bool:
        """An allow-listed host name: any address it resolves to is accepted."""
        return host.lower().rstrip(".") in self.allow_hosts


def _unwrap(address: IpAddress) -> IpAddress:
    """The IPv4 address inside an IPv4-mapped, 6to4 or NAT64 IPv6 address, else the address."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address.sixtofour is not None:
            return address.sixtofour
        if address in NAT64:
            return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address


def refusal(address: IpAddress, policy: UrlPolicy) -> str | None:
    """Why `address` may not be reached under `policy`, or None when it may. Pure."""
    if any(address in net for net in policy.allow_networks if net.version == address.version):
        return None
    inner = _unwrap(address)
    if inner is not address and any(
        inner in net for net in policy.allow_networks if net.version == inner.version
    ):
        return None
    # the embedded IPv4 address first: it names what the connection reaches (a set's order
    # would follow the per-process string hash seed)
    candidates = (address,) if inner is address else (inner, address)
    for candidate in candidates:
        if any(candidate in net for net in METADATA if net.version == candidate.version):
            return "a cloud metadata address"
        if candidate.is_unspecified:
            return "an unspecified address"
        if candidate.is_multicast:
            return "a multicast address"
    if policy.allow_private:
        return None
    for candidate in candidates:
        if candidate.is_loopback:
            return "a loopback address"
        if candidate.is_link_local:
            return "a link-local address"
        if isinstance(candidate, ipaddress.IPv4Address) and candidate in CGNAT:
            return "a carrier-grade NAT address"
        if candidate.is_private or candidate.is_reserved or not candidate.is_global:
            return "a private or reserved address"
    return None


def split_url(url: str) -> tuple[str, int]:
    """(host, port) of an http(s) URL; UnsafeUrlError for anything else."""
    if len(url) > MAX_URL_CHARS:
        raise UnsafeUrlError(f"URL longer than {MAX_URL_CHARS} characters")
    if any(ord(c) < 0x21 or c == "\x7f" for c in url):
        raise UnsafeUrlError("URL contains control characters or spaces")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UnsafeUrlError(f"malformed URL: {exc}") from exc
    if parts.scheme not in ("http", "https"):
        raise UnsafeUrlError("URL must be http or https")
    host = parts.hostname or ""
    if not host:
        raise UnsafeUrlError("URL has no host")
    return host, port or (443 if parts.scheme == "https" else 80)


async def resolve(host: str, port: int) -> list[IpAddress]:
    """Every address `host` resolves to (a literal address resolves to itself)."""
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise UnsafeUrlError(f"host {host!r} does not resolve", "host does not resolve") from exc
    addresses: list[IpAddress] = []
    for info in infos:
        raw = str(info[4][0]).split("%", 1)[0]  # drop an IPv6 scope id
        address = ipaddress.ip_address(raw)
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise UnsafeUrlError(f"host {host!r} does not resolve", "host does not resolve")
    return addresses


async def checked_addresses(host: str, port: int, policy: UrlPolicy) -> list[IpAddress]:
    """The addresses of `host`, all of them allowed; UnsafeUrlError naming the first refused."""
    addresses = await resolve(host, port)
    if policy.host_allowed(host):
        return addresses
    for address in addresses:
        reason = refusal(address, policy)
        if reason is not None:
            raise UnsafeUrlError(
                f"host {host!r} resolves to {address}, {reason}; outbound requests to it are "
                "refused (an operator can allow it with OUTBOUND_ALLOW)",
                reason=f"host resolves to {reason}",
            )
    return addresses


async def check_url(url: str, policy: UrlPolicy) -> None:
    """Raise UnsafeUrlError unless `url` is http(s) and every address of its host is allowed."""
    host, port = split_url(url)
    await checked_addresses(host, port, policy)
