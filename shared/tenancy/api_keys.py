"""Admin API keys: `fd_` + 32 URL-safe characters, scoped to one tenant, only SHA-256 stored.

The key itself is shown once (by `frontdesk apikey create`); the database holds its hex SHA-256,
which the gateway looks up per request. A SHA-256 (not a slow password hash) is enough: keys
carry 192 random bits, so there is nothing to brute-force.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db.models import ApiKey, Tenant

PREFIX = "fd_"
BODY_CHARS = 32
NAME_MAX = 100
KEY_PATTERN = re.compile(rf"^{PREFIX}[A-Za-z0-9_-]{{{BODY_CHARS}}}$")


class UnknownTenantError(LookupError):
    """No tenant has the given slug."""


def generate() -> str:
    """A new random key (24 random bytes -> 32 URL-safe characters)."""
    return PREFIX + secrets.token_urlsafe(BODY_CHARS * 3 // 4)


def looks_like_key(key: str) -> bool:
    """Whether `key` has the shape of a FrontDesk key (cheap check before any lookup)."""
    return KEY_PATTERN.fullmatch(key) is not None


def hash_key(key: str) -> str:
    """The hex SHA-256 stored for a key."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def verify(key: str, key_sha256: str) -> bool:
    """Whether `key` hashes to `key_sha256` (constant-time comparison)."""
    return hmac.compare_digest(hash_key(key), key_sha256)


async def tenant_for_key(session: AsyncSession, key: str) -> str | None:
    """The tenant id a key belongs to, or None for a malformed or unknown key."""
    if not looks_like_key(key):
        return None
    tenant_id: str | None = await session.scalar(
        select(ApiKey.tenant_id).where(ApiKey.key_sha256 == hash_key(key))
    )
    return tenant_id


async def create_for_tenant(session: AsyncSession, slug: str, name: str = "default") -> str:
    """Store a new key for the tenant with this slug and return the key (shown only once)."""
    if not 1 <= len(name) <= NAME_MAX:
        raise ValueError(f"key name must be 1 to {NAME_MAX} characters")
    tenant_id = await session.scalar(select(Tenant.id).where(Tenant.slug == slug))
    if tenant_id is None:
        raise UnknownTenantError(f"no tenant with slug {slug!r}")
    key = generate()
    session.add(ApiKey(tenant_id=tenant_id, key_sha256=hash_key(key), name=name))
    await session.commit()
    return key
