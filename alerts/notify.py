"""`anxin.notify/1`: a text or voice call to a person, through an HTTP SMS/voice gateway.

Family contacts and community workers (网格员) are reached by phone. anxin POSTs one JSON
request per message to the gateway's API, signed like an alert (alerts/wire.py), and the SMS
or voice provider's adapter sends it:

    {"schema": "anxin.notify/1", "to": "+8613800000000", "channel": "sms" | "voice",
     "text": "【安心】…", "alert_id": "01J…", "home_id": "home-001", "event": "sos",
     "severity": 1, "test": false, "tier": 2, "reminder": 0}

Any 2xx means the provider has taken the message. The text is plain Mandarin, short enough
for one SMS where possible, and carries what a relative needs to act: who, what, where, when.
"""

from __future__ import annotations

import json
from typing import Any

SCHEMA = "anxin.notify/1"
CHANNELS = ("sms", "voice")


def text(alert: dict[str, Any], address: str = "") -> str:
    """The message for a person, from an `anxin.alert/1` body."""
    names = "、".join(r.get("name", "") for r in alert.get("residents", []) if r.get("name"))
    who = names or "老人"
    title = alert.get("title", {}).get("zh") or alert.get("event", "报警")
    where = f"（{alert['room']}）" if alert.get("room") else ""
    when = str(alert.get("raised_at", ""))[11:16]  # HH:MM of the ISO time
    place = f"，地址：{address}" if address else ""
    reminder = (alert.get("escalation") or {}).get("reminder", 0)
    prefix = "【安心·测试】" if alert.get("test") else "【安心】"
    again = "（再次提醒，尚无人接手）" if reminder else ""
    return (f"{prefix}{who}家{when}发生{title}{where}{again}。请立即打电话确认平安，"
            f"联系不上请上门查看或拨打服务热线{place}。")


def encode(alert: dict[str, Any], *, to: str, channel: str, address: str = "") -> bytes:
    """The request body for one person, from an `anxin.alert/1` body."""
    if channel not in CHANNELS:
        raise ValueError(f"channel must be one of {', '.join(CHANNELS)}, got {channel!r}")
    esc = alert.get("escalation") or {}
    body = {"schema": SCHEMA, "to": to, "channel": channel, "text": text(alert, address),
            "alert_id": alert["alert_id"], "home_id": alert["home_id"],
            "event": alert["event"], "severity": alert["severity"], "test": alert["test"],
            "tier": esc.get("tier", 0), "reminder": esc.get("reminder", 0)}
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
