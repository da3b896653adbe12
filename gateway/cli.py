"""The `anxin` command: run, check-config, sim, hotline, demo, devices, commission, self-test,
status, maintenance, quarantine, replay (CASAS logs), eval (simulated homes)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import logging
import math
import signal
import sys
import time
from collections.abc import Callable, Coroutine
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from gateway.config import Config, ConfigError, load

logger = logging.getLogger("anxin")

EXIT_CONFIG = 2
STATUS_FRESH_S = 10.0  # a gateway whose status.json is older is not running


def _setup_logging(level: str = "INFO") -> None:
    logging.basicConfig(level=getattr(logging, level, logging.INFO),
                        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
                        datefmt="%H:%M:%S", stream=sys.stderr)


def _run_async(coro: Coroutine[Any, Any, int | None]) -> int:
    """Run until done, Ctrl-C or SIGTERM; either signal stops cleanly with exit code 0."""

    async def main() -> int | None:
        task = asyncio.current_task()
        assert task is not None
        loop = asyncio.get_running_loop()
        with contextlib.suppress(NotImplementedError):  # not on Windows
            loop.add_signal_handler(signal.SIGTERM, task.cancel)
        try:
            return await coro
        except asyncio.CancelledError:
            return 0

    try:
        return asyncio.run(main()) or 0
    except KeyboardInterrupt:
        return 0


def _load_or_explain(path: str) -> Any:
    try:
        return load(path)
    except ConfigError as e:
        print(e, file=sys.stderr)
        return None


# --- commands -------------------------------------------------------------------------------

def cmd_check_config(args: argparse.Namespace) -> int:
    """Validate a config and explain every problem by key path."""
    cfg = _load_or_explain(args.config)
    if cfg is None:
        return EXIT_CONFIG
    print(f"{args.config}: OK — gateway {cfg.gateway.id}, home {cfg.home.id}, "
          f"{len(cfg.devices)} device(s), {len(cfg.hotline)} hotline target(s)")
    return 0


def _aware(text: str) -> datetime:
    """An ISO 8601 time with its UTC offset; ValueError saying what is wrong."""
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not an ISO 8601 time (e.g. 2026-03-02T08:00+08:00)"
                         ) from None
    if when.tzinfo is None:
        raise ValueError(f"{text!r} has no time zone: add its UTC offset "
                         "(e.g. 2026-03-02T08:00+08:00)")
    return when


def _clock_start(text: str) -> float:
    """argparse type of --clock-start: unix seconds."""
    try:
        return _aware(text).timestamp()
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _speed(text: str) -> float:
    """argparse type of a speed: a number > 0 (times real time)."""
    try:
        speed = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (math.isfinite(speed) and speed > 0):
        raise argparse.ArgumentTypeError(f"must be > 0 (times real time), got {text}")
    return speed


def _days(text: str) -> int:
    """argparse type of --life: a whole number of days >= 1."""
    try:
        days = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of days") from None
    if days < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1 day, got {days}")
    return days


def cmd_run(args: argparse.Namespace) -> int:
    """Run the gateway against the configured broker."""
    cfg = _load_or_explain(args.config)
    if cfg is None:
        return EXIT_CONFIG
    _setup_logging(cfg.gateway.log_level)
    from gateway.clock import Clock, ScaledClock  # noqa: PLC0415
    from gateway.runtime import Gateway  # noqa: PLC0415 (keep check-config light)

    clock: Clock | None = None
    if args.clock_start is not None or args.clock_speed is not None:
        clock = ScaledClock(time.time() if args.clock_start is None else args.clock_start,
                            1.0 if args.clock_speed is None else args.clock_speed)
        logger.warning("SIMULATED CLOCK from %s at %g x real time: for simulation only, never "
                       "in a home", datetime.fromtimestamp(clock.start, ZoneInfo(
                           cfg.gateway.timezone)).isoformat(timespec="seconds"), clock.speed)
    gw = Gateway(cfg, broker_url=args.broker, config_path=Path(args.config), clock=clock,
                 freeze_heap=True)
    return _run_async(gw.run_forever())


def cmd_sim(args: argparse.Namespace) -> int:
    """Publish a scenario's (or a walk test's) native device payloads to a broker."""
    cfg = _load_or_explain(args.config)
    if cfg is None:
        return EXIT_CONFIG
    _setup_logging("WARNING")
    if args.life is None and (args.incident or args.seed is not None or args.start):
        print("sim: --incident, --seed and --start go with --life", file=sys.stderr)
        return EXIT_CONFIG
    if args.walk_test:
        return _sim_walk_test(args, cfg)
    if args.life is not None:
        return _sim_life(args, cfg)
    from simulator.runner import describe, run  # noqa: PLC0415
    from simulator.scenarios import ScenarioError, load_scenario  # noqa: PLC0415

    try:
        scenario = load_scenario(args.scenario)
    except ScenarioError as e:
        print(f"scenario: {e}", file=sys.stderr)
        return EXIT_CONFIG
    print(describe(scenario))
    start = time.monotonic()

    def show(t: float, what: str) -> None:
        print(f"[sim {time.monotonic() - start:7.1f}s | scenario t={t:6.1f}s] {what}",
              flush=True)

    return _run_async(run(cfg.device_list(), scenario, args.broker, speed=args.speed,
                          loop_forever=args.loop, on_event=show))


def _sim_walk_test(args: argparse.Namespace, cfg: Config) -> int:
    """`anxin sim --walk-test`: trigger every configured device once, as a technician does."""
    from simulator.runner import publish_stream  # noqa: PLC0415
    from simulator.scenarios import ScenarioError  # noqa: PLC0415
    from simulator.walk import walk_test  # noqa: PLC0415

    if args.loop:
        print("sim: --loop repeats a scenario; a walk test runs once", file=sys.stderr)
        return EXIT_CONFIG
    # Models mapped from Zigbee2MQTT exposes are not in the catalogue: take each entry's own.
    devices = [(dev, entry.catalogue_model()) for dev, entry in zip(cfg.device_list(),
                                                                    cfg.devices, strict=True)]
    if not devices:
        print("walk test: the config has no [[devices]] to trigger", file=sys.stderr)
        return EXIT_CONFIG
    unknown = [dev.id for dev, model in devices if model is None]
    if unknown:
        print(f"walk test: no model for device(s) {', '.join(unknown)}", file=sys.stderr)
        return EXIT_CONFIG
    try:
        timed = walk_test([(d, m) for d, m in devices if m is not None], time.time())
    except ScenarioError as e:
        print(f"walk test: {e}", file=sys.stderr)
        return EXIT_CONFIG
    print(f"walk test: {len(devices)} device(s), each triggered once, {timed[-1].t:g} s of "
          f"walking (at --speed {args.speed:g}: {timed[-1].t / args.speed:.1f} s)")
    start = time.monotonic()

    def show(t: float, what: str) -> None:
        print(f"[sim {time.monotonic() - start:7.1f}s | walk t={t:6.1f}s] {what}", flush=True)

    return _run_async(publish_stream(timed, args.broker, speed=args.speed, on_event=show))


def _life_start(text: str | None, tz: ZoneInfo) -> float:
    """--start: a date (its midnight in the home's time zone) or an ISO 8601 time with its
    offset; by default the midnight that began today in the home."""
    if text is None:
        today = datetime.now(tz).date()
        return datetime(today.year, today.month, today.day, tzinfo=tz).timestamp()
    try:
        day = date.fromisoformat(text)
    except ValueError:
        return _aware(text).timestamp()
    return datetime(day.year, day.month, day.day, tzinfo=tz).timestamp()


def _gateway_clock(cfg: Config) -> tuple[float, float] | None:
    """What the clock of the gateway running on `cfg` reads now, and its speed, from the
    status it keeps (None: no gateway running there)."""
    try:
        st = json.loads((cfg.data_path() / "status.json").read_text(encoding="utf-8"))
        age = time.time() - float(st["updated_at"])
        speed = float(st["clock"]["speed"])
        now = float(st["clock"]["now"]) + age * speed
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return (now, speed) if age < STATUS_FRESH_S else None


def _sim_life(args: argparse.Namespace, cfg: Config) -> int:
    """`anxin sim --life DAYS`: the configured home's residents live simulated days, with
    incidents; the devices' messages are published in compressed time, each when the clock
    of the gateway running on the config (if one is) shows its time."""
    from simulator import life as simulated  # noqa: PLC0415
    from simulator.runner import publish_stream  # noqa: PLC0415

    if args.loop:
        print("sim: --loop repeats a scenario; --life runs its days once", file=sys.stderr)
        return EXIT_CONFIG
    tz = ZoneInfo(cfg.gateway.timezone)
    try:
        start = _life_start(args.start, tz)
    except ValueError as e:
        print(f"sim: --start {e}", file=sys.stderr)
        return EXIT_CONFIG
    try:
        specs = [simulated.parse_incident(text, args.life) for text in args.incident or ()]
        life = simulated.live(Path(args.config).read_text(encoding="utf-8"), start, args.life,
                              1 if args.seed is None else args.seed, specs)
    except simulated.LifeError as e:
        print(f"sim --life: {e}", file=sys.stderr)
        return EXIT_CONFIG
    print("\n".join(simulated.summary(life, tz)))
    origin = start
    running = _gateway_clock(cfg)
    if running is None:
        clock_start = datetime.fromtimestamp(start, tz).isoformat(timespec="minutes")
        print(f"{args.life * 86400 / args.speed:.0f} s at --speed {args.speed:g}. No gateway is "
              "running on this config: for one that judges these days by their own clock, "
              "start it first, and this then follows its clock:\n"
              f"  anxin run --config {args.config} --clock-start {clock_start} "
              f"--clock-speed {args.speed:g}", flush=True)
    else:
        origin, speed = running
        if not math.isclose(speed, args.speed):
            print(f"sim: the gateway running on this config has a clock {speed:g} x real time; "
                  f"give --speed {speed:g}", file=sys.stderr)
            return EXIT_CONFIG
        late = sum(1 for t, _, _ in life.messages if t < origin)
        print(f"following the running gateway's clock, at "
              f"{datetime.fromtimestamp(origin, tz):%Y-%m-%d %H:%M}"
              + (f": {late} message(s) from before it are sent at once" if late else ""),
              flush=True)
    real0 = time.monotonic()

    def show(t: float, what: str) -> None:
        print(f"[sim {time.monotonic() - real0:7.1f}s | "
              f"{datetime.fromtimestamp(origin + t, tz):%m-%d %H:%M}] {what}", flush=True)

    stream = simulated.timeline(life.messages, origin, simulated.milestones(life, tz))
    return _run_async(publish_stream(stream, args.broker, speed=args.speed, on_event=show))


def cmd_hotline(args: argparse.Namespace, rest: list[str]) -> int:
    """The reference hotline receiver."""
    del args
    _setup_logging("INFO")
    from hotline.server import main  # noqa: PLC0415

    return main(rest)


def cmd_demo(args: argparse.Namespace) -> int:
    """Everything on embedded defaults: broker, gateway, simulated home, hotline."""
    _setup_logging("WARNING" if not args.verbose else "INFO")
    from gateway.demo import run_demo  # noqa: PLC0415

    return _run_async(run_demo(data_dir=Path(args.data_dir), broker_port=args.broker_port,
                               hotline_port=args.hotline_port, speed=args.speed))


def cmd_devices_catalog(args: argparse.Namespace) -> int:
    """Print the device catalogue."""
    from devices.catalogue import CATALOGUE  # noqa: PLC0415

    rows = [{"model": m.family, "models": list(m.models), "vendor": m.vendor,
             "description": m.description, "classes": list(m.classes), "source": m.source,
             "power": m.power, "supervision_s": m.supervision_s,
             "zigbee2mqtt_availability": m.availability,
             "battery_low_pct": m.battery_low_pct,
             "exposes": {e.property: list(e.kinds) for e in m.exposes},
             "fixture": str(m.fixture)} for m in CATALOGUE]
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=2))
    else:
        print(f"{'MODEL':<22} {'VENDOR':<24} {'CLASSES':<20} {'SUPERVISION':<14} "
              f"{'BATTERY':<8} DESCRIPTION")
        for r in rows:
            every = (f"{r['supervision_s'] / 3600:g} h" if r["supervision_s"]
                     else "availability" if r["zigbee2mqtt_availability"] else "-")
            low = f"≤{r['battery_low_pct']:g}%" if r["battery_low_pct"] else r["power"]
            print(f"{r['model']:<22} {r['vendor']:<24} {','.join(r['classes']):<20} "
                  f"{every:<14} {low:<8} {r['description']}")
    return 0


def _clock_line(clock: dict[str, Any]) -> str:
    """The gateway's clock as `anxin status` shows it (a Pi has no real-time clock)."""
    if "trusted" not in clock:
        return "  clock: —"
    said = {True: "synchronised (NTP)", False: "NOT synchronised", None: "OS cannot say"}
    line = (f"{'✓' if clock['trusted'] else '✗'} clock: {said[clock['synchronized']]}"
            + ("" if clock["trusted"] else
               " — alerts carry their age; times are corrected when NTP arrives"))
    if clock.get("steps"):
        line += f"; stepped {clock['steps']}x, last {clock['last_step_s']:+.0f} s"
    skew = {n: s for n, s in (clock.get("receivers_skew_s") or {}).items() if s}
    if skew:
        line += "; signing with the receiver's time: " + ", ".join(
            f"{n} {s:+.0f} s" for n, s in skew.items())
    return line


def cmd_status(args: argparse.Namespace) -> int:
    """Health at a glance, from the status the running gateway keeps in its data dir."""
    cfg = _load_or_explain(args.config)
    if cfg is None:
        return EXIT_CONFIG
    path = cfg.data_path() / "status.json"
    try:
        st = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        print(f"网关未运行 gateway not running: no status at {path}")
        return 1
    if args.json:
        print(json.dumps(st, ensure_ascii=False, indent=2))
    now = time.time()
    age = now - st["updated_at"]
    running = age < STATUS_FRESH_S
    ok, bad = "✓", "✗"

    def when(ts: float | None) -> str:
        return "—" if ts is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))

    lines = [
        f"{ok if running else bad} gateway {st['gateway_id']} (home {st['home_id']}): "
        + ("running" if running else f"NOT RUNNING — last status {age:.0f} s ago (or it "
                                     "cannot write its data directory: a full disk? the "
                                     "status page says)"),
        f"{ok if st['broker_connected'] else bad} MQTT broker "
        + ("connected" if st["broker_connected"] else "NOT connected"),
        f"{ok if st['path_down_since'] is None else bad} path to the centre: "
        + ("up" if st["path_down_since"] is None else
           f"DOWN since {when(st['path_down_since'])} (alerts are kept and retried)"),
    ]
    depth = st["outbox_depth"]
    lines.append(f"{ok if not depth else bad} outbox: "
                 + (", ".join(f"{n}: {k} waiting" for n, k in depth.items()) or "empty"))
    ic = st.get("intercom")
    if ic and (ic["unsent"] or ic["ringing"]):  # issue 6: the intercom's signalling
        lines.append(f"  intercom: {ic['ringing']} look-in(s) ringing; events waiting: "
                     + (", ".join(f"{n}: {k}" for n, k in ic["unsent"].items()) or "none"))
    dev = st["devices"]
    lines.append(f"{ok if not (dev['offline'] or dev['low_battery']) else bad} devices: "
                 f"{dev['configured']} configured, {dev.get('online', 0)} online; "
                 f"offline: {', '.join(dev['offline']) or '—'}; "
                 f"low battery: {', '.join(dev['low_battery']) or '—'}; not heard from yet: "
                 f"{', '.join(dev['never_seen']) or '—'}")
    troubles = st.get("maintenance_open") or []
    lines.append(f"{ok if not troubles else bad} maintenance queue: "
                 + ("; ".join(troubles) or "empty") + " (anxin: daily digest to the centre)")
    flooding = (st.get("ingest") or {}).get("flooding")
    if flooding:  # a device over its rate limit: its messages are shed (anxin quarantine)
        lines.append(f"{bad} flooding, messages shed: "
                     + ", ".join(f"{d} ({n})" for d, n in sorted(flooding.items())))
    if st.get("maintenance_until"):
        lines.append(f"! test/maintenance mode until {when(st['maintenance_until'])}")
    home = st.get("home_state")
    if home:
        lines.append(f"  home: {home['mode']}" + (" (away key)" if home["away_key"] else "")
                     + (f" since {when(home['since'])}" if home["since"] else ""))
    day = st.get("routine")
    if day:
        lines.append(f"  routine {day['day']}: {day['movements']} movements of "
                     f"{day['expected']} expected ({day['ratio']:.0%}), score {day['score']}")
    last = st.get("last_alert")
    lines.append("  last alert: " + ("none" if last is None else
                                     f"{last['event']} ({last['state']}) at {when(last['at'])}"))
    lines.append(f"{ok if st['disk_free_mb'] > 200 else bad} disk: "
                 f"{st['disk_free_mb']} MB free")
    lines += _storage_lines(st.get("storage"), when)
    lines.append(_clock_line(st.get("clock") or {}))
    if not args.json:
        print("\n".join(lines))
    full = bool(st.get("storage") and st["storage"]["full_since"] is not None)
    healthy = (running and st["broker_connected"] and st["path_down_since"] is None
               and not full)
    return 0 if healthy else 1


def _storage_lines(s: dict[str, Any] | None, when: Callable[[float | None], str]
                   ) -> list[str]:
    """The store in `anxin status`: size and retention; a full disk or the ceiling, loudly."""
    if not s:
        return []
    full = s["full_since"] is not None
    lines = [f"{'✗' if full else '✓'} database: {s['db_mb']} MB of {s['max_db_mb']} MB; "
             f"observations kept {s['observations_days']:g} days (oldest "
             f"{when(s['oldest_observation'])})"]
    if full:
        lines.append(f"✗ 存储已满 STORAGE FULL since {when(s['full_since'])} "
                     f"({s.get('full_reason') or 'disk full'}): alerts still go "
                     f"out (held in memory: {s['pending_alerts']} alert(s), "
                     f"{s['pending_messages']} message(s)); observations dropped: "
                     f"{s['dropped'].get('observations', 0)} — free space on the card")
    if s.get("reserve_spent"):
        lines.append(f"✗ disk space reserve ({s['reserve_mb']:g} MB) in use: only alerts are "
                     "stored until the card has room for it again")
    if s["ceiling_since"] is not None:
        lines.append("! database at its ceiling: the oldest observations make room")
    if s.get("age_paused"):
        lines.append("! clock not synchronised: nothing is pruned by age until it is (the "
                     "size ceiling still bounds the database)")
    return lines


def cmd_devices_discover(args: argparse.Namespace) -> int:
    """List what Zigbee2MQTT has paired: known to the catalogue? already commissioned?"""
    cfg = _load_or_explain(args.config)
    if cfg is None:
        return EXIT_CONFIG
    from gateway.discover import DiscoveryError, parse_bridge_devices  # noqa: PLC0415

    base = cfg.mqtt.zigbee2mqtt_base_topic
    try:
        payload = asyncio.run(_read_retained(cfg, args.broker or cfg.mqtt.url,
                                             f"{base}/bridge/devices", args.wait))
    except OSError as e:
        print(f"cannot reach or log in to the broker: {e}", file=sys.stderr)
        return 1
    if payload is None:
        print(f"no {base}/bridge/devices on the broker within {args.wait:g} s: is "
              "Zigbee2MQTT running and using this broker?", file=sys.stderr)
        return 1
    try:
        found = parse_bridge_devices(payload, base, {d.topic: d.id for d in cfg.devices})
    except DiscoveryError as e:
        print(e, file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps([dataclasses.asdict(f) for f in found], ensure_ascii=False, indent=2))
        return 0
    for f in found:
        known = ("✓ catalogue" if f.in_catalogue else "~ mapped from exposes" if f.usable
                 else "✗ NOT usable")
        where = f"configured as {f.configured_as}" if f.configured_as else "not configured"
        interview = "" if f.interviewed else " (interview not finished)"
        print(f"{f.friendly_name:<24} {f.model or '?':<18} {f.vendor or '?':<14} {known:<22} "
              f"{where}{interview}")
        if not f.in_catalogue and f.exposes:
            print(f"{'':24} exposes: {', '.join(f.exposes)}")
        if f.mapped_classes:
            print(f"{'':24} not in the catalogue; mapped from its exposes as "
                  f"{', '.join(f.mapped_classes)}")
        elif f.unmappable and f.interviewed:
            print(f"{'':24} {f.unmappable}")
    return 0


async def _read_retained(cfg: Config, url: str, topic: str, wait: float) -> bytes | None:
    """The retained message on `topic`, logged in as the gateway (the broker of a Pi install
    lets nobody in anonymously); OSError if the password file cannot be read."""
    import aiomqtt  # noqa: PLC0415

    from gateway.ingest import BrokerAddress, read_password  # noqa: PLC0415

    if url == "embedded":
        url = "mqtt://127.0.0.1:1883"
    mq = cfg.mqtt
    address = BrokerAddress.from_url(
        url, username=mq.username,
        password=read_password(mq.password, mq.password_file, cfg.data_path().parent),
        ca_file=mq.ca_file, cert_file=mq.cert_file, key_file=mq.key_file)
    try:
        async with aiomqtt.Client(address.host, address.port, username=address.username,
                                  password=address.password,
                                  tls_context=address.tls_context()) as client:
            await client.subscribe(topic, qos=1)
            try:
                async with asyncio.timeout(wait):
                    async for message in client.messages:
                        payload = message.payload
                        return payload if isinstance(payload, bytes) else str(payload).encode()
            except TimeoutError:
                return None
    except aiomqtt.MqttError as e:  # refused (wrong password, no such user) or unreachable
        raise ConnectionError(f"{address.host}:{address.port}: {e}") from None
    return None


def cmd_broker_acl(args: argparse.Namespace) -> int:
    """Print Mosquitto's acl_file for this home (or, with --users, the users it needs)."""
    cfg = _load_or_explain(args.config)
    if cfg is None:
        return EXIT_CONFIG
    from gateway import broker_acl  # noqa: PLC0415

    print("\n".join(broker_acl.users(cfg)) if args.users else broker_acl.acl_text(cfg),
          end="\n" if args.users else "")
    return 0


def cmd_technician_code(args: argparse.Namespace) -> int:
    """Make a new technician code (the old one stops working at once) and print it."""
    cfg = _load_or_explain(args.config)
    if cfg is None:
        return EXIT_CONFIG
    from gateway.store import Store  # noqa: PLC0415
    from gateway.web.app import CODE_SETTING  # noqa: PLC0415
    from gateway.web.auth import hash_code, new_code  # noqa: PLC0415

    code = new_code()
    store = Store(cfg.data_path() / "anxin.db")
    try:
        store.set_setting(CODE_SETTING, hash_code(code), time.time())
    finally:
        store.close()
    (cfg.data_path() / "technician-code").unlink(missing_ok=True)
    print(f"技术人员代码 technician code: {code}\n(shown once; the previous code no longer works; "
          f"pages at http://{cfg.web.host}:{cfg.web.port}/)")
    return 0


def cmd_maintenance(args: argparse.Namespace) -> int:
    """Start, stop or show test/maintenance mode (technician on site, drills)."""
    cfg = _load_or_explain(args.config)
    if cfg is None:
        return EXIT_CONFIG
    from datetime import datetime  # noqa: PLC0415
    from zoneinfo import ZoneInfo  # noqa: PLC0415

    from gateway.store import Store  # noqa: PLC0415

    store = Store(cfg.data_path() / "anxin.db")
    try:
        now = time.time()
        if args.action == "start":
            store.set_maintenance_until(now + args.minutes * 60, now)
        elif args.action == "stop":
            store.set_maintenance_until(0.0, now)
        until = store.maintenance_until()
    finally:
        store.close()
    if until > now:
        when = datetime.fromtimestamp(until, ZoneInfo(cfg.gateway.timezone))
        print(f"test/maintenance mode ON until {when:%Y-%m-%d %H:%M} "
              f"({(until - now) / 60:.0f} min): every alert is sent as a test, to the first "
              "tier only (a running gateway notices within 2 s)")
    else:
        print("test/maintenance mode OFF: alerts are real")
    return 0


def cmd_quarantine(args: argparse.Namespace) -> int:
    """List messages that were kept instead of acted on, with the reason."""
    cfg = _load_or_explain(args.config)
    if cfg is None:
        return EXIT_CONFIG
    from gateway.store import Store  # noqa: PLC0415

    db = cfg.data_path() / "anxin.db"
    if not db.exists():
        print(f"no store yet at {db}")
        return 0
    store = Store(db)
    try:
        rows = store.quarantined()
    finally:
        store.close()
    if args.json:
        for r in rows:
            r["last_payload"] = r["last_payload"].decode("utf-8", "replace")
        print(json.dumps(rows, ensure_ascii=False, indent=2))
        return 0
    if not rows:
        print("quarantine is empty")
    for r in rows:
        print(f"{r['topic']}  [{r['category']}] x{r['count']}: {r['reason']}")
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    """Replay a real home's event log (WSU CASAS) through the detectors; alerts per home-month."""
    from gateway.casas import CasasError, render_text, replay_file, skipped_summary  # noqa: PLC0415

    try:
        report = replay_file(Path(args.casas), Path(args.mapping))
    except CasasError as e:
        print(e, file=sys.stderr)
        return EXIT_CONFIG
    for line in skipped_summary(report):
        print(line, file=sys.stderr)
    if args.json:
        print(json.dumps(report.as_json(), ensure_ascii=False, indent=2))
    else:
        print(render_text(report))
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    """Simulate homes with incidents, replay them through the detectors, score them."""
    from gateway.evaluate import evaluate, table  # noqa: PLC0415

    if args.homes < 1 or args.days < 2:
        print("--homes must be >= 1 and --days >= 2", file=sys.stderr)
        return EXIT_CONFIG
    if args.fall_trials < 0 or args.bed_hours < 0:
        print("--fall-trials and --bed-hours must be >= 0 (0 leaves them out)", file=sys.stderr)
        return EXIT_CONFIG

    def progress(done: int, total: int, elapsed: float) -> None:
        print(f"\r  home {done}/{total} · {elapsed:.1f} s", end="" if done < total else "\n",
              file=sys.stderr, flush=True)

    report = evaluate(args.homes, args.days, args.seed, learn=not args.cold_start,
                      progress=progress)
    text = table(report)
    if args.fall_trials and args.bed_hours:
        from gateway import evaluate_signals as sig  # noqa: PLC0415

        print("  signal detectors: wearable falls, bed vital signs …", file=sys.stderr,
              flush=True)
        report["falls"] = sig.falls(args.fall_trials, args.seed)
        report["vitals"] = sig.bed(args.bed_hours)
        text += "\n" + sig.table(report["falls"], report["vitals"])
    print(json.dumps(report, ensure_ascii=False, indent=2) if args.json else text)
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for tests and docs)."""
    p = argparse.ArgumentParser(prog="anxin", description="安心 anxin safety gateway")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("run", help="run the gateway")
    s.add_argument("--config", required=True, help="TOML config file")
    s.add_argument("--broker", help="override [mqtt] url, e.g. mqtt://127.0.0.1:1883")
    s.add_argument("--clock-start", type=_clock_start, metavar="ISO8601",
                   help="for simulation only (never in a home): run on a simulated clock that "
                        "starts at this time, with its UTC offset (e.g. "
                        "2026-03-02T00:00+08:00); see `anxin sim --life`")
    s.add_argument("--clock-speed", type=_speed, metavar="N",
                   help="for simulation only: the simulated clock runs N times real time "
                        "(3600: an hour a second)")
    s.set_defaults(fn=cmd_run)

    s = sub.add_parser("check-config", help="validate a config file")
    s.add_argument("config")
    s.set_defaults(fn=cmd_check_config)

    s = sub.add_parser("sim", help="simulate a home's devices on a broker")
    s.add_argument("--broker", default="mqtt://127.0.0.1:1883")
    s.add_argument("--config", required=True)
    what = s.add_mutually_exclusive_group(required=True)
    what.add_argument("--scenario", help="scenario name or TOML file")
    what.add_argument("--walk-test", action="store_true",
                      help="trigger every configured device once, as a technician's walk "
                           "test does")
    what.add_argument("--life", type=_days, metavar="DAYS",
                      help="the configured residents live DAYS simulated days (rooms "
                           "entrance, living_room, bedroom, bathroom, kitchen); prints the "
                           "incidents the gateway should detect")
    s.add_argument("--incident", action="append", metavar="KIND@DAY[/HOUR]",
                   help="with --life: stage an incident on DAY (0: the first), at local HOUR "
                        "or a time drawn; long_lie, bathroom_collapse, not_up, "
                        "night_wandering, device_failure (repeatable)")
    s.add_argument("--seed", type=int, help="with --life: the random seed (default 1)")
    s.add_argument("--start", metavar="ISO8601",
                   help="with --life: the first day, a date (midnight in the home's time "
                        "zone; default today)")
    s.add_argument("--speed", type=_speed, default=1.0, help="time compression (10 = 10x)")
    s.add_argument("--loop", action="store_true", help="repeat the scenario until stopped")
    s.set_defaults(fn=cmd_sim)

    s = sub.add_parser("hotline", help="run the reference hotline receiver", add_help=False)
    s.set_defaults(fn=None)

    s = sub.add_parser("eval-fall", add_help=False,
                       help="the wearable fall detector over SisFall-format recordings "
                            "(--sisfall DIR [--json]; see anxin eval-fall --help)")
    s.set_defaults(fn=None)

    s = sub.add_parser("demo", help="broker + gateway + simulated home + hotline, one command")
    s.add_argument("--data-dir", default="./var/demo")
    s.add_argument("--broker-port", type=int, default=1883)
    s.add_argument("--hotline-port", type=int, default=9000)
    s.add_argument("--speed", type=float, default=1.0)
    s.add_argument("-v", "--verbose", action="store_true")
    s.set_defaults(fn=cmd_demo)

    s = sub.add_parser("devices", help="catalogue, discover, add, list")
    dsub = s.add_subparsers(dest="devices_command", required=True)
    c = dsub.add_parser("discover", help="what Zigbee2MQTT has paired, against the "
                        "catalogue and the config")
    c.add_argument("--config", required=True)
    c.add_argument("--broker", help="broker URL (default: the config's [mqtt] url)")
    c.add_argument("--wait", type=float, default=5.0, help="seconds to wait for bridge/devices")
    c.add_argument("--json", action="store_true")
    c.set_defaults(fn=cmd_devices_discover)
    c = dsub.add_parser("catalog", help="print the catalogue")
    c.add_argument("--json", action="store_true")
    c.set_defaults(fn=cmd_devices_catalog)
    from gateway.cli_commission import register  # noqa: PLC0415

    register(dsub, sub)

    s = sub.add_parser("broker-acl", help="Mosquitto's access list for this home: each "
                       "device may publish only its own topic (install as acl_file)")
    s.add_argument("--config", required=True)
    s.add_argument("--users", action="store_true",
                   help="list the broker users it names instead (for mosquitto_passwd)")
    s.set_defaults(fn=cmd_broker_acl)

    s = sub.add_parser("technician-code", help="make a new technician code and print it")
    s.add_argument("--config", required=True)
    s.set_defaults(fn=cmd_technician_code)

    s = sub.add_parser("status", help="health at a glance (exit 1 if something is wrong)")
    s.add_argument("--config", required=True)
    s.add_argument("--json", action="store_true")
    s.set_defaults(fn=cmd_status)

    s = sub.add_parser("maintenance", help="test/maintenance mode: every alert sent as a test")
    s.add_argument("action", choices=("start", "stop", "status"))
    s.add_argument("--config", required=True)
    s.add_argument("--minutes", type=float, default=60.0,
                   help="how long (start); it ends by itself, so a forgotten drill does not "
                        "silence the home")
    s.set_defaults(fn=cmd_maintenance)

    s = sub.add_parser("quarantine", help="list messages kept instead of acted on")
    s.add_argument("--config", required=True)
    s.add_argument("--json", action="store_true")
    s.set_defaults(fn=cmd_quarantine)

    s = sub.add_parser("replay", help="replay a real home's event log through the detectors "
                       "and count the alerts per home-month")
    s.add_argument("--casas", required=True, help="WSU CASAS event log (text, one event a line)")
    s.add_argument("--mapping", required=True,
                   help="TOML: timezone, resident, and each CASAS sensor's kind and room "
                        "(see gateway/casas.py)")
    s.add_argument("--json", action="store_true")
    s.set_defaults(fn=cmd_replay)

    s = sub.add_parser("eval", help="simulate homes with incidents and measure the "
                       "behavioural detectors (recall, delay, false alerts per home-month) "
                       "and the signal ones (falls, vital signs)")
    s.add_argument("--homes", type=int, default=50)
    s.add_argument("--days", type=int, default=60)
    s.add_argument("--seed", type=int, default=1)
    s.add_argument("--cold-start", action="store_true",
                   help="never learn the homes' baselines (the first weeks of an install)")
    s.add_argument("--fall-trials", type=int, default=3,
                   help="wearable: emulated recordings of each SisFall fall and activity "
                        "(0: leave the signal detectors out)")
    s.add_argument("--bed-hours", type=int, default=20,
                   help="bed sensor: emulated hours scored for heart and breathing rates and "
                        "events (0: leave the signal detectors out)")
    s.add_argument("--json", action="store_true")
    s.set_defaults(fn=cmd_eval)
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `anxin` console script."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["hotline"]:
        return cmd_hotline(argparse.Namespace(), argv[1:])
    if argv[:1] == ["eval-fall"]:
        from gateway.sisfall import main as eval_fall  # noqa: PLC0415 (numpy-heavy, on demand)
        return eval_fall(argv[1:])
    args = build_parser().parse_args(argv)
    return args.fn(args)


if __name__ == "__main__":
    sys.exit(main())
