"""Technician login: a per-gateway code, never a shared default.

The first start generates a code (12 characters, ~60 bits), keeps only its scrypt hash in
the store, and prints the code once on the console (`anxin technician-code --config …`
makes a new one). Sessions are random tokens in an HttpOnly, SameSite=Strict cookie, each
with its own CSRF token for forms; logins are rate-limited per address.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass, field

ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read over the phone
CODE_LENGTH = 12
SESSION_S = 8 * 3600.0
MAX_FAILURES = 5  # then this address waits LOCKOUT_S
LOCKOUT_S = 60.0
SCRYPT = {"n": 2**14, "r": 8, "p": 1}


def new_code() -> str:
    """A fresh technician code, grouped for reading aloud (XXXX-XXXX-XXXX)."""
    raw = "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))
    return "-".join(raw[i:i + 4] for i in range(0, CODE_LENGTH, 4))


def _normalise(code: str) -> bytes:
    return code.replace("-", "").replace(" ", "").upper().encode()


def hash_code(code: str) -> str:
    """`scrypt$<salt hex>$<hash hex>` for storing."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(_normalise(code), salt=salt, dklen=32, **SCRYPT)
    return f"scrypt${salt.hex()}${digest.hex()}"


def check_code(code: str, stored: str) -> bool:
    """Whether `code` matches the stored hash (constant time)."""
    try:
        kind, salt, digest = stored.split("$")
    except ValueError:
        return False
    if kind != "scrypt":
        return False
    got = hashlib.scrypt(_normalise(code), salt=bytes.fromhex(salt), dklen=32, **SCRYPT)
    return hmac.compare_digest(got.hex(), digest)


@dataclass(slots=True)
class Session:
    """One logged-in technician."""

    csrf: str
    expires: float
    technician: str = ""  # the name typed at the first commissioning step, for the report


@dataclass(slots=True)
class Sessions:
    """Logged-in sessions and failed logins, in memory (a restart logs everyone out)."""

    sessions: dict[str, Session] = field(default_factory=dict)
    failures: dict[str, tuple[int, float]] = field(default_factory=dict)  # addr -> (n, last)

    def locked(self, addr: str, now: float) -> float:
        """Seconds `addr` must still wait before trying again (0: may try)."""
        n, last = self.failures.get(addr, (0, 0.0))
        if n < MAX_FAILURES:
            return 0.0
        return max(0.0, last + LOCKOUT_S - now)

    def failed(self, addr: str, now: float) -> None:
        """Count a failed login from `addr`."""
        n, _ = self.failures.get(addr, (0, 0.0))
        self.failures[addr] = (n + 1, now)

    def open(self, addr: str, now: float) -> tuple[str, Session]:
        """A new session after a good login."""
        self.failures.pop(addr, None)
        token = secrets.token_urlsafe(32)
        session = Session(csrf=secrets.token_urlsafe(24), expires=now + SESSION_S)
        self.sessions[token] = session
        return token, session

    def get(self, token: str | None, now: float | None = None) -> Session | None:
        """The live session for a cookie token, if any."""
        now = time.time() if now is None else now
        session = self.sessions.get(token or "")
        if session is None or session.expires < now:
            self.sessions.pop(token or "", None)
            return None
        return session

    def close(self, token: str | None) -> None:
        """Log out."""
        self.sessions.pop(token or "", None)
