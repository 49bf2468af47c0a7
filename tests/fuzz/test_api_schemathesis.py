"""Schemathesis over the running gateway's OpenAPI document: a few generated requests per
operation, as a tenant with a real key. No 5xx, every response conforms to the documented
schema (status codes, content types, bodies). Bounded: MAX_EXAMPLES per operation, no
shrinking beyond hypothesis' default budget, no deadline (timing is `make bench`'s job)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis import Case, checks

from services.gateway.app import create_app
from shared.db.engine import make_engine, make_sessions
from shared.runtime.settings import Settings
from tests.conftest import Platform
from tests.integration.admin_support import KeyedTenant, make_tenant

MAX_EXAMPLES = 6
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
    checks.response_headers_conformance,
]
"""What must hold for every request: no 5xx, and the response is what the document says.
(Not checked: whether a schema-valid body is accepted, since some rules are semantic, such as
IANA zone names, ids that must exist and URLs that must resolve to public addresses.)"""

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def fuzz_tenant(platform: Platform) -> KeyedTenant:
    async def make() -> KeyedTenant:
        engine = make_engine(platform.infra.database_url)
        try:
            return await make_tenant(make_sessions(engine), "fuzz")
        finally:
            await engine.dispose()

    return asyncio.run(make())


def _document() -> dict[str, Any]:
    """The OpenAPI document the gateway serves (built without starting it; the running
    platform serves the same one at /openapi.json)."""
    unused = Settings(redis_url="redis://unused", database_url="postgresql://unused")
    return create_app(unused).openapi()


schema = schemathesis.openapi.from_dict(_document())


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
def test_no_5xx_and_responses_match_the_schema(
    case: Case, platform: Platform, fuzz_tenant: KeyedTenant
) -> None:
    case.call_and_validate(base_url=platform.gateway, headers=fuzz_tenant.headers, checks=CHECKS)
