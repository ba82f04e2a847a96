"""G.711 μ-law (PCMU) and A-law (PCMA) with 256-entry numpy tables (no audioop: gone in Python 3.13).

Decoding is a table lookup; encoding is a lookup in a 65536-entry table built from the same definitions
(ITU-T G.711), so encode(decode(x)) == x for every code."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

PCMU = 0  # static RTP payload types (RFC 3551)
PCMA = 8


def _ulaw_decode_table() -> NDArray[np.int16]:
    codes = ~np.arange(256, dtype=np.int32) & 0xFF
    sign = codes & 0x80
    exponent = (codes >> 4) & 0x07
    mantissa = codes & 0x0F
    magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84
    return np.where(sign != 0, -magnitude, magnitude).astype(np.int16)


def _alaw_decode_table() -> NDArray[np.int16]:
    codes = np.arange(256, dtype=np.int32) ^ 0x55
    sign = codes & 0x80
    exponent = (codes >> 4) & 0x07
    mantissa = codes & 0x0F
    magnitude = np.where(exponent == 0, (mantissa << 4) + 8, ((mantissa << 4) + 0x108) << (exponent - 1))
    return np.where(sign != 0, magnitude, -magnitude).astype(np.int16)


ULAW_DECODE = _ulaw_decode_table()
ALAW_DECODE = _alaw_decode_table()


def _encode_table(decode: NDArray[np.int16]) -> NDArray[np.uint8]:
    """For every 16-bit sample, the code whose decoded value is nearest (ties: the smaller magnitude)."""
    order = np.argsort(decode, kind="stable")
    values = decode[order].astype(np.int32)
    samples = np.arange(-32768, 32768, dtype=np.int32)
    idx = np.clip(np.searchsorted(values, samples), 1, len(values) - 1)
    lower, upper = values[idx - 1], values[idx]
    pick = np.where(samples - lower <= upper - samples, idx - 1, idx)
    return order[pick].astype(np.uint8)


ULAW_ENCODE = _encode_table(ULAW_DECODE)
ALAW_ENCODE = _encode_table(ALAW_DECODE)


def decode(payload: bytes, payload_type: int) -> bytes:
    """G.711 bytes → 16-bit little-endian PCM bytes."""
    table = ALAW_DECODE if payload_type == PCMA else ULAW_DECODE
    return table[np.frombuffer(payload, dtype=np.uint8)].tobytes()


def encode(pcm: bytes | NDArray[np.int16], payload_type: int) -> bytes:
    """16-bit PCM → G.711 bytes."""
    samples = np.frombuffer(pcm, dtype="<i2") if isinstance(pcm, bytes) else pcm
    table = ALAW_ENCODE if payload_type == PCMA else ULAW_ENCODE
    return table[samples.astype(np.int32) + 32768].tobytes()
