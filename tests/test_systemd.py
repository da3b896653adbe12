"""Running under systemd: the unit's hardening and syntax, and the notify protocol (READY,
then the watchdog heartbeat only while every task of the gateway is alive)."""

from __future__ import annotations

import asyncio
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from gateway import sdnotify
from tests._mosquitto import free_port
from tests.test_e2e_gateway import gateway, write_config

UNIT = Path(__file__).resolve().parents[1] / "systemd" / "anxin.service"
ANALYZE = shutil.which("systemd-analyze")


def need_analyze() -> str:
    if ANALYZE is None:
        pytest.fail("systemd-analyze is not installed: run `make test` (apt systemd)")
    return ANALYZE


def test_the_unit_is_hardened_to_an_exposure_of_two_or_less(tmp_path):
    unit = tmp_path / "anxin.service"
    unit.write_text(UNIT.read_text(encoding="utf-8"), encoding="utf-8")
    out = subprocess.run([need_analyze(), "security", "--offline=true", str(unit)],
                         check=False, capture_output=True, text=True, timeout=60)
    level = re.search(r"Overall exposure level for anxin\.service: ([0-9.]+)", out.stdout)
    assert level, out.stdout + out.stderr
    assert float(level.group(1)) <= 2.0, out.stdout


def test_the_unit_verifies_clean(tmp_path):
    unit = tmp_path / "anxin.service"
    anxin = Path(sys.executable).with_name("anxin")
    unit.write_text(UNIT.read_text(encoding="utf-8").replace(
        "/opt/anxin/venv/bin/anxin", str(anxin)), encoding="utf-8")
    out = subprocess.run([need_analyze(), "verify", str(unit)], check=False,
                         capture_output=True, text=True, timeout=60)
    problems = [line for line in (out.stdout + out.stderr).splitlines()
                if "anxin.service" in line]
    assert out.returncode == 0 and problems == [], out.stdout + out.stderr


def test_notify_speaks_the_protocol_and_is_silent_outside_systemd(tmp_path):
    path = tmp_path / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.bind(str(path))
        assert sdnotify.notify("READY=1", {"NOTIFY_SOCKET": str(path)})
        assert s.recv(100) == b"READY=1"
    assert not sdnotify.notify("READY=1", {})
    assert not sdnotify.notify("READY=1", {"NOTIFY_SOCKET": str(tmp_path / "gone")})
    assert sdnotify.watchdog_interval({"WATCHDOG_USEC": "30000000"}) == 15.0
    assert sdnotify.watchdog_interval({}) is None
    assert sdnotify.watchdog_interval({"WATCHDOG_USEC": "x"}) is None


@pytest.mark.mosquitto
async def test_ready_then_a_heartbeat_only_while_every_task_lives(tmp_path, mosquitto,
                                                                  monkeypatch):
    _, port = mosquitto
    path = tmp_path / "notify"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.setblocking(False)
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))
    monkeypatch.setenv("WATCHDOG_USEC", "1000000")  # a heartbeat every 0.5 s (a tick's worth)

    async def messages(seconds: float) -> list[bytes]:
        got, loop = [], asyncio.get_running_loop()
        end = loop.time() + seconds
        while loop.time() < end:
            try:
                got.append(sock.recv(200))
            except BlockingIOError:
                await asyncio.sleep(0.05)
        return got

    try:
        cfg = write_config(tmp_path, port, free_port(), gateway_id="gw-notify")
        async with gateway(cfg) as gw:
            got = await messages(3.5)
            assert got[0].startswith(b"READY=1\nSTATUS=watching ")
            assert got.count(b"WATCHDOG=1") >= 2
            # a long-running task dies: the heartbeat stops, so systemd restarts the gateway
            victim = next(t for t in gw._tasks if t.get_name() == "anxin-observations")
            victim.cancel()
            await asyncio.sleep(0.3)
            await messages(0.3)  # what was already in flight
            assert b"WATCHDOG=1" not in await messages(2.5)
    finally:
        sock.close()
