"""The hotline console's login for tests: create an operator, log in as the browser does
(login form with its CSRF token, session cookie), then call the API with the session's
CSRF token."""

from __future__ import annotations

import http.cookiejar
import re
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import aiohttp

from hotline import auth
from hotline.store import HotlineStore

PASSWORD = "test-password-0123"


def add_operator(db: str | Path, username: str = "接警员", role: str = "admin",
                 password: str = PASSWORD) -> None:
    """Create an operator in the hotline's database (before or while it runs)."""
    store = HotlineStore(db)
    try:
        if store.operator(username) is None:
            store.add_operator(username, role, auth.hash_password(password), 0.0)
    finally:
        store.close()


def session() -> aiohttp.ClientSession:
    """A client session that keeps cookies from 127.0.0.1 (aiohttp refuses IP cookies
    unless told)."""
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


async def login(http: Any, base: str = "", username: str = "接警员",
                password: str = PASSWORD) -> str:
    """Log in through the form; return the session's CSRF token. `http` is an aiohttp
    ClientSession (with `base` "http://127.0.0.1:port") or a TestClient (base "")."""
    async with http.get(f"{base}/login") as r:
        form = await r.text()
    token = re.search(r'name="csrf" value="([^"]+)"', form)
    assert token, form
    async with http.post(f"{base}/login", data={
            "csrf": token.group(1), "username": username, "password": password, "next": "/"},
            allow_redirects=False) as r:
        assert r.status == 303, await r.text()
    async with http.get(f"{base}/", headers={"Accept": "text/html"}) as r:
        assert r.status == 200
        page = await r.text()
    csrf = re.search(r'<meta name="csrf" content="([^"]+)"', page)
    assert csrf, page
    return csrf.group(1)


def headers(csrf: str) -> dict[str, str]:
    """What a state-changing API call carries."""
    return {auth.CSRF_HEADER: csrf}


def login_sync(base: str, username: str = "接警员", password: str = PASSWORD
               ) -> urllib.request.OpenerDirector:
    """The same login with urllib, for tests that drive a subprocess synchronously."""
    opener = urllib.request.build_opener(
        urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
    with opener.open(f"{base}/login", timeout=5) as r:
        token = re.search(r'name="csrf" value="([^"]+)"', r.read().decode())
    assert token
    form = urllib.parse.urlencode({"csrf": token.group(1), "username": username,
                                   "password": password, "next": "/"}).encode()
    with opener.open(f"{base}/login", data=form, timeout=5) as r:
        assert r.status == 200 and "/login" not in r.url, r.url
    return opener
