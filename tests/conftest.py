"""Shared fixtures and guards: a real Mosquitto, no network beyond loopback, no stray tasks."""

from __future__ import annotations

import asyncio
import inspect
import ipaddress
import socket
import threading

import pytest

from tests._mosquitto import mosquitto_binary, running_mosquitto

_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex


def _check_address(address: object) -> None:
    if isinstance(address, tuple) and address:
        host = address[0]
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            if host != "localhost":
                raise RuntimeError(f"test tried to reach {host!r}: tests talk only to "
                                   "127.0.0.1") from None
            return
        if not ip.is_loopback:
            raise RuntimeError(f"test tried to reach {host}: tests talk only to 127.0.0.1")


@pytest.fixture(autouse=True)
def _loopback_only(monkeypatch):
    """Refuse any connection that is not to the loopback interface."""

    def connect(self, address):
        _check_address(address)
        return _real_connect(self, address)

    def connect_ex(self, address):
        _check_address(address)
        return _real_connect_ex(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)


@pytest.fixture(autouse=True)
def _no_store_left_open():
    """Every gateway store thread is closed by the end of the test."""
    yield
    left = [t.name for t in threading.enumerate() if t.name.startswith("anxin-store")]
    assert not left, f"store threads still running (a store was not closed): {left}"


@pytest.fixture
async def _no_task_left():
    yield
    current = asyncio.current_task()
    left = [t for t in asyncio.all_tasks() if t is not current and not t.done()]
    names = [t.get_name() for t in left]
    for t in left:
        t.cancel()
    assert not left, f"tasks left running after the test: {names}"


def pytest_collection_modifyitems(items):
    """Async tests get the stray-task guard."""
    for item in items:
        fn = getattr(item, "function", None)
        if fn is not None and inspect.iscoroutinefunction(fn):
            item.fixturenames.insert(0, "_no_task_left")


@pytest.fixture(scope="session")
def mosquitto():
    """A real Mosquitto on a random 127.0.0.1 port for the whole session: (host, port)."""
    if mosquitto_binary() is None:
        pytest.fail("mosquitto is not installed: run `make test` (it installs it with apt) "
                    "or apt-get install mosquitto")
    with running_mosquitto() as addr:
        yield addr
