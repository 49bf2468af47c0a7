"""The outbound guard's address classification (pure) and its URL checks."""

from __future__ import annotations

import ipaddress

import pytest

from shared.runtime.outbound_guard import UnsafeUrlError, UrlPolicy, check_url, refusal, split_url
from shared.runtime.secrets_guard import weak_secrets
from shared.runtime.settings import Settings

DEFAULT = UrlPolicy()


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("127.255.0.9", "loopback"),
        ("::1", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("169.254.169.254", "metadata"),
        ("169.254.1.1", "link-local"),
        ("fe80::1", "link-local"),
        ("100.64.0.1", "carrier-grade NAT"),
        ("100.127.255.254", "carrier-grade NAT"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("fc00::1", "private"),
        ("fd00:ec2::254", "metadata"),
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:169.254.169.254", "metadata"),
        ("::ffff:10.0.0.1", "private"),
        ("64:ff9b::a9fe:a9fe", "metadata"),  # NAT64 of 169.254.169.254
        ("2002:7f00:1::", "loopback"),  # 6to4 of 127.0.0.1
        ("240.0.0.1", "reserved"),
        ("192.0.2.1", "private or reserved"),  # TEST-NET-1
    ],
)
def test_internal_addresses_are_refused_by_default(address: str, reason: str) -> None:
    why = refusal(ipaddress.ip_address(address), DEFAULT)
    assert why is not None and reason in why, why


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111"])
def test_public_addresses_are_allowed(address: str) -> None:
    assert refusal(ipaddress.ip_address(address), DEFAULT) is None


def test_allow_private_opens_private_ranges_but_never_metadata() -> None:
    policy = UrlPolicy(allow_private=True)
    assert refusal(ipaddress.ip_address("127.0.0.1"), policy) is None
    assert refusal(ipaddress.ip_address("10.0.0.1"), policy) is None
    assert refusal(ipaddress.ip_address("169.254.169.254"), policy) == "a cloud metadata address"
    assert refusal(ipaddress.ip_address("::ffff:169.254.169.254"), policy) is not None


def test_allow_list_of_cidrs_opens_exactly_those() -> None:
    policy = UrlPolicy.parse("127.0.0.0/8, ::1/128")
    assert refusal(ipaddress.ip_address("127.0.0.1"), policy) is None
    assert refusal(ipaddress.ip_address("::ffff:127.0.0.1"), policy) is None
    assert refusal(ipaddress.ip_address("::1"), policy) is None
    assert refusal(ipaddress.ip_address("10.0.0.1"), policy) is not None
    assert refusal(ipaddress.ip_address("169.254.169.254"), policy) is not None


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://example.com/x", "http or https"),
        ("file:///etc/passwd", "http or https"),
        ("http:///nohost", "no host"),
        ("http://exa mple.com/", "control characters"),
        ("http://example.com/\x00", "control characters"),
        ("http://example.com:99999/", "malformed"),
        ("http://example.com/" + "a" * 3000, "longer than"),
    ],
)
def test_malformed_urls_are_refused(url: str, message: str) -> None:
    with pytest.raises(UnsafeUrlError, match=message):
        split_url(url)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8010/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::ffff:7f00:1]/hook",
        "http://[::1]:80/",
        "http://localhost/hook",
        "https://0.0.0.0/",
        "http://0177.0.0.1/",  # octal spelling: resolves to 127.0.0.1
        "http://2130706433/",  # decimal spelling of 127.0.0.1
    ],
)
async def test_urls_reaching_inside_are_refused(url: str) -> None:
    with pytest.raises(UnsafeUrlError, match=r"refused|does not resolve"):
        await check_url(url, DEFAULT)


def test_weak_secrets_are_named_by_their_setting() -> None:
    defaults = Settings(_env_file=None, twilio_auth_token="sim-auth-token", stream_token_secret="")
    problems = weak_secrets(defaults)
    assert "TWILIO_AUTH_TOKEN is a published default" in problems
    assert "STREAM_TOKEN_SECRET is empty" in problems
    short = Settings(twilio_auth_token="x" * 32, stream_token_secret="short", operator_api_key="op")
    assert weak_secrets(short) == [
        "STREAM_TOKEN_SECRET is shorter than 16 characters",
        "OPERATOR_API_KEY is shorter than 16 characters",
    ]
    strong = Settings(twilio_auth_token="x" * 32, stream_token_secret="y" * 40)
    assert weak_secrets(strong) == []
