"""The maintenance queue's daily digest: technical troubles, one message a day, not a page each.

A low battery, an open case, a weak radio link or a contact sensor stuck in one state does not
need a person tonight; it needs a technician this week. Those findings (severity 4) are kept
as maintenance items (opened once, counted while they repeat, closed when the condition ends)
and once a day, at the configured local hour, the open items and those fixed since the last
digest travel as one technical alert (`maintenance_digest`, Contact ID 380 sensor trouble,
severity 4) to the centre's technical queue. A device gone silent is still sent at once as well
(Contact ID 381): a dead smoke detector is a hole in the home's cover, not a chore.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from detectors.finding import Finding

DIGEST_EVENT = "maintenance_digest"
DIGEST_CODE = 380
# Technical events kept for the digest instead of being sent one by one.
DIGEST_ONLY = frozenset({"low_battery", "tamper", "weak_link", "stuck_contact",
                         "self_test_failed"})
# Technical events sent at once *and* listed in the digest while they last.
ALSO_AT_ONCE = frozenset({"offline"})

# What each item means, for the technician reading the digest.
ITEM_TEXT: dict[str, tuple[str, str]] = {
    "low_battery": ("电量低，请更换电池", "battery low: replace it"),
    "tamper": ("外壳被打开或设备被拆下", "case open or device removed"),
    "weak_link": ("信号弱，可能丢失报警", "weak radio link: alarms may be lost"),
    "stuck_contact": ("门磁长时间无变化，请检查安装", "contact stuck in one state: check it"),
    "offline": ("设备离线", "device offline"),
    "self_test_failed": ("每周按钮测试没有收到信号", "sent nothing in the weekly button test"),
}


@dataclass(frozen=True, slots=True)
class Item:
    """One maintenance item: a device's trouble, from when, how often, and whether it ended."""

    device: str
    event: str
    room: str | None
    first_at: float
    last_at: float
    count: int
    evidence: dict[str, Any]
    cleared_at: float | None = None


def is_technical(f: Finding) -> bool:
    """Whether a finding belongs in the maintenance queue."""
    return f.severity == 4 and f.device is not None and f.event in DIGEST_ONLY | ALSO_AT_ONCE


def digest_day(now: float, tz: ZoneInfo, hour: int) -> str | None:
    """The local date whose digest is due at `now` (None before the hour)."""
    local = datetime.fromtimestamp(now, tz)
    return local.date().isoformat() if local.hour >= hour else None


def digest(home: str, open_items: list[Item], cleared: list[Item], now: float,
           tz: ZoneInfo) -> Finding | None:
    """The day's digest as one technical finding; None when there is nothing to say."""
    if not open_items and not cleared:
        return None

    def row(i: Item) -> dict[str, Any]:
        zh, en = ITEM_TEXT.get(i.event, (i.event, i.event))
        return {"device": i.device, "room": i.room, "event": i.event, "zh": zh, "en": en,
                "since": datetime.fromtimestamp(i.first_at, tz).isoformat(timespec="minutes"),
                "count": i.count, "detail": i.evidence}

    items = sorted(open_items, key=lambda i: (i.event != "offline", i.first_at))
    return Finding(
        detector="maintenance", home=home, code=DIGEST_CODE, event=DIGEST_EVENT, severity=4,
        at=now, device=None, room=None,
        evidence={"open": [row(i) for i in items],
                  "fixed": [row(i) | {"fixed_at": datetime.fromtimestamp(
                      i.cleared_at or now, tz).isoformat(timespec="minutes")} for i in cleared],
                  "summary": f"{len(items)} open, {len(cleared)} fixed since the last digest"})
