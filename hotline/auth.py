"""Operator login for the console: scrypt password hashes, sessions, CSRF, roles.

No default password exists: the first start with no operators creates `admin` with a
generated password printed once on the console (`anxin hotline --add-operator NAME --role R`
and `--reset-password NAME` make more). A session is a random token in an HttpOnly,
SameSite=Strict cookie (Secure over https); the store keeps only the token's SHA-256, so a
copy of the database logs nobody in. Every state-changing request carries the session's
CSRF token (the `X-CSRF-Token` header for fetch, the `csrf` field for forms). Failed logins
are limited per address and per username. Passwords and tokens are never logged.

Roles, each including the one before: operator (handles alerts) < supervisor (statistics,
manages operators) < admin (manages supervisors and admins too).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import time
import unicodedata
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from aiohttp import web

from hotline.store import AsyncHotlineStore

logger = logging.getLogger(__name__)

ROLES = ("operator", "supervisor", "admin")
COOKIE = "anxin_hotline_session"
LOGIN_COOKIE = "anxin_hotline_login"  # the login form's own CSRF token (double submit)
CSRF_HEADER = "X-CSRF-Token"
SESSION_S = 12 * 3600.0  # one shift
MIN_PASSWORD = 10
SCRYPT = {"n": 2**14, "r": 8, "p": 1}
ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnpqrstuvwxyz23456789"  # no 0/O, 1/l/I
# Failed logins: this many from one address, or against one username, lock it for a while.
MAX_FAILURES_ADDR, LOCK_ADDR_S = 5, 60.0
MAX_FAILURES_USER, LOCK_USER_S = 10, 300.0
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})



def new_password() -> str:
    """A generated password: 16 characters (~93 bits), grouped for reading out."""
    raw = "".join(secrets.choice(ALPHABET) for _ in range(16))
    return "-".join(raw[i:i + 4] for i in range(0, 16, 4))


# The same scrypt scheme as the gateway's technician code (gateway/web/auth.py), kept
# separate on purpose: the hotline stands for another organisation's system and knows
# gateways only through alerts/wire.py (ARCHITECTURE.md).
def hash_password(password: str) -> str:
    """`scrypt$<salt hex>$<hash hex>` for storing."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, dklen=32, **SCRYPT)
    return f"scrypt${salt.hex()}${digest.hex()}"


def check_password(password: str, stored: str) -> bool:
    """Whether `password` matches the stored hash (constant-time compare)."""
    try:
        kind, salt, digest = stored.split("$")
    except ValueError:
        return False
    if kind != "scrypt":
        return False
    got = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt), dklen=32, **SCRYPT)
    return hmac.compare_digest(got.hex(), digest)


# Checking a name nobody has still costs one scrypt, so timing does not tell which exist.
_DUMMY_HASH = hash_password(secrets.token_hex(8))


def username_problem(name: str) -> str | None:
    """Why `name` cannot be a username, or None (1-32 characters, no spaces or controls)."""
    if not 1 <= len(name) <= 32:
        return "a username is 1 to 32 characters"
    if any(c.isspace() or unicodedata.category(c).startswith("C") for c in name):
        return "a username has no spaces or control characters"
    return None


def password_problem(password: str) -> str | None:
    """Why `password` is too weak, or None."""
    if len(password) < MIN_PASSWORD:
        return f"a password is at least {MIN_PASSWORD} characters"
    return None


def token_hash(token: str) -> str:
    """What the store keeps of a session token."""
    return hashlib.sha256(token.encode()).hexdigest()


def can(role: str, needed: str) -> bool:
    """Whether `role` includes `needed`."""
    return role in ROLES and ROLES.index(role) >= ROLES.index(needed)


@dataclass(frozen=True, slots=True)
class Operator:
    """The logged-in operator of a request."""

    username: str
    role: str
    csrf: str


# The request's operator, set by the middleware.
OPERATOR: web.RequestKey[Operator] = web.RequestKey("operator", Operator)


@dataclass(slots=True)
class LoginLimiter:
    """Failed logins per address and per username, in memory."""

    by_addr: dict[str, tuple[int, float]] = field(default_factory=dict)
    by_user: dict[str, tuple[int, float]] = field(default_factory=dict)

    def wait(self, addr: str, username: str, now: float) -> float:
        """Seconds before this address may try this username again (0: may try now)."""
        return max(_left(self.by_addr.get(addr), MAX_FAILURES_ADDR, LOCK_ADDR_S, now),
                   _left(self.by_user.get(username), MAX_FAILURES_USER, LOCK_USER_S, now))

    def failed(self, addr: str, username: str, now: float) -> None:
        """Count one failed login."""
        for table, key, lock in ((self.by_addr, addr, LOCK_ADDR_S),
                                 (self.by_user, username, LOCK_USER_S)):
            n, last = table.get(key, (0, 0.0))
            table[key] = (1 if now - last > lock else n + 1, now)

    def succeeded(self, addr: str, username: str) -> None:
        """A good login clears both counts."""
        self.by_addr.pop(addr, None)
        self.by_user.pop(username, None)


def _left(entry: tuple[int, float] | None, limit: int, lock_s: float, now: float) -> float:
    if entry is None or entry[0] < limit:
        return 0.0
    return max(0.0, entry[1] + lock_s - now)


def current(request: web.Request) -> Operator:
    """The request's operator (the middleware has checked there is one)."""
    return request[OPERATOR]


def require(request: web.Request, role: str) -> Operator:
    """The request's operator if their role includes `role`; 403 otherwise."""
    op = current(request)
    if not can(op.role, role):
        raise web.HTTPForbidden(text=f"needs the {role} role", content_type="text/plain")
    return op


def _wants_page(request: web.Request) -> bool:
    return request.method in SAFE_METHODS and "text/html" in request.headers.get("Accept", "")


def middleware(store: AsyncHotlineStore, public: set[tuple[str, str]],
               clock: Callable[[], float] = time.time) -> Any:
    """Every route needs a live session except the (method, path) pairs in `public`."""

    @web.middleware
    async def check(request: web.Request,
                    handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                    ) -> web.StreamResponse:
        route = request.match_info.route.resource
        path = route.canonical if route is not None else request.path
        if (request.method, path) in public or (
                request.method == "HEAD" and ("GET", path) in public):
            return await handler(request)
        token = request.cookies.get(COOKIE, "")
        row = (await store.call(lambda s: s.session(token_hash(token), clock()))
               if token else None)
        if row is None:
            if _wants_page(request):
                raise web.HTTPSeeOther(f"/login?next={quote(request.path_qs, safe='')}")
            return web.json_response({"error": "log in first"}, status=401)
        op = Operator(row["username"], row["role"], row["csrf"])
        if request.method not in SAFE_METHODS:
            given = request.headers.get(CSRF_HEADER, "")
            if not given and request.content_type in ("application/x-www-form-urlencoded",
                                                      "multipart/form-data"):
                given = str((await request.post()).get("csrf", ""))
            if not hmac.compare_digest(given.encode(), op.csrf.encode()):
                return web.json_response(
                    {"error": "missing or wrong CSRF token (reload the page)"}, status=403)
        request[OPERATOR] = op
        return await handler(request)

    return check


async def log_in(store: AsyncHotlineStore, limiter: LoginLimiter, addr: str, username: str,
                 password: str, now: float) -> tuple[str, str] | str:
    """(token, csrf) for a good login, or the reason it failed (safe to show)."""
    wait = limiter.wait(addr, username, now)
    if wait > 0:
        logger.warning("login refused from %s: too many failures (locked %.0f s)", addr, wait)
        return f"too many failed logins: try again in {int(wait) + 1} s"
    op = await store.call(lambda s: s.operator(username))
    stored = op["password_hash"] if op and op["disabled_at"] is None else _DUMMY_HASH
    if not check_password(password, stored) or op is None or op["disabled_at"] is not None:
        limiter.failed(addr, username, now)
        logger.warning("failed login for %r from %s", username, addr)
        return "wrong username or password"
    limiter.succeeded(addr, username)
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
    await store.call(lambda s: s.open_session(token_hash(token), username, csrf, now,
                                              now + SESSION_S))
    logger.info("operator %s logged in from %s", username, addr)
    return token, csrf


def set_session_cookie(request: web.Request, resp: web.StreamResponse, token: str) -> None:
    """The session cookie: HttpOnly, SameSite=Strict, Secure when served over https."""
    resp.set_cookie(COOKIE, token, max_age=int(SESSION_S), httponly=True, samesite="Strict",
                    secure=request.secure, path="/")


async def ensure_first_admin(store: AsyncHotlineStore, now: float) -> str | None:
    """With no operators at all, create `admin` and return its password (show it once)."""
    if await store.call(lambda s: s.count_operators()):
        return None
    password = new_password()
    hashed = hash_password(password)
    await store.call(lambda s: s.add_operator("admin", "admin", hashed, now))
    return password
