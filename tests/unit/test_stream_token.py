"""HMAC stream tokens: issue/verify and every rejection path."""

from __future__ import annotations

import pytest

from shared.contract import stream_token as st

SECRET = "s3cret"
SID = "CA33333333333333333333333333333333"
NOW = 1_700_000_000.0


def _token(ttl: int = 120, sid: str = SID, secret: str = SECRET) -> str:
    return st.issue(secret, sid, ttl, now=NOW)


def test_issue_format() -> None:
    token = _token()
    expires, issued_ms, token_id, sig = token.split(".")
    assert int(expires) == int(NOW) + 120
    assert int(issued_ms) == int(NOW * 1000)
    assert len(token_id) == st.TOKEN_ID_HEX and len(sig) == 64
    int(token_id, 16), int(sig, 16)  # hex
    assert token != _token()  # every mint has its own id: a token is single use


def test_verify_ok_within_ttl() -> None:
    token = _token()
    claims = st.verify(SECRET, SID, token, now=NOW)
    assert claims == st.StreamToken(
        token_id=token.split(".")[2], issued_ms=int(NOW * 1000), expires=int(NOW) + 120
    )
    assert st.verify(SECRET, SID, token, now=NOW + 120) == claims  # boundary: still valid


def test_later_mint_orders_after_earlier() -> None:
    first = st.verify(SECRET, SID, _token(), now=NOW)
    later = st.verify(SECRET, SID, st.issue(SECRET, SID, 120, now=NOW + 0.002), now=NOW)
    assert later.issued_ms > first.issued_ms and later.token_id != first.token_id


@pytest.mark.parametrize("part", [1, 2], ids=["issued", "token-id"])
def test_tampered_claims_are_rejected(part: int) -> None:
    parts = _token().split(".")
    parts[part] = "1" + parts[part][1:] if parts[part][0] != "1" else "2" + parts[part][1:]
    with pytest.raises(st.InvalidStreamToken, match="does not match"):
        st.verify(SECRET, SID, ".".join(parts), now=NOW)


def test_verify_with_real_clock() -> None:
    token = st.issue(SECRET, SID, 60)
    st.verify(SECRET, SID, token)


def test_expired() -> None:
    with pytest.raises(st.InvalidStreamToken, match=r"^stream token expired$"):
        st.verify(SECRET, SID, _token(), now=NOW + 121)


def test_wrong_call_sid() -> None:
    with pytest.raises(st.InvalidStreamToken, match=r"^stream token does not match this call$"):
        st.verify(SECRET, "CA00000000000000000000000000000000", _token(), now=NOW)


def test_wrong_secret() -> None:
    with pytest.raises(st.InvalidStreamToken, match="does not match"):
        st.verify("other", SID, _token(), now=NOW)


def test_tampered_signature() -> None:
    token = _token()
    flipped = token[:-1] + ("0" if token[-1] != "0" else "1")
    with pytest.raises(st.InvalidStreamToken, match="does not match"):
        st.verify(SECRET, SID, flipped, now=NOW)


def test_tampered_expiry_is_rejected() -> None:
    expires, rest = _token().split(".", 1)
    forged = f"{int(expires) + 3600}.{rest}"
    with pytest.raises(st.InvalidStreamToken, match="does not match"):
        st.verify(SECRET, SID, forged, now=NOW)


@pytest.mark.parametrize("token", [None, ""])
def test_missing(token: str | None) -> None:
    with pytest.raises(st.InvalidStreamToken, match=r"^missing or malformed stream token$"):
        st.verify(SECRET, SID, token, now=NOW)


def test_no_dot_is_malformed() -> None:
    with pytest.raises(st.InvalidStreamToken, match=r"^missing or malformed stream token$"):
        st.verify(SECRET, SID, "abcdef", now=NOW)


@pytest.mark.parametrize(
    "token",
    [
        "abc.def",
        "-5.1.0123456789abcdef.abc",
        ".1.0123456789abcdef.abc",
        "1e3.1.0123456789abcdef.abc",
        "12a.1.0123456789abcdef.abc",
        "12.x1.0123456789abcdef.abc",
        "12.1.0123456789ABCDEF.abc",
        "12.1.0123.abc",
        "12.1.0123456789abcdef.abc.more",
    ],
)
def test_non_numeric_expiry_is_malformed(token: str) -> None:
    with pytest.raises(st.InvalidStreamToken, match=r"^malformed stream token$"):
        st.verify(SECRET, SID, token, now=NOW)


@pytest.mark.parametrize(
    "token",
    ["\u00b2.abc", "\u0661\u0662.abc", "123.\u00e9\u00e9", "1.sig\u2603", "9" * 5000 + ".ab"],
    ids=["superscript", "arabic-digits", "non-ascii-sig", "snowman-sig", "huge-expiry"],
)
def test_non_ascii_tokens_raise_invalid_stream_token(token: str) -> None:
    """Attacker-controlled junk must never escape as TypeError/ValueError."""
    with pytest.raises(st.InvalidStreamToken):
        st.verify(SECRET, SID, token, now=NOW)


def test_messages_are_distinct_per_failure_class() -> None:
    token = _token()
    cases = {
        "missing": (SID, None, NOW),
        "malformed": (SID, "x.y", NOW),
        "mismatch": ("CAother", token, NOW),
        "expired": (SID, token, NOW + 1000),
    }
    messages = {}
    for name, (sid, tok, now) in cases.items():
        with pytest.raises(st.InvalidStreamToken) as info:
            st.verify(SECRET, sid, tok, now=now)
        messages[name] = str(info.value)
    assert len(set(messages.values())) == 4


def test_is_value_error() -> None:
    assert issubclass(st.InvalidStreamToken, ValueError)
