"""The maintenance digest: when it is due, what it says, and that silence says nothing."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from alerts.maintenance import DIGEST_EVENT, Item, digest, digest_day, is_technical
from detectors.finding import Finding

TZ = ZoneInfo("Asia/Shanghai")


def at(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=TZ).timestamp()


def item(device: str, event: str, first: str, cleared: str | None = None) -> Item:
    return Item(device, event, "kitchen", at(first), at(first), 3, {"battery": 9},
                at(cleared) if cleared else None)


def test_the_digest_is_due_from_the_local_hour_on():
    assert digest_day(at("2026-11-23T08:59:59"), TZ, 9) is None
    assert digest_day(at("2026-11-23T09:00:00"), TZ, 9) == "2026-11-23"
    assert digest_day(at("2026-11-23T23:30:00"), TZ, 9) == "2026-11-23"
    # 01:00 in Shanghai is still the previous day in UTC: the local date counts
    assert digest_day(at("2026-11-24T01:00:00"), TZ, 0) == "2026-11-24"


def test_nothing_open_and_nothing_fixed_sends_nothing():
    assert digest("h1", [], [], at("2026-11-23T09:00:00"), TZ) is None


def test_the_digest_lists_offline_first_then_oldest_and_what_was_fixed():
    now = at("2026-11-23T09:00:00")
    f = digest("h1", [item("smoke", "low_battery", "2026-11-20T10:00:00"),
                      item("pir", "offline", "2026-11-22T10:00:00")],
               [item("door", "tamper", "2026-11-21T10:00:00", "2026-11-22T12:00:00")], now, TZ)
    assert f is not None
    assert (f.event, f.code, f.severity, f.device, f.at) == (DIGEST_EVENT, 380, 4, None, now)
    assert [r["device"] for r in f.evidence["open"]] == ["pir", "smoke"]
    smoke = f.evidence["open"][1]
    assert smoke["since"] == "2026-11-20T10:00+08:00" and smoke["count"] == 3
    assert smoke["zh"] == "电量低，请更换电池" and smoke["detail"] == {"battery": 9}
    (fixed,) = f.evidence["fixed"]
    assert fixed["device"] == "door" and fixed["fixed_at"] == "2026-11-22T12:00+08:00"
    assert f.evidence["summary"] == "2 open, 1 fixed since the last digest"


def test_only_device_troubles_of_severity_4_are_technical():
    def f(event: str, severity: int = 4, device: str | None = "d") -> Finding:
        return Finding("x", "h1", 384, event, severity, 0.0, device=device)

    assert is_technical(f("low_battery")) and is_technical(f("offline"))
    assert is_technical(f("weak_link")) and is_technical(f("stuck_contact"))
    assert not is_technical(f("smoke", 1))
    assert not is_technical(f("low_battery", device=None))
    assert not is_technical(f("maintenance_digest", device=None))
