"""Commissioning a home: walk test, end-to-end test alarm, and the report of both.

Everything goes through the gateway's store, so the CLI (a separate process, for technicians
with only SSH) and the technician pages (inside the running gateway) do exactly the same
thing, and the running gateway acts on it:

- A walk test is a record plus test/maintenance mode for its duration: every alert raised
  while it runs is a test, end to end. Progress is read from the observations the gateway
  stores (flushed every second), so the page and the CLI tick devices off as they fire.
- A test alarm is a request in the settings table; the running gateway raises it within
  `MAINTENANCE_READ_S` through the normal path (store, outbox, transports) as a test alert,
  tier 0 only, and its delivery and the hotline's acceptance are read back from the store.
- A report gathers devices, walk test, test alarm, technician and date, and is kept on the
  gateway (`commissioning` table and `<data dir>/reports/`) as JSON and HTML.
"""

from __future__ import annotations

import html
import json
import secrets
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from devices.catalogue import MAPPED_VENDOR_NOTE, Model
from devices.registry import Device
from devices.walktest import WEAK_LINK_LQI, DeviceResult, results
from gateway.config import Config
from gateway.discover import DiscoveryError, Found, parse_bridge_devices
from gateway.store import Store

WALK_TEST_SETTING = "walk_test_id"
TEST_ALARM_SETTING = "test_alarm_request"
BRIDGE_DEVICES_SETTING = "z2m_bridge_devices"  # the latest retained bridge/devices
DEFAULT_WALK_MINUTES = 30
REPORT_SCHEMA = "anxin.commissioning/1"


class CommissioningError(RuntimeError):
    """A commissioning step that cannot be done now; says why."""


def devices_of(cfg: Config) -> list[tuple[Device, Model]]:
    """The configured devices with their catalogue (or exposes-mapped) models."""
    out = []
    for dev, entry in zip(cfg.device_list(), cfg.devices, strict=True):
        model = entry.catalogue_model()
        if model is not None:
            out.append((dev, model))
    return out


# --- walk test ---------------------------------------------------------------------------------


def active_walk_test(store: Store) -> dict[str, Any] | None:
    """The walk test under way, if any."""
    rid = store.setting(WALK_TEST_SETTING)
    if not rid:
        return None
    return store.record(int(rid))


def start_walk_test(store: Store, technician: str, now: float,
                    minutes: float = DEFAULT_WALK_MINUTES) -> dict[str, Any]:
    """Begin a walk test (test mode for `minutes`); the one under way if there is one."""
    if not technician.strip():
        raise CommissioningError("the technician's name is needed for the report")
    current = active_walk_test(store)
    if current is not None:
        return current
    rid = store.add_record("walk_test", technician.strip(), now, {"minutes": minutes})
    store.set_setting(WALK_TEST_SETTING, str(rid), now)
    store.set_maintenance_until(max(store.maintenance_until(), now + minutes * 60), now)
    rec = store.record(rid)
    assert rec is not None
    return rec


def walk_test_results(store: Store, cfg: Config, record: dict[str, Any]) -> list[DeviceResult]:
    """Each device's progress in a walk test (live while it runs, final once finished)."""
    if "results" in record:  # finished: what was kept
        return [DeviceResult(**{**r, "classes": tuple(r["classes"])})
                for r in record["results"]]
    since = store.observations_since(record["started_at"])
    return results(devices_of(cfg), since, store.device_health())


def finish_walk_test(store: Store, cfg: Config, now: float) -> dict[str, Any]:
    """End the walk test under way, keep its results, and leave test mode."""
    current = active_walk_test(store)
    if current is None:
        raise CommissioningError("no walk test is under way")
    found = walk_test_results(store, cfg, current)
    data = {"minutes": current.get("minutes"), "results": [asdict(r) for r in found]}
    store.update_record(current["id"], data, ended_at=now)
    store.set_setting(WALK_TEST_SETTING, "", now)
    store.set_maintenance_until(0.0, now)
    rec = store.record(current["id"])
    assert rec is not None
    return rec


# --- end-to-end test alarm ----------------------------------------------------------------------


def request_test_alarm(store: Store, technician: str, now: float) -> int:
    """Ask the running gateway to send a test alarm to the hotline; the record's id."""
    rid = store.add_record("test_alarm", technician.strip() or None, now,
                           {"request": secrets.token_hex(8)})
    store.set_setting(TEST_ALARM_SETTING, str(rid), now)
    return rid


def test_alarm_status(store: Store, record_id: int) -> dict[str, Any]:
    """Where a test alarm is: requested, raised, delivered (hotline's ack), accepted."""
    rec = store.record(record_id)
    if rec is None:
        raise CommissioningError(f"no test alarm {record_id}")
    out: dict[str, Any] = {"id": record_id, "requested_at": rec["started_at"],
                           "technician": rec["technician"], "alert_id": rec.get("alert_id"),
                           "raised_at": rec.get("raised_at"), "delivered": {},
                           "accepted_by": None, "accepted_at": None, "state": "requested"}
    if not out["alert_id"]:
        return out
    out["state"] = "raised"
    out["delivered"] = store.delivery(out["alert_id"])
    if any(d["acked_at"] for d in out["delivered"].values()):
        out["state"] = "delivered"
    alert = store.get_alert(out["alert_id"])
    if alert is not None and alert.taken_by:
        out["accepted_by"] = alert.taken_by
        out["accepted_at"] = next((at for state, at, _ in alert.history
                                   if state in ("accepted", "resolved")), None)
        out["state"] = "accepted"
    return out


# --- alarm buttons: presses and weekly self-tests ------------------------------------------------

BUTTON_STATS_DAYS = 30


def button_report(store: Store, cfg: Config, now: float) -> list[dict[str, Any]]:
    """Each alarm button: presses, real SOS alerts and false alarms in the last 30 days, its
    recent weekly self-tests (newest first), and whether the last one failed."""
    buttons = [(d, m) for d, m in devices_of(cfg) if "sos" in m.classes]
    stats = store.button_stats([d.id for d, _ in buttons], now - BUTTON_STATS_DAYS * 86400)
    tested = set(cfg.self_test_buttons())
    out = []
    for dev, model in buttons:
        st = stats[dev.id]
        out.append({"id": dev.id, "name": dev.name, "room": dev.room, "model": model.family,
                    "in_self_test": dev.id in tested, **st,
                    "last_self_test_failed": bool(st["self_tests"])
                    and not st["self_tests"][0]["passed"]})
    return out


# --- the report ---------------------------------------------------------------------------------


def build_report(store: Store, cfg: Config, technician: str, now: float) -> dict[str, Any]:
    """The commissioning report from the latest walk test and test alarm; kept on the gateway."""
    tz = ZoneInfo(cfg.gateway.timezone)

    def when(ts: float | None) -> str | None:
        return None if ts is None else datetime.fromtimestamp(ts, tz).isoformat(
            timespec="seconds")

    walk = store.records("walk_test", limit=1)
    walk_rec = walk[0] if walk else None
    walked = {r.device: r for r in walk_test_results(store, cfg, walk_rec)} if walk_rec else {}
    health = store.device_health()
    paired = _paired(store, cfg.mqtt.zigbee2mqtt_base_topic)
    now_health = {r.device: r for r in results(devices_of(cfg), [], health)}
    alarms = store.records("test_alarm", limit=1)
    alarm = test_alarm_status(store, alarms[0]["id"]) if alarms else None
    devices = []
    for dev, model in devices_of(cfg):
        r = walked.get(dev.id)
        z = paired.get(dev.topic)
        devices.append({
            "id": dev.id, "name": dev.name, "room": dev.room, "topic": dev.topic,
            "model": model.family, "vendor": model.vendor, "classes": list(model.classes),
            "mapped_from_exposes": model.description == MAPPED_VENDOR_NOTE,
            "ieee_address": z.ieee_address if z else None,
            "firmware": z.firmware if z else None, "date_code": z.date_code if z else None,
            "power_source": z.power_source if z else None,
            "battery_pct": health.get((dev.id, "battery")),
            "battery_low": now_health[dev.id].battery_low,
            "link_quality": health.get((dev.id, "link_quality")),
            "zigbee2mqtt_availability": (str(health.get((dev.id, "availability"), "never"))
                                         if model.availability else None),
            "walk_test": None if r is None else {
                "passed": r.passed, "at": when(r.passed_at), "trigger": r.trigger},
        })
    missing = [d["id"] for d in devices if not (d["walk_test"] or {}).get("passed")]
    warnings = [w for d in devices for w in _warnings(d)]
    alarm_ok = alarm is not None and alarm["state"] in ("delivered", "accepted")
    report = {
        "schema": REPORT_SCHEMA, "created_at": when(now), "technician": technician,
        "gateway_id": cfg.gateway.id, "home_id": cfg.home.id, "address": cfg.home.address,
        "devices": devices,
        "walk_test": None if walk_rec is None else {
            "technician": walk_rec["technician"], "started_at": when(walk_rec["started_at"]),
            "ended_at": when(walk_rec["ended_at"]), "missing": missing},
        "test_alarm": None if alarm is None else {
            "state": alarm["state"], "requested_at": when(alarm["requested_at"]),
            "raised_at": when(alarm["raised_at"]), "alert_id": alarm["alert_id"],
            "delivered": {t: when(d["acked_at"]) for t, d in alarm["delivered"].items()},
            "accepted_by": alarm["accepted_by"], "accepted_at": when(alarm["accepted_at"])},
        "warnings": warnings,
        "passed": bool(devices) and not missing and alarm_ok,
    }
    rid = store.add_record("report", technician, now, {"report": report}, ended_at=now)
    report["id"] = rid
    return report


def _warnings(d: dict[str, Any]) -> list[str]:
    """What the technician should fix before leaving, though the device works."""
    out = []
    if d["battery_low"]:
        out.append(f"{d['id']}: 电量低，请更换电池 battery low: replace it before leaving")
    if d["link_quality"] is not None and d["link_quality"] < WEAK_LINK_LQI:
        out.append(f"{d['id']}: 信号弱 (LQI {d['link_quality']:g})，请移近或加装路由设备 weak "
                   "link: move it or add a mains-powered router nearer")
    if d["zigbee2mqtt_availability"] == "never":
        out.append(f"{d['id']}: 未收到 Zigbee2MQTT 在线状态，请在 Zigbee2MQTT 中开启 availability "
                   "no Zigbee2MQTT availability seen: enable `availability` in its "
                   "configuration, or this mains device going offline goes unnoticed")
    elif d["zigbee2mqtt_availability"] == "offline":
        out.append(f"{d['id']}: Zigbee2MQTT 报告离线 Zigbee2MQTT reports it offline")
    return out


def _paired(store: Store, base: str) -> dict[str, Found]:
    """What Zigbee2MQTT last said it has paired, by state topic (empty if never heard)."""
    payload = store.setting(BRIDGE_DEVICES_SETTING)
    if not payload:
        return {}
    try:
        found = parse_bridge_devices(payload.encode(), base, {})
    except DiscoveryError:
        return {}
    return {f"{base}/{f.friendly_name}": f for f in found}


def save_report_files(report: dict[str, Any], folder: Path) -> tuple[Path, Path]:
    """Write the report as JSON and HTML under `folder`; their paths."""
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    stem = f"commissioning-{report['home_id']}-{report['id']}"
    j, h = folder / f"{stem}.json", folder / f"{stem}.html"
    j.write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    h.write_text(render_html(report), encoding="utf-8")
    return j, h


def render_html(report: dict[str, Any]) -> str:
    """The report as one printable HTML page (the browser's Print makes the PDF)."""
    e = html.escape

    def cell(v: Any) -> str:
        return "—" if v is None else e(str(v))

    rows = []
    for d in report["devices"]:
        w = d["walk_test"] or {}
        ok = w.get("passed")
        mapped = (" <em>（按 exposes 映射 mapped from exposes）</em>"
                  if d["mapped_from_exposes"] else "")
        low = " ⚠ 电量低" if d["battery_low"] else ""
        walked = f"✓ {e(w.get('at') or '')}" if ok else "✗ 未测试 not triggered"
        rows.append(
            f"<tr><td>{e(d['id'])}</td><td>{cell(d['name'])}</td><td>{cell(d['room'])}</td>"
            f"<td>{e(d['vendor'])} {e(d['model'])}{mapped}</td><td>{cell(d['firmware'])}</td>"
            f"<td>{cell(d['battery_pct'])}{low}</td><td>{cell(d['link_quality'])}</td>"
            f"<td class=\"{'ok' if ok else 'bad'}\">{walked}</td>"
            f"<td>{cell(w.get('trigger'))}</td></tr>")
    alarm = report["test_alarm"]
    if alarm is None:
        alarm_html = "<p class=bad>✗ 未发送测试报警 (no test alarm sent)</p>"
    else:
        delivered = ", ".join(f"{e(t)} {cell(at)}" for t, at in alarm["delivered"].items())
        alarm_html = (
            f"<p class={'ok' if alarm['state'] in ('delivered', 'accepted') else 'bad'}>"
            f"状态 state: <b>{e(alarm['state'])}</b> · 发出 raised {cell(alarm['raised_at'])}"
            f" · 送达 delivered: {delivered or '—'} · 接警 accepted: "
            f"{cell(alarm['accepted_by'])} {cell(alarm['accepted_at'])}</p>")
    walk = report["walk_test"]
    walk_html = ("<p class=bad>✗ 未做走测 (no walk test)</p>" if walk is None else
                 f"<p>走测 walk test: {cell(walk['started_at'])} – {cell(walk['ended_at'])} · "
                 f"技术员 {cell(walk['technician'])} · 未通过 missing: "
                 f"{e(', '.join(walk['missing'])) or '无 none'}</p>")
    warn_html = ("<h2>注意事项 To fix</h2><ul>" + "".join(
        f"<li class=bad>{e(w)}</li>" for w in report.get("warnings", [])) + "</ul>"
                 if report.get("warnings") else "")
    verdict = ("<p class='verdict ok'>✓ 验收通过 PASSED</p>" if report["passed"] else
               "<p class='verdict bad'>✗ 未通过 NOT PASSED</p>")
    return f"""<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8">
<title>安装调试报告 Commissioning report · {e(report['home_id'])}</title>
<style>
body {{ font: 16px/1.5 system-ui, "Noto Sans CJK SC", sans-serif; margin: 2rem; }}
table {{ border-collapse: collapse; width: 100%; }}
td, th {{ border: 1px solid #999; padding: .3rem .5rem; text-align: left; }}
.ok {{ color: #0a6b2d; }} .bad {{ color: #b00020; }} .verdict {{ font-size: 1.5rem; }}
</style></head><body>
<h1>家庭养老床位 安装调试报告<br><small>Commissioning report</small></h1>
{verdict}
<p>家庭 home: <b>{e(report['home_id'])}</b> · 地址 address: {e(report['address'])}<br>
网关 gateway: {e(report['gateway_id'])} · 技术员 technician: {e(report['technician'])} ·
日期 date: {e(report['created_at'])} · 报告编号 report no. {report['id']}</p>
<h2>设备 Devices</h2>
<table><tr><th>编号 id</th><th>名称 name</th><th>房间 room</th><th>型号 model</th>
<th>固件 firmware</th><th>电量 battery %</th><th>信号 LQI</th><th>走测 walk test</th>
<th>触发 trigger</th></tr>
{''.join(rows)}
</table>
{warn_html}
<h2>走测 Walk test</h2>
{walk_html}
<h2>端到端测试报警 End-to-end test alarm</h2>
{alarm_html}
<p><small>{e(REPORT_SCHEMA)}</small></p>
</body></html>
"""
