"""Admin API keys: `fd_` + 32 URL-safe characters, scoped to one tenant, only SHA-256 stored.

The key itself is shown once (by `frontdesk apikey create`); the database holds its hex SHA-256,
which the gateway looks up per request (no cache, so a revocation takes effect at once). A
SHA-256 (not a slow password hash) is enough: keys carry 192 random bits, so there is nothing
to brute-force. Each key records when it was last used, written at most once per `touch_s`.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db.models import ApiKey, Tenant

PREFIX = "fd_"
BODY_CHARS = 32
NAME_MAX = 100
KEY_PATTERN = re.compile(rf"^{PREFIX}[A-Za-z0-9_-]{{{BODY_CHARS}}}$")


class UnknownTenantError(LookupError):
    """No tenant has the given slug."""


@dataclass(frozen=True)
class KeyInfo:
    """What may be shown about a key (never the key or its hash)."""

    id: str
    tenant_slug: str
    name: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


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


async def tenant_for_key(session: AsyncSession, key: str, touch_s: int = 60) -> str | None:
    """The tenant id a live key belongs to, or None for a malformed, unknown or revoked key.
    Stamps `last_used_at` (and commits) when the last stamp is older than `touch_s`."""
    if not looks_like_key(key):
        return None
    row = (
        await session.execute(
            select(ApiKey.id, ApiKey.tenant_id, ApiKey.last_used_at).where(
                ApiKey.key_sha256 == hash_key(key), ApiKey.revoked_at.is_(None)
            )
        )
    ).one_or_none()
    if row is None:
        return None
    if row.last_used_at is None or row.last_used_at < datetime.now(UTC) - timedelta(
        seconds=touch_s
    ):
        stale = func.now() - timedelta(seconds=touch_s)  # the database's clock decides
        await session.execute(
            update(ApiKey)
            .where(
                ApiKey.id == row.id,
                or_(ApiKey.last_used_at.is_(None), ApiKey.last_used_at < stale),
            )
            .values(last_used_at=func.now())
        )
        await session.commit()
    tenant_id: str = row.tenant_id
    return tenant_id


async def create_for_tenant(session: AsyncSession, slug: str, name: str = "default") -> str:
    """Store a new key for the tenant with this slug and return the key (shown only once)."""
    if not 1 <= len(name) <= NAME_MAX or "\x00" in name:
        raise ValueError(f"key name must be 1 to {NAME_MAX} characters, without NUL")
    tenant_id = await session.scalar(select(Tenant.id).where(Tenant.slug == slug))
    if tenant_id is None:
        raise UnknownTenantError(f"no tenant with slug {slug!r}")
    key = generate()
    session.add(ApiKey(tenant_id=tenant_id, key_sha256=hash_key(key), name=name))
    await session.commit()
    return key


async def list_keys(session: AsyncSession, slug: str | None = None) -> list[KeyInfo]:
    """Every key (of one tenant, with `slug`), oldest first; revoked ones included."""
    query = select(ApiKey, Tenant.slug).join(Tenant, Tenant.id == ApiKey.tenant_id)
    if slug is not None:
        query = query.where(Tenant.slug == slug)
    rows = await session.execute(query.order_by(ApiKey.created_at, ApiKey.id))
    return [
        KeyInfo(k.id, tenant_slug, k.name, k.created_at, k.last_used_at, k.revoked_at)
        for k, tenant_slug in rows.all()
    ]


async def revoke(session: AsyncSession, key_id: str) -> KeyInfo | None:
    """Revoke the key with this id (idempotent: a revoked key keeps its first revocation
    time); None when there is no such key. Takes effect for the next request."""
    await session.execute(
        update(ApiKey)
        .where(ApiKey.id == key_id, ApiKey.revoked_at.is_(None))
        .values(revoked_at=func.now())
    )
    await session.commit()
    row = (
        await session.execute(
            select(ApiKey, Tenant.slug)
            .join(Tenant, Tenant.id == ApiKey.tenant_id)
            .where(ApiKey.id == key_id)
        )
    ).one_or_none()
    if row is None:
        return None
    key, tenant_slug = row
    return KeyInfo(key.id, tenant_slug, key.name, key.created_at, key.last_used_at, key.revoked_at)
