"""An httpx client that only connects to addresses the outbound guard allows, and connects to
the very address it checked (against DNS rebinding): the request goes to the IP, with the
original `Host` header and TLS server name (SNI and certificate check) kept."""

from __future__ import annotations

import ipaddress
from typing import Any

import httpx

from shared.runtime.outbound_guard import UnsafeUrlError, UrlPolicy, checked_addresses


class RefusedAddressError(httpx.TransportError):
    """The request's host resolves to an address the guard refuses (a permanent failure);
    `reason` names no host or address."""

    def __init__(self, message: str, *, reason: str, request: httpx.Request) -> None:
        super().__init__(message, request=request)
        self.reason = reason


class GuardedTransport(httpx.AsyncBaseTransport):
    """Resolve, check, then send to the checked address through an inner transport."""

    def __init__(self, policy: UrlPolicy, inner: httpx.AsyncBaseTransport | None = None) -> None:
        self.policy = policy
        self.inner = inner or httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        host = request.url.host
        port = request.url.port or (443 if request.url.scheme == "https" else 80)
        if request.url.scheme not in ("http", "https"):
            raise RefusedAddressError(
                "only http and https are allowed", reason="not http(s)", request=request
            )
        try:
            addresses = await checked_addresses(host, port, self.policy)
        except UnsafeUrlError as exc:
            raise RefusedAddressError(str(exc), reason=exc.reason, request=request) from exc
        address = addresses[0]
        pinned = str(address) if address.version == 4 else f"[{address}]"
        extensions = dict(request.extensions)
        if request.url.scheme == "https" and not _is_literal(host):
            extensions.setdefault("sni_hostname", host)
        headers = httpx.Headers(request.headers)
        headers.setdefault("Host", request.url.netloc.decode("ascii"))
        pinned_request = httpx.Request(
            request.method,
            request.url.copy_with(host=pinned.strip("[]")),
            headers=headers,
            stream=request.stream,
            extensions=extensions,
        )
        return await self.inner.handle_async_request(pinned_request)

    async def aclose(self) -> None:
        await self.inner.aclose()


def _is_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def guarded_client(policy: UrlPolicy, **kwargs: Any) -> httpx.AsyncClient:
    """An AsyncClient (redirects off) whose every connection passes the outbound guard."""
    verify = kwargs.pop("verify", True)
    inner = httpx.AsyncHTTPTransport(verify=verify)
    return httpx.AsyncClient(
        transport=GuardedTransport(policy, inner), follow_redirects=False, **kwargs
    )
