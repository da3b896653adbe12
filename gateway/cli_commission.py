"""`anxin devices add|list` and `anxin commission walk-test|test-alarm|report`: the technician's
commissioning steps over SSH, doing what the technician pages do (gateway/commissioning.py).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from gateway import commissioning as cm
from gateway.config import Config, ConfigError, load
from gateway.store import Store

EXIT_CONFIG = 2


def _load(path: str) -> Config | None:
    try:
        return load(path)
    except ConfigError as e:
        print(e, file=sys.stderr)
        return None


@contextmanager
def _store(cfg: Config) -> Iterator[Store]:
    store = Store(cfg.data_path() / "anxin.db")
    try:
        yield store
    finally:
        store.close()


def _clock(cfg: Config, ts: float | None) -> str:
    return "—" if ts is None else datetime.fromtimestamp(
        ts, ZoneInfo(cfg.gateway.timezone)).strftime("%H:%M:%S")


# --- devices add | list ---------------------------------------------------------------------


def cmd_devices_list(args: argparse.Namespace) -> int:
    """The commissioned devices, with battery, link quality and when each was last heard."""
    cfg = _load(args.config)
    if cfg is None:
        return EXIT_CONFIG
    with _store(cfg) as store:
        health = store.device_health()
        last = store.last_heard()
    rows = []
    for (dev, model), entry in zip(cm.devices_of(cfg), cfg.devices, strict=True):
        rows.append({"id": dev.id, "model": model.family, "vendor": model.vendor,
                     "mapped_from_exposes": entry.exposes is not None
                     and model.description == cm.MAPPED_VENDOR_NOTE,
                     "room": dev.room, "name": dev.name, "resident": entry.resident,
                     "topic": dev.topic, "battery": health.get((dev.id, "battery")),
                     "link_quality": health.get((dev.id, "link_quality")),
                     "last_heard": last.get(dev.id)})
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=2))
        return 0
    print(f"{'ID':<20} {'MODEL':<18} {'ROOM':<14} {'BATT':>5} {'LQI':>4}  LAST HEARD  NAME")
    for r in rows:
        model = r["model"] + ("*" if r["mapped_from_exposes"] else "")
        batt = "—" if r["battery"] is None else f"{r['battery']:g}%"
        lqi = "—" if r["link_quality"] is None else f"{r['link_quality']:g}"
        print(f"{r['id']:<20} {model:<18} {r['room'] or '—':<14} {batt:>5} {lqi:>4}  "
              f"{_clock(cfg, r['last_heard']):<10}  {r['name'] or ''}")
    if any(r["mapped_from_exposes"] for r in rows):
        print("* not in the catalogue: mapped from its Zigbee2MQTT exposes")
    return 0


def cmd_devices_add(args: argparse.Namespace) -> int:
    """Add (or update) a device in the config file; the running gateway picks it up."""
    from gateway.config_edit import assign_device  # noqa: PLC0415

    cfg = _load(args.config)
    if cfg is None:
        return EXIT_CONFIG
    fields: dict[str, Any] = {k: getattr(args, k) for k in ("room", "name", "resident", "zone")
                              if getattr(args, k) is not None}
    if args.from_z2m:
        found = _find_paired(cfg, args.from_z2m, args.broker, args.wait)
        if isinstance(found, str):
            print(found, file=sys.stderr)
            return 1
        fields.update(found)
    else:
        for key in ("topic", "model"):
            if getattr(args, key) is not None:
                fields[key] = getattr(args, key)
        fields["source"] = args.source
    try:
        new, backup = assign_device(args.config, args.id, fields)
    except ConfigError as e:
        print(f"not written; the config would not load:\n{e}", file=sys.stderr)
        return EXIT_CONFIG
    entry = next(d for d in new.devices if d.id == args.id)
    model = entry.catalogue_model()
    assert model is not None
    how = ("mapped from its exposes as " + ", ".join(model.classes)
           if model.description == cm.MAPPED_VENDOR_NOTE else model.description)
    print(f"✓ {args.id}: {entry.model} ({how}) in {entry.room or 'no room'} → {args.config}")
    print(f"  previous config kept as {backup}")
    print("  a running gateway watches it within seconds")
    return 0


def _find_paired(cfg: Config, friendly_name: str, broker: str | None,
                 wait: float) -> dict[str, Any] | str:
    from gateway.cli import _read_retained  # noqa: PLC0415
    from gateway.discover import DiscoveryError, parse_bridge_devices, pick  # noqa: PLC0415

    base = cfg.mqtt.zigbee2mqtt_base_topic
    try:
        payload = asyncio.run(_read_retained(cfg, broker or cfg.mqtt.url,
                                             f"{base}/bridge/devices", wait))
    except OSError as e:
        return f"cannot reach or log in to the broker: {e}"
    if payload is None:
        return f"no {base}/bridge/devices on the broker within {wait:g} s"
    try:
        return pick(parse_bridge_devices(payload, base, {}), friendly_name).device_fields(base)
    except DiscoveryError as e:
        return str(e)


# --- commission walk-test | test-alarm | report ------------------------------------------------


def _print_progress(cfg: Config, found: list[Any]) -> None:
    for r in found:
        mark = "✓" if r.passed else "·"
        batt = "—" if r.battery is None else f"{r.battery:g}%" + (" LOW" if r.battery_low
                                                                  else "")
        lqi = "—" if r.link_quality is None else f"{r.link_quality:g}" + (
            " weak" if r.weak_link else "")
        if r.availability in ("never", "offline"):
            lqi += " (Z2M availability: " + ("not enabled?" if r.availability == "never"
                                              else "offline") + ")"
        what = (f"{r.trigger} at {_clock(cfg, r.passed_at)}" if r.passed
                else f"waiting: {r.todo_zh} ({r.todo_en})")
        print(f"  {mark} {r.device:<20} {r.room or '—':<12} batt {batt:<9} LQI {lqi:<8} {what}")


def cmd_walk_test(args: argparse.Namespace) -> int:
    """Walk test: start, watch devices tick off, finish (exit 1 if any is missing)."""
    cfg = _load(args.config)
    if cfg is None:
        return EXIT_CONFIG
    with _store(cfg) as store:
        now = time.time()
        if args.action == "stop":
            try:
                rec = cm.finish_walk_test(store, cfg, now)
            except cm.CommissioningError as e:
                print(e, file=sys.stderr)
                return 1
            found = cm.walk_test_results(store, cfg, rec)
            _print_progress(cfg, found)
            missing = [r.device for r in found if not r.passed]
            print("walk test finished: " + (f"{len(missing)} missing: {', '.join(missing)}"
                                            if missing else "every device passed"))
            return 1 if missing else 0
        if args.action == "start":
            try:
                rec = cm.start_walk_test(store, args.technician or "", now, args.minutes)
            except cm.CommissioningError as e:
                print(e, file=sys.stderr)
                return 1
            print(f"walk test {rec['id']} by {rec['technician']}: test mode on, every alert is "
                  "a test. Trigger each device:")
        rec = cm.active_walk_test(store)
        if rec is None:
            print("no walk test is under way (anxin commission walk-test start "
                  "--technician NAME)", file=sys.stderr)
            return 1
        deadline = time.monotonic() + args.watch
        shown: set[str] = set()
        while True:
            found = cm.walk_test_results(store, cfg, rec)
            passed = {r.device for r in found if r.passed}
            if passed != shown or not shown:
                _print_progress(cfg, found)
                print(f"  {len(passed)}/{len(found)} passed", flush=True)
                shown = passed or {""}
            if len(passed) == len(found) or time.monotonic() >= deadline:
                break
            time.sleep(1.0)
    return 0


def cmd_test_alarm(args: argparse.Namespace) -> int:
    """Send a test alarm to the hotline through the running gateway; wait for its answer."""
    cfg = _load(args.config)
    if cfg is None:
        return EXIT_CONFIG
    with _store(cfg) as store:
        rid = cm.request_test_alarm(store, args.technician or "", time.time())
        print(f"test alarm {rid} requested; the running gateway sends it within 2 s …",
              flush=True)
        deadline = time.monotonic() + args.wait
        state = None
        while time.monotonic() < deadline:
            st = cm.test_alarm_status(store, rid)
            if st["state"] != state:
                state = st["state"]
                print(f"  {state}" + (f" (alert {st['alert_id']})" if st["alert_id"] else "")
                      + "".join(f"; {t} acknowledged at {_clock(cfg, d['acked_at'])}"
                                for t, d in st["delivered"].items() if d["acked_at"])
                      + (f"; accepted by {st['accepted_by']}" if st["accepted_by"] else ""),
                      flush=True)
            if state == "accepted" or (state == "delivered" and not args.until_accepted):
                return 0
            time.sleep(0.5)
    print(f"no acknowledgement from the hotline within {args.wait:g} s (state: {state}); is "
          "the gateway running and the hotline reachable? (anxin status)", file=sys.stderr)
    return 1


def cmd_report(args: argparse.Namespace) -> int:
    """Make the commissioning report; keep it on the gateway; print or write it."""
    cfg = _load(args.config)
    if cfg is None:
        return EXIT_CONFIG
    with _store(cfg) as store:
        report = cm.build_report(store, cfg, args.technician, time.time())
    j, h = cm.save_report_files(report, cfg.data_path() / "reports")
    if args.format == "json":
        print(json.dumps(report, ensure_ascii=False, indent=2))
    else:
        if args.out:
            Path(args.out).write_text(cm.render_html(report), encoding="utf-8")
        print(f"report {report['id']}: {'PASSED' if report['passed'] else 'NOT PASSED'}; "
              f"kept as {h} and {j}" + (f"; written to {args.out}" if args.out else ""))
    return 0 if report["passed"] else 1


# --- self-test start | status ----------------------------------------------------------------


def cmd_self_test(args: argparse.Namespace) -> int:
    """Start the weekly button self-test now, or show each button's record."""
    cfg = _load(args.config)
    if cfg is None:
        return EXIT_CONFIG
    from gateway.runtime import SELF_TEST_REQUEST_SETTING  # noqa: PLC0415

    with _store(cfg) as store:
        now = time.time()
        if args.action == "start":
            if not cfg.self_test_buttons():
                print("no buttons to test: the self-test needs [home] speaker_topic, "
                      "[self_test] enabled and an SOS button", file=sys.stderr)
                return 1
            store.set_setting(SELF_TEST_REQUEST_SETTING, "1", now)
            print("self-test requested: the running gateway asks the resident within 2 s to "
                  f"press {', '.join(cfg.self_test_buttons())}; results: anxin self-test status")
            return 0
        rows = cm.button_report(store, cfg, now)
    failed = 1 if any(r["last_self_test_failed"] for r in rows) else 0
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=2))
        return failed
    s = cfg.self_test
    print(f"weekly self-test: {'on' if cfg.self_test_buttons() else 'OFF'} "
          f"(weekday {s.weekday}, {s.hour}:00, {s.window_min:g} min); last "
          f"{cm.BUTTON_STATS_DAYS} days:")
    print(f"{'BUTTON':<20} {'ROOM':<12} {'PRESSES':>7} {'ALERTS':>6} {'FALSE':>5}  "
          "LAST PRESS  SELF-TESTS (newest first)")
    for r in rows:
        tests = " ".join("✓" if t["passed"] else "✗" for t in r["self_tests"][:8]) or "—"
        last = "—" if r["last_press"] is None else datetime.fromtimestamp(
            r["last_press"], ZoneInfo(cfg.gateway.timezone)).strftime("%m-%d %H:%M")
        print(f"{r['id']:<20} {r['room'] or '—':<12} {r['presses']:>7} {r['alerts']:>6} "
              f"{r['false_alarms']:>5}  {last:<11} {tests}")
    return failed


def register(devices: argparse._SubParsersAction, sub: argparse._SubParsersAction) -> None:
    """Add `devices add|list` to the devices parser and the `commission` command."""
    c = devices.add_parser("list", help="the commissioned devices, battery, link, last heard")
    c.add_argument("--config", required=True)
    c.add_argument("--json", action="store_true")
    c.set_defaults(fn=cmd_devices_list)
    c = devices.add_parser("add", help="add or update a device in the config (backed up)")
    c.add_argument("id", help="device id, e.g. door-entrance")
    c.add_argument("--config", required=True)
    c.add_argument("--from-z2m", metavar="FRIENDLY_NAME",
                   help="take topic and model from Zigbee2MQTT's bridge/devices")
    c.add_argument("--topic")
    c.add_argument("--model")
    c.add_argument("--source", default="zigbee2mqtt", choices=("zigbee2mqtt", "anxin"))
    c.add_argument("--room")
    c.add_argument("--name")
    c.add_argument("--resident")
    c.add_argument("--zone", type=int)
    c.add_argument("--broker", help="broker URL (default: the config's)")
    c.add_argument("--wait", type=float, default=5.0)
    c.set_defaults(fn=cmd_devices_add)

    s = sub.add_parser("commission", help="walk test, end-to-end test alarm, report")
    csub = s.add_subparsers(dest="commission_command", required=True)
    c = csub.add_parser("walk-test", help="trigger each device; watch them tick off")
    c.add_argument("action", choices=("start", "watch", "stop"))
    c.add_argument("--config", required=True)
    c.add_argument("--technician", help="your name, for the report (start)")
    c.add_argument("--minutes", type=float, default=cm.DEFAULT_WALK_MINUTES,
                   help="test mode lasts this long at most")
    c.add_argument("--watch", type=float, default=600.0,
                   help="seconds to keep showing progress (0: show once)")
    c.set_defaults(fn=cmd_walk_test)
    c = csub.add_parser("test-alarm", help="a test alarm to the hotline, and its answer")
    c.add_argument("--config", required=True)
    c.add_argument("--technician")
    c.add_argument("--wait", type=float, default=60.0)
    c.add_argument("--until-accepted", action="store_true",
                   help="wait for an operator to accept it, not only for delivery")
    c.set_defaults(fn=cmd_test_alarm)
    c = csub.add_parser("report", help="the commissioning report (kept on the gateway)")
    c.add_argument("--config", required=True)
    c.add_argument("--technician", required=True)
    c.add_argument("--format", choices=("text", "json"), default="text")
    c.add_argument("--out", help="also write the HTML report here")
    c.set_defaults(fn=cmd_report)

    s = sub.add_parser("self-test", help="the weekly alarm-button test: start now, status")
    s.add_argument("action", choices=("start", "status"))
    s.add_argument("--config", required=True)
    s.add_argument("--json", action="store_true")
    s.set_defaults(fn=cmd_self_test)
