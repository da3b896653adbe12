"""`anxin demo` as a user runs it: the smoke alarm reaches the hotline page; Ctrl-C is clean."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

from tests._hotline import add_operator, login_sync
from tests._mosquitto import free_port


def test_demo_raises_smoke_alarm_at_hotline_and_stops_cleanly(tmp_path):
    broker, hotline = free_port(), free_port()
    add_operator(tmp_path / "hotline.db")
    opener = None
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "demo", "--data-dir", str(tmp_path),
         "--broker-port", str(broker), "--hotline-port", str(hotline), "--speed", "4"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"})
    alerts: list = []
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not alerts:
            assert proc.poll() is None, proc.communicate()
            try:
                opener = opener or login_sync(f"http://127.0.0.1:{hotline}")
                with opener.open(f"http://127.0.0.1:{hotline}/api/alerts", timeout=2) as r:
                    alerts = [a for a in json.load(r) if a["event"] == "smoke"]
            except OSError:
                pass
            time.sleep(0.25)
        assert alerts, "no smoke alarm reached the hotline within a minute"
        assert alerts[0]["code"] == 111 and alerts[0]["severity"] == 1
        with opener.open(f"http://127.0.0.1:{hotline}/", timeout=2) as r:
            assert "接警" in r.read().decode()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "Traceback" not in err and "Traceback" not in out
    assert f"http://127.0.0.1:{hotline}/" in out
    assert "login 登录: demo / " in out  # the demo's own login, printed in its banner
