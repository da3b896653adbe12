"""HTTP helpers for tests."""

from __future__ import annotations

import asyncio
import contextlib

import aiohttp


async def wait_healthy(http: aiohttp.ClientSession, url: str, timeout: float = 4.0) -> None:
    """Wait until GET `url` answers 200 (a server task just started)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        with contextlib.suppress(aiohttp.ClientError):
            async with http.get(url) as r:
                if r.status == 200:
                    return
        if loop.time() > deadline:
            raise TimeoutError(f"{url} did not answer 200 within {timeout} s")
        await asyncio.sleep(0.02)
