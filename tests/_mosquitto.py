"""A real Mosquitto broker on a random 127.0.0.1 port, for integration tests."""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

# The broker config anxin ships for a Pi (systemd/mosquitto-anxin.conf) sets the same two
# things that matter here: no Nagle delay, and a queue deep enough for a QoS-1 burst.
TUNING = """\
set_tcp_nodelay true
max_queued_messages 100000
max_inflight_messages 100
"""
CONF = """\
listener {port} 127.0.0.1
allow_anonymous true
{listener_options}
{persistence}
{tuning}
log_dest stderr
log_type error
log_type warning
"""


def mosquitto_binary() -> str | None:
    """Path to mosquitto, or None."""
    return shutil.which("mosquitto") or next(
        (p for p in ("/usr/sbin/mosquitto", "/usr/bin/mosquitto") if Path(p).exists()), None)


_HANDED_OUT: set[int] = set()


def free_port() -> int:
    """A TCP port that was free a moment ago on 127.0.0.1, below the kernel's ephemeral range
    (an outgoing connection cannot take it before the server binds) and never the same one
    twice in a test run."""
    rng = random.Random()
    for _ in range(200):
        port = rng.randrange(20000, 32000)
        if port in _HANDED_OUT:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _HANDED_OUT.add(port)
        return port
    with socket.socket() as s:  # everything busy: fall back on the kernel's choice
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_listening(port: int, proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"mosquitto exited with {proc.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.02)
    raise RuntimeError(f"mosquitto did not listen on {port} within {timeout} s")


@contextlib.contextmanager
def running_mosquitto(port: int | None = None, persist_dir: Path | None = None, *,
                      tuned: bool = True,
                      listener_options: str = "") -> Iterator[tuple[str, int]]:
    """Start mosquitto; yield (host, port); stop it (SIGTERM, so it saves its state).

    With `persist_dir`, sessions and queued messages are kept there, as on a Pi, and a
    broker started again with the same port and directory carries on where it stopped.
    `tuned=False` runs Mosquitto's defaults instead of anxin's settings (for comparison).
    `listener_options` go under the listener (TLS files, require_certificate, or
    `allow_anonymous false` with a password and an ACL file, which win over the defaults).
    """
    binary = mosquitto_binary()
    if binary is None:
        raise RuntimeError("mosquitto is not installed (apt-get install mosquitto)")
    port = port or free_port()
    with tempfile.TemporaryDirectory() as tmp:
        conf = Path(tmp) / "mosquitto.conf"
        persistence = "persistence false"
        if persist_dir is not None:
            persistence = f"persistence true\npersistence_location {persist_dir}/"
        if (persist_dir is not None or listener_options) and os.geteuid() == 0:
            # Started as root, mosquitto drops to its own user, which cannot enter a test's
            # private temporary directory. (A Pi install gives it its own.)
            persistence += "\nuser root"
        conf.write_text(CONF.format(port=port, persistence=persistence,
                                    tuning=TUNING if tuned else "",
                                    listener_options=listener_options))
        proc = subprocess.Popen([binary, "-c", str(conf)], stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE)
        try:
            _wait_listening(port, proc)
            yield "127.0.0.1", port
        finally:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if proc.stderr:
                proc.stderr.close()
