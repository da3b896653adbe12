"""ULIDs: 128-bit ids that sort by creation time (48-bit ms timestamp + 80 random bits)."""

from __future__ import annotations

import os

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def ulid(now: float, entropy: bytes | None = None) -> str:
    """A ULID for unix time `now`; `entropy` (10 bytes) defaults to os.urandom."""
    ms = int(now * 1000)
    if not 0 <= ms < 1 << 48:
        raise ValueError(f"time {now!r} is outside the ULID range")
    rand = os.urandom(10) if entropy is None else entropy
    if len(rand) != 10:
        raise ValueError("ULID entropy must be 10 bytes")
    n = (ms << 80) | int.from_bytes(rand, "big")
    return "".join(_CROCKFORD[(n >> shift) & 31] for shift in range(125, -1, -5))


def ulid_time(value: str) -> float:
    """The unix time (seconds, ms resolution) encoded in a ULID."""
    if len(value) != 26:
        raise ValueError(f"not a ULID: {value!r}")
    n = 0
    for ch in value.upper():
        idx = _CROCKFORD.find(ch)
        if idx < 0:
            raise ValueError(f"not a ULID: {value!r}")
        n = (n << 5) | idx
    return (n >> 80) / 1000
