"""The wrong-PIN limit counts per real client behind a trusted reverse proxy, and a client
cannot choose its own address by sending X-Forwarded-For itself."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from devtools.smtp_sink import MailSink
from services.reviews.app import create_app
from tests.conftest import running_app
from tests.integration.reviews.conftest import GOOD, reviews_settings

pytestmark = pytest.mark.integration

WRONG = {"scores": GOOD, "comment": "x", "pin": "ZZZZ-ZZZZ-ZZZZ"}


async def wrong_pin(client: httpx.AsyncClient, forwarded_for: str) -> int:
    response = await client.post(
        "/api/v1/reviews", json=WRONG, headers={"X-Forwarded-For": forwarded_for}
    )
    return response.status_code


@pytest.fixture
async def behind(
    request: pytest.FixtureRequest, kafka_bootstrap: str, database_url: str, smtp_sink: MailSink
) -> AsyncIterator[httpx.AsyncClient]:
    """The reviews service trusting the given proxies; the test client connects from
    127.0.0.1, as a proxy on the same host would."""
    settings = reviews_settings(
        kafka_bootstrap,
        database_url,
        smtp_sink.port,
        code_failure_limit=3,
        trusted_proxies=request.param,
    )
    async with running_app(create_app(settings)) as client:
        yield client


@pytest.mark.parametrize("behind", ["127.0.0.1"], indirect=True)
async def test_a_trusted_proxy_s_client_address_is_the_one_limited(
    behind: httpx.AsyncClient,
) -> None:
    assert [await wrong_pin(behind, "203.0.113.7") for _ in range(3)] == [404, 404, 404]
    assert await wrong_pin(behind, "203.0.113.7") == 429
    assert await wrong_pin(behind, "203.0.113.8") == 404  # another client behind the proxy


@pytest.mark.parametrize("behind", ["10.9.9.9"], indirect=True)
async def test_an_untrusted_sender_cannot_choose_its_address(behind: httpx.AsyncClient) -> None:
    assert [await wrong_pin(behind, f"198.51.100.{n}") for n in range(3)] == [404, 404, 404]
    assert await wrong_pin(behind, "198.51.100.99") == 429  # all counted against the sender
