"""G.711 µ-law tables checked against a scalar reference, plus resampling and RMS."""

from __future__ import annotations

import numpy as np
import pytest

from shared import codecs

BIAS = 0x84
CLIP = 32635


def ref_linear2ulaw(sample: int) -> int:
    """Classic scalar G.711 µ-law encoder (Craig Reese / CCITT style, no zero trap)."""
    sign = 0x80 if sample < 0 else 0
    if sample < 0:
        sample = -sample
    sample = min(sample, CLIP) + BIAS
    exponent = 7
    mask = 0x4000
    while exponent > 0 and not (sample & mask):
        exponent -= 1
        mask >>= 1
    mantissa = (sample >> (exponent + 3)) & 0x0F
    return ~(sign | (exponent << 4) | mantissa) & 0xFF


def ref_ulaw2linear(code: int) -> int:
    """Classic scalar G.711 µ-law decoder."""
    code = ~code & 0xFF
    sign = code & 0x80
    exponent = (code >> 4) & 0x07
    mantissa = code & 0x0F
    magnitude = ((mantissa << 3) + BIAS) << exponent
    return BIAS - magnitude if sign else magnitude - BIAS


def test_decode_table_matches_reference_for_every_code() -> None:
    assert codecs.ULAW_TO_PCM16.dtype == np.int16
    assert codecs.ULAW_TO_PCM16.shape == (256,)
    for code in range(256):
        assert int(codecs.ULAW_TO_PCM16[code]) == ref_ulaw2linear(code), hex(code)


def test_decode_known_values() -> None:
    table = codecs.ULAW_TO_PCM16
    assert int(table[0xFF]) == 0
    assert int(table[0x7F]) == 0
    assert int(table[0x80]) == 32124
    assert int(table[0x00]) == -32124
    assert int(table[0xFE]) == 8
    assert int(table[0x7E]) == -8


def test_encode_table_matches_reference_for_every_sample() -> None:
    table = codecs.PCM16_TO_ULAW
    assert table.shape == (65536,)
    mismatches = [
        pcm for pcm in range(-32768, 32768) if int(table[pcm + 32768]) != ref_linear2ulaw(pcm)
    ]
    assert mismatches == []


def test_ulaw_round_trip_every_code() -> None:
    """decode -> encode is the identity except negative zero 0x7F, which becomes 0xFF."""
    data = bytes(range(256))
    back = codecs.pcm16_to_ulaw(codecs.ulaw_to_pcm16(data))
    assert len(back) == 256
    for code in range(256):
        expected = 0xFF if code == 0x7F else code
        assert back[code] == expected, hex(code)
    # the only non-identity code is 0x7F
    assert [c for c in range(256) if back[c] != c] == [0x7F]


def test_decoded_values_are_distinct_except_zero() -> None:
    values = [int(v) for v in codecs.ULAW_TO_PCM16]
    assert len(set(values)) == 255
    assert sorted(c for c in range(256) if values[c] == 0) == [0x7F, 0xFF]


def test_pcm_round_trip_error_is_bounded() -> None:
    pcm = np.arange(-32768, 32768, dtype=np.int32)
    decoded = codecs.ulaw_to_pcm16(codecs.pcm16_to_ulaw(pcm.astype(np.int16))).astype(np.int32)
    err = np.abs(decoded - pcm)
    # sign is preserved (zero may map either way)
    assert np.all(np.sign(decoded[pcm > 8]) == 1)
    assert np.all(np.sign(decoded[pcm < -8]) == -1)
    big = np.abs(pcm) > 256
    rel = err[big] / np.abs(pcm[big])
    assert rel.max() < 1 / 16
    # within the non-clipped range the error is at most half a quantization step
    inside = np.abs(pcm) <= CLIP
    mag = np.minimum(np.abs(pcm), CLIP) + BIAS
    exponent = np.clip(np.floor(np.log2(mag)).astype(np.int32) - 7, 0, 7)
    half_step = 2 ** (exponent + 2)
    assert np.all(err[inside] <= half_step[inside])
    # small values are nearly exact
    assert err[np.abs(pcm) <= 30].max() <= 4


def test_pcm_bytes_helpers_are_little_endian() -> None:
    samples = np.array([0, 1000, -1000, 32767, -32768], dtype=np.int16)
    raw = samples.astype("<i2").tobytes()
    ulaw = codecs.pcm16_bytes_to_ulaw(raw)
    assert ulaw == bytes(ref_linear2ulaw(int(s)) for s in samples)
    back = codecs.ulaw_to_pcm16_bytes(ulaw)
    assert len(back) == 2 * len(samples)
    decoded = np.frombuffer(back, dtype="<i2")
    assert [int(v) for v in decoded] == [ref_ulaw2linear(c) for c in ulaw]


@pytest.mark.parametrize(
    ("in_rate", "out_rate", "n", "expected"),
    [
        (8000, 16000, 160, 320),
        (8000, 16000, 1000, 2000),
        (16000, 8000, 320, 160),
        (8000, 24000, 160, 480),
    ],
)
def test_resample_length(in_rate: int, out_rate: int, n: int, expected: int) -> None:
    out = codecs.resample_pcm16(np.zeros(n, dtype=np.int16), in_rate, out_rate)
    assert out.dtype == np.int16
    assert len(out) == expected


def test_resample_same_rate_is_identity() -> None:
    x = np.arange(100, dtype=np.int16)
    assert codecs.resample_pcm16(x, 8000, 8000) is x


def test_resample_preserves_a_tone() -> None:
    t8 = np.arange(8000) / 8000
    t16 = np.arange(16000) / 16000
    tone8 = (10000 * np.sin(2 * np.pi * 440 * t8)).astype(np.int16)
    tone16 = 10000 * np.sin(2 * np.pi * 440 * t16)
    out = codecs.resample_pcm16(tone8, 8000, 16000).astype(np.float64)
    middle = slice(1000, 15000)
    assert np.max(np.abs(out[middle] - tone16[middle])) < 200


def test_ulaw_rms() -> None:
    assert codecs.ULAW_SILENCE == 0xFF
    assert codecs.ulaw_rms(b"") == 0.0
    assert codecs.ulaw_rms(bytes([0xFF]) * 160) == 0.0
    assert codecs.ulaw_rms(bytes([0x7F, 0xFF]) * 80) == 0.0
    assert codecs.ulaw_rms(bytes([0x80]) * 160) == pytest.approx(32124.0)
    # +8 and -8 alternating: rms 8
    assert codecs.ulaw_rms(bytes([0xFE, 0x7E]) * 80) == pytest.approx(8.0)
