"""systemd's notify protocol: READY, STATUS and the watchdog heartbeat (no dependency).

systemd sets `NOTIFY_SOCKET` (a path, or `@name` for the abstract namespace) for a
`Type=notify` unit, and `WATCHDOG_USEC` when `WatchdogSec=` is set. Outside systemd both are
unset and every call here does nothing.
"""

from __future__ import annotations

import os
import socket


def notify(message: str, env: dict[str, str] | None = None) -> bool:
    """Send `message` (e.g. "READY=1\\nSTATUS=…") to systemd; False if not under systemd or
    the socket is gone (never raises: a gateway must not fall over its supervisor)."""
    path = (env if env is not None else os.environ).get("NOTIFY_SOCKET")
    if not path:
        return False
    address = "\0" + path[1:] if path.startswith("@") else path
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            s.connect(address)
            s.sendall(message.encode())
        return True
    except OSError:
        return False


def watchdog_interval(env: dict[str, str] | None = None) -> float | None:
    """How often to send WATCHDOG=1 (half systemd's timeout), or None without a watchdog."""
    usec = (env if env is not None else os.environ).get("WATCHDOG_USEC")
    try:
        return int(usec) / 2e6 if usec else None
    except ValueError:
        return None
