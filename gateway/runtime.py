"""The gateway runtime: wires ingest -> adapters -> detectors -> alert manager -> store -> outbox.

This is where the clock is read and passed in as `now`; everything it calls in devices/,
detectors/ and alerts/ is pure. The clock (gateway/clock.py) is, in a home, the wall clock run
on the monotonic one (a step of the wall clock — NTP on a Pi without a real-time clock — is
followed at a tick, every timer moved with it: gateway/timesync.py), or a scaled one that runs
simulated life through the live gateway in seconds; every time the
runtime stamps or compares with an observation or an alert comes from it. What stays on real
time whatever the clock: message signatures and the transports' retries (their receivers and
networks run on real time), the process heartbeat in status.json, and polling for what other
processes ask (`anxin maintenance`, an edited config).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import os
import shutil
import time
from collections import Counter, deque
from dataclasses import asdict, replace
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiomqtt
from aiohttp import web as aiohttp_web

from alerts import selftest, wire
from alerts.alert import Alert, AlertState
from alerts.maintenance import DIGEST_ONLY, ITEM_TEXT, digest, digest_day, is_technical
from alerts.manager import Change, FeedbackError, Manager, ManagerConfig
from alerts.prompts import (
    LANG,
    PATH_BACK,
    PATH_DOWN,
    Prompt,
    away_prompt,
    path_prompt,
    prompt_for,
)
from detectors import activity, baseline, routine
from detectors.core import Core
from detectors.finding import Finding
from devices.adapters import ADAPTERS
from devices.catalogue import Model
from devices.observation import Observation, PayloadError
from devices.registry import Device
from gateway import homeassistant, sdnotify, timesync
from gateway.broker import EmbeddedBroker
from gateway.clock import Clock, SteadyClock
from gateway.commissioning import BRIDGE_DEVICES_SETTING, TEST_ALARM_SETTING
from gateway.config import Config, ConfigError, dc09_key
from gateway.config import load as load_config
from gateway.config_edit import assign_device
from gateway.coreconfig import core_config, watched_devices
from gateway.discover import BridgeEvent, DiscoveryError, parse_bridge_event
from gateway.episodes import Episodes
from gateway.feedback import FeedbackPoller
from gateway.ingest import BrokerAddress, FloodReport, Ingest, device_classifier, read_password
from gateway.intercom import SNAPSHOT_EVENTS, Intercom
from gateway.outbox import INTERCOM, OutboxSender, read_due
from gateway.retention import Policy, Retention, Thinning
from gateway.store import AsyncStore, OutboxRow, Store, read_observations
from gateway.timeline import Timeline
from gateway.transports import SmsTransport, Transport, WebhookTransport
from gateway.transports.dc09 import DC09Transport
from gateway.transports.mqtt_uplink import MqttUplink
from gateway.web.app import CODE_SETTING
from gateway.web.app import make_app as make_web_app
from gateway.web.auth import hash_code, new_code

logger = logging.getLogger(__name__)

OBSERVATION_FLUSH_S = 1.0
OBSERVATION_FLUSH_ROWS = 100
TICK_MAX_S = 1.0  # real seconds: the ticker runs at least this often
# Clock seconds: and at least this often on the gateway's clock (as Core.replay ticks), so a
# simulated clock running thousands of times faster still sees a limit pass within a minute.
TICK_EVERY_S = 60.0
STATUS_EVERY_S = 2.0
BRIDGE_EVENTS_KEPT = 30  # pairing events shown on the discover page
DIGEST_DAY_SETTING = "maintenance_digest_day"
BASELINE_SETTING = "activity_baseline"  # the learned limits, JSON
ROUTINE_SETTING = "routine"  # the last days' routine scores, when a care call last went, JSON
RAW_KINDS = frozenset({"accel", "bcg"})  # raw signal blocks: judged, never stored
RESTORE_S = 36 * 3600.0  # at start, the home's state is replayed from this much history
BASELINE_HOUR = 3  # learned again each night from this local hour
SELF_TEST_WEEK_SETTING = "self_test_week"  # the ISO week of the last button self-test
SELF_TEST_REQUEST_SETTING = "self_test_request"  # `anxin self-test start`
_BATTERY_KINDS = frozenset({"battery", "battery_low"})
MAINTENANCE_READ_S = 2.0  # real seconds: how soon `anxin maintenance start/stop` takes effect
HA_STATE_EVERY_S = 2.0  # how often the Home Assistant state is compared and published
# The commissioning test alarm: Contact ID 601, manual trigger test report (as DC-09 sends
# every test); severity 2, so it travels the way an urgent alarm does.
TEST_ALARM_CODE, TEST_ALARM_SEVERITY = 601, 2
CONSENT_FLAGS = frozenset({"snapshot_consent", "look_in_auto_answer"})
INTERCOM_KINDS = frozenset({"intercom", "checkin", "snapshot"})  # what gateway/intercom.py reads


class Gateway:
    """One home's gateway. `await start()`, then `await stop()`; or `await run_forever()`."""

    def __init__(self, cfg: Config, *, broker_url: str | None = None,
                 config_path: Path | None = None, clock: Clock | None = None,
                 freeze_heap: bool = False) -> None:
        self.cfg = cfg
        self.freeze_heap = freeze_heap  # the process is this gateway's alone (`anxin run`)
        # Wall time run on the monotonic clock: a step of the wall clock (NTP on a board
        # without a real-time clock) is followed at a tick, with every timer moved along.
        self.clock: Clock = clock or SteadyClock()
        self.clock_steps: list[tuple[float, float]] = []  # (gateway time after, step s)
        self._stored_before: dict[str, int] = {}  # row ids written before this process
        self._os_synced: bool | None = None
        self._wall = self.clock.wall if isinstance(self.clock, SteadyClock) else time.time
        self.config_path = config_path  # watched: devices assigned by a technician apply
        self.tz = ZoneInfo(cfg.gateway.timezone)
        self.broker_url = broker_url
        self.devices: dict[str, tuple[Device, Model]] = {}
        self.ready = asyncio.Event()
        self.core = Core()
        self.baseline: baseline.Baseline | None = None
        self._config_mtime = _mtime(config_path)
        self.apply_devices(cfg)
        self.policy = cfg.policy()
        self.manager = Manager(ManagerConfig(
            fall_cancel_window_s=cfg.alerts.fall_cancel_window_s,
            dedupe_window_s=cfg.alerts.dedupe_window_s, policy=self.policy,
            single_occupant=len(cfg.home.residents) == 1))
        self.cancel_devices = frozenset(cfg.alerts.cancel_devices)
        # consent flags decide what the gateway does; they are not sent
        self.residents = [{k: v for k, v in asdict(r).items() if k not in CONSENT_FLAGS}
                          for r in cfg.home.residents]
        self.timeline = Timeline()  # the home's last hours, for an alert's body
        self.intercom = Intercom(self)
        self.bridge_prefix = cfg.mqtt.zigbee2mqtt_base_topic + "/bridge/"
        self.bridge_devices: bytes | None = None  # retained <base>/bridge/devices
        self.bridge_events: deque[tuple[float, BridgeEvent]] = deque(maxlen=BRIDGE_EVENTS_KEPT)
        self.metrics: Counter[str] = Counter()
        self.store = AsyncStore(cfg.data_path() / "anxin.db",
                                reserve_bytes=int(cfg.storage.reserve_mb * 2**20))
        self.retention = Retention(self.store, Policy.of(cfg.storage), self.tz, self.clock.now,
                                   from_wall=self.clock.from_wall,
                                   trusted=lambda: self._os_synced is not False)
        # a device sending garbage, or a bug hit by every message: logged once per episode
        self.bad_payloads = Episodes(logger, "payloads quarantined")
        self.internal_errors = Episodes(logger, "internal errors", level=logging.ERROR)
        self.file_errors = Episodes(logger, "not written", level=logging.ERROR)
        self.uplinks: list[MqttUplink] = []
        # Senders, pollers and transports keep the wall clock even under a simulated one: the
        # hotline checks a webhook's HMAC timestamp (and DC-09's) against its own real clock
        # within a replay window, and backoff is about a real network. Their outage stamps
        # are read through `_since`.
        self.senders = {
            cfg.target_name(i): OutboxSender(self.store, self._transport(i), self._delivered,
                                             backoff_max_s=t.retry_max_s, clock=self._wall)
            for i, t in enumerate(cfg.hotline)}
        # intercom events (anxin.intercom/1) to the targets that carry them, queued apart
        self.intercom_senders = {
            name: OutboxSender(self.store, s.transport, _no_delivery_hook,
                               backoff_max_s=s.backoff_max_s, clock=s.clock, queue=INTERCOM)
            for name, s in self.senders.items() if s.transport.carries_intercom}
        self.feedback = [
            FeedbackPoller(cfg.target_name(i), t.feedback_url, cfg.secret(i), cfg.gateway.id,
                           cfg.home.id, self.store, self._apply_feedback,
                           backoff_max_s=min(30.0, t.retry_max_s), clock=self._wall)
            for i, t in enumerate(cfg.hotline) if t.feedback_url]
        self.embedded: EmbeddedBroker | None = None
        self.ingest: Ingest | None = None
        self._tasks: list[asyncio.Task[Any]] = []
        self._obs_buffer: list[Observation] = []
        # repeated battery and link-quality readings are not stored (gateway/retention.py)
        self.thinning = Thinning(cfg.maintenance.weak_link_lqi)
        self._tick_wake = asyncio.Event()
        self._web: aiohttp_web.AppRunner | None = None
        self._path_announced = False
        self.maintenance_until = 0.0  # test/maintenance mode (anxin maintenance start)
        self.last_seen: dict[str, float] = {}  # device id -> last Observation
        self.started_at = time.time()  # the process's start, for `anxin status`: real time
        self._polled_at: float | None = None  # monotonic: other processes' requests last read
        self._scheduled_at = 0.0  # clock: the daily digest and learning last looked at
        self._troubles: set[tuple[str, str]] = set()  # open maintenance items
        self.self_test = selftest.SelfTestState()
        self._baseline_day: str | None = None
        self.routine: dict[str, Any] = {}  # ROUTINE_SETTING: the last days' scores
        self._saved_sequences: dict[str, int] = {}  # DC-09 target -> sequence in the store
        self._watchdog_s = sdnotify.watchdog_interval()  # None: no systemd watchdog
        self._watchdog_at = 0.0
        self._watchdog_warned = False
        ha = cfg.home_assistant
        self.ha_topics = homeassistant.Topics.of(ha.discovery_prefix, ha.state_prefix,
                                                 cfg.gateway.id) if ha.enabled else None
        self._ha_state = b""
        self._ha_announced: set[str] = set()
        self._digest_day: str | None = None  # the local date of the last digest

    def _transport(self, i: int) -> Transport:
        t, name, secret = self.cfg.hotline[i], self.cfg.target_name(i), self.cfg.secret(i)
        if t.kind == "dc09":
            key, _ = dc09_key(t, Path(self.cfg.base_dir))
            # all three checked when the config was loaded
            assert t.host is not None
            assert t.port is not None
            assert t.account is not None
            return DC09Transport(
                name, t.host, t.port, account=t.account, receiver=t.receiver, line=t.line,
                fmt=t.format, key=key, protocol=t.protocol, timeout_s=t.timeout_s,
                supervision_s=t.supervision_s,
                zones=self.cfg.zones())
        if t.kind == "mqtt":
            base = Path(self.cfg.base_dir)
            address = BrokerAddress.from_url(
                t.url, username=t.username,
                password=read_password(None, t.password_file, base),
                ca_file=t.ca_file and str(base / t.ca_file),
                cert_file=t.cert_file and str(base / t.cert_file),
                key_file=t.key_file and str(base / t.key_file))
            uplink = MqttUplink(name, address, secret, gateway_id=self.cfg.gateway.id,
                                home_id=self.cfg.home.id, prefix=t.topic_prefix,
                                timeout_s=t.timeout_s, backoff_max_s=min(30.0, t.retry_max_s),
                                clock=self._wall, age_clock=self.clock.now)
            self.uplinks.append(uplink)
            return uplink
        if t.kind == "sms":
            assert t.to is not None  # checked when the config was loaded
            return SmsTransport(name, t.url, secret, to=t.to, channel=t.channel,
                                address=self.cfg.home.address, timeout_s=t.timeout_s,
                                clock=self.clock.now,
                                peer=timesync.PeerClock(name, wall=self._wall))
        return WebhookTransport(name, t.url, secret, t.timeout_s, clock=self.clock.now,
                                peer=timesync.PeerClock(name, wall=self._wall))

    def apply_devices(self, cfg: Config) -> None:
        """Take the devices of `cfg` (at start, and when a technician assigns one).

        Detector state is kept; devices, supervision and battery thresholds are rebuilt.
        Devices under the Zigbee2MQTT and native base topics are already subscribed to.
        """
        devices = {dev.topic: (dev, model) for dev, model in watched_devices(cfg)}
        self.core.cfg = core_config(cfg, list(devices.values()))
        self._apply_baseline(cfg)
        self.self_test_cfg = selftest.SelfTestConfig(
            buttons=cfg.self_test_buttons(),
            weekday=cfg.self_test.weekday, hour=cfg.self_test.hour,
            window_s=cfg.self_test.window_min * 60)
        added = sorted(d.id for t, (d, _) in devices.items() if t not in self.devices)
        self.devices = devices
        self.cfg = replace(self.cfg, devices=cfg.devices)
        for sender in getattr(self, "senders", {}).values():  # (none yet at the first call)
            if isinstance(sender.transport, DC09Transport):
                sender.transport.zones = self.cfg.zones()  # a device added on site: its zone
        if added and self.ready.is_set():
            logger.warning("devices now watched: %s", ", ".join(added))
        if getattr(self, "ingest", None) is not None:
            self.ingest.admission.forget_topics()  # type: ignore[union-attr]

    def _apply_baseline(self, cfg: Config) -> None:
        """Use the learned limits, unless the config sets them."""
        b, a = self.baseline, cfg.activity
        if b is None or b.spells == 0:
            return
        act = self.core.cfg.activity
        if a.day_limit_h is None and a.night_limit_h is None:
            act = replace(act, limits_s=b.limits_s, limits_source=b.source)
        if a.wake_by_h is None and b.wake_by_h is not None:
            act = replace(act, wake_by_h=b.wake_by_h)
        if a.bathroom_limit_min is None and b.bathroom_limit_s is not None:
            act = replace(act, bathroom_limit_s=b.bathroom_limit_s)
        if b.sleep_from_h is not None:
            act = replace(act, sleep_from_h=b.sleep_from_h)
        self.core.cfg = replace(self.core.cfg, activity=act)

    async def learn_baseline(self, now: float) -> baseline.Baseline:
        """Learn this home's limits from the last weeks of stored observations (in a thread,
        on a read-only connection: the alert path is not held up) and use them."""
        await self._flush()
        act = core_config(self.cfg, list(self.devices.values())).activity
        since = now - max(baseline.WINDOW_DAYS, routine.LOOKBACK_DAYS + 1) * 86400
        db = self.cfg.data_path() / "anxin.db"
        outages = [(i.first_at, i.cleared_at or now) for i in
                   await self.store.call(Store.troubles, open_only=False)
                   if i.event == "offline" and (i.cleared_at or now) >= since]
        last_care = self.routine.get("last_raised")
        # the routine detector's older days, kept as hourly totals beyond the observations'
        # retention window (gateway/retention.py)
        known = await self.store.call(Store.activity_hours, since)

        def work() -> tuple[baseline.Baseline, list[routine.DayScore], Finding | None,
                            routine.HourTotals]:
            h = baseline.history(read_observations(db, since), act)
            h.outages = outages
            b = baseline.learn(h, act.limits_s, act.wake_by_h, now, self.tz,
                               act.bathroom_limit_s)
            if not act.sensors:
                return b, [], None, {}
            return (b, *routine.assess(h, now, self.tz, self.cfg.home.id, last_care, known),
                    routine.hourly(h, now, self.tz))

        b, days, care, hours = await asyncio.to_thread(work)
        await self.store.call(Store.save_activity_hours, hours)
        self.baseline = b
        await self.store.call(Store.set_setting, BASELINE_SETTING,
                              json.dumps({**asdict(b), "updated_at": now}), now)
        self._apply_baseline(self.cfg)
        logger.info("activity baseline: %s", b.source)
        self.routine = {"updated_at": now, "last_raised": now if care else last_care,
                        "days": [d.summary() for d in days]}
        await self.store.call(Store.set_setting, ROUTINE_SETTING,
                              json.dumps(self.routine, ensure_ascii=False), now)
        if days:
            logger.info("routine: %s scored %.1f", days[-1].day, days[-1].score)
        if care is not None:
            logger.warning("routine: %s, a care call", care.evidence["pattern"])
            await self._apply(await self._route([care], now), now)
        return b

    async def _restore_activity(self, now: float) -> None:
        """Pick up the home's state where it was: replay the last hours of stored observations
        through the activity rules (what was last seen where, away by the door or the key,
        up this morning, checked in today), their findings dropped — they were raised, or
        not, at the time. A quiet spell that ran on while the gateway was down is judged at
        the first tick, from the real last activity."""
        db = self.cfg.data_path() / "anxin.db"
        history = await asyncio.to_thread(read_observations, db, now - RESTORE_S)
        # Rows stamped later than now were written while the clock ran ahead (set wrong,
        # then stepped back): replayed, they would hold a quiet spell open until then.
        future = [o for o in history if o.at > now + 1.0]
        if future:
            logger.warning("%d stored observation(s) are later than the clock (%s): not "
                           "replayed", len(future), datetime.fromtimestamp(
                               future[-1].at, self.tz).isoformat(timespec="seconds"))
            history = [o for o in history if o.at <= now + 1.0]
        state, cfg = self.core.activity, self.core.cfg.activity
        for obs in history:
            activity.step(state, obs, obs.at, cfg)
        self.timeline.seed(history, now)
        if history:
            state.watching_since = history[0].at
            logger.info("home state restored from %d observations: %s since %s", len(history),
                        state.mode + (" (away key)" if state.away_by_key else ""),
                        state.mode_since)

    async def _maybe_learn(self, now: float) -> None:
        """Once a day, at night (03:00 local), learn the baseline again."""
        local = datetime.fromtimestamp(now, self.tz)
        day = local.date().isoformat()
        if local.hour >= BASELINE_HOUR and (self._baseline_day is None
                                            or day > self._baseline_day):  # only forward
            self._baseline_day = day
            await self.learn_baseline(now)

    async def _reread_config(self) -> None:
        """Apply devices written to the config file by `anxin devices add`."""
        mtime = _mtime(self.config_path)
        if mtime == self._config_mtime or self.config_path is None:
            return
        self._config_mtime = mtime
        try:
            cfg = load_config(self.config_path)
        except ConfigError as e:
            logger.error("the config file changed but does not load; still running on the "
                         "previous devices:\n%s", e)
            return
        self.apply_devices(cfg)

    # --- lifecycle --------------------------------------------------------------------------

    def subscriptions(self) -> list[str]:
        """Topic filters covering every configured device and the adapters' base topics."""
        bases = [self.cfg.mqtt.zigbee2mqtt_base_topic, self.cfg.mqtt.native_base_topic]
        filters = [f"{b}/#" for b in bases]
        for topic in self.devices:
            if not any(topic.startswith(b + "/") for b in bases):
                filters += [topic, f"{topic}/#"]
        return filters

    async def start(self) -> None:
        """Open the store, resume unfinished alerts, connect to the broker, start sending."""
        started = time.monotonic()
        await self.store.open()
        self._stored_before = await self.store.call(timesync.high_water)
        self._os_synced = self._synced()
        if isinstance(self.clock, SteadyClock) and self._os_synced is not True:
            # not before the newest time stored (unless the OS vouches for its clock: then
            # a newer row was written while the clock ran ahead)
            self.clock.raise_floor(timesync.floor(await self.store.call(timesync.newest_stamp)))
        now = self.clock.now()
        self.maintenance_until = await self.store.call(Store.maintenance_until)
        self._troubles = {(i.device, i.event) for i in await self.store.call(Store.troubles)}
        self.self_test.last_week = await self.store.call(Store.setting, SELF_TEST_WEEK_SETTING)
        self._digest_day = await self.store.call(Store.setting, DIGEST_DAY_SETTING)
        stored = await self.store.call(Store.setting, BASELINE_SETTING)
        if stored:
            data = json.loads(stored)
            self._baseline_day = datetime.fromtimestamp(data.pop("updated_at"),
                                                         self.tz).date().isoformat()
            self.baseline = baseline.Baseline(**{**data, "limits_s": tuple(data["limits_s"])})
            self._apply_baseline(self.cfg)
        self.routine = json.loads(await self.store.call(Store.setting, ROUTINE_SETTING) or "{}")
        for name, t in self._dc09().items():  # DC-09 sequence numbers carry on
            t.resume_sequence(int(await self.store.call(Store.setting, f"dc09_sequence:{name}")
                                  or 0))
        await self._restore_activity(now)
        if not self._digest_day:  # a new install: the first digest is tomorrow's
            self._digest_day = datetime.fromtimestamp(now, self.tz).date().isoformat()
            await self.store.call(Store.set_setting, DIGEST_DAY_SETTING, self._digest_day, now)
        await self.intercom.restore()
        open_alerts = await self.store.call(Store.open_alerts)
        await self._apply(self.manager.restore(open_alerts, now), now)
        mq = self.cfg.mqtt
        url = self.broker_url or mq.url
        if url == "embedded":
            self.embedded = EmbeddedBroker(mq.embedded_host, mq.embedded_port)
            await self.embedded.start()
            url = f"mqtt://{mq.embedded_host}:{mq.embedded_port}"
        address = BrokerAddress.from_url(
            url, username=mq.username,
            password=read_password(mq.password, mq.password_file, self.cfg.data_path().parent),
            ca_file=mq.ca_file, cert_file=mq.cert_file, key_file=mq.key_file)
        ha = self.ha_topics
        self.ingest = Ingest(address, self.subscriptions(), self.handle_message,
                             client_id=mq.client_id or f"anxin-{self.cfg.gateway.id}",
                             keepalive_s=mq.keepalive_s,
                             will=None if ha is None else aiomqtt.Will(
                                 ha.availability, b"offline", qos=1, retain=True),
                             on_connect=None if ha is None else self._ha_announce,
                             clock=self.clock.now,
                             classify=device_classifier(self.route, self.bridge_prefix),
                             on_flood=self._on_flood)
        self._spawn(self.ingest.run(), "ingest")
        self._spawn(self._ticker(), "ticker")
        self._spawn(self._flusher(), "observations")
        self._spawn(self.retention.run(), "retention")
        self._spawn(self._status_writer(), "status")
        if self.ha_topics is not None:
            self._spawn(self._ha_publisher(), "home-assistant")
        for name, sender in self.senders.items():
            self._spawn(sender.run(), f"outbox-{name}")
        for name, sender in self.intercom_senders.items():
            self._spawn(sender.run(), f"intercom-{name}")
        for poller in self.feedback:
            self._spawn(poller.run(), f"feedback-{poller.name}")
        for uplink in self.uplinks:
            self._spawn(uplink.run(self._apply_feedback), f"uplink-{uplink.name}")
        unsent = sum((await self.store.call(Store.outbox_depth)).values())
        if unsent:
            logger.warning("%d alert message(s) from before the restart are being resent", unsent)
        if self.cfg.web.enabled:
            await self._start_web()
        await self._wait_connected()
        self.ready.set()
        sdnotify.notify(f"READY=1\nSTATUS=watching {len(self.devices)} devices, "
                        f"{len(self.senders)} hotline target(s)")
        if self.freeze_heap:
            # What exists now (modules, config, the state restored) lives as long as the
            # process: out of the cyclic collector's way. Its full passes over those ~65,000
            # objects held the event loop 50-70 ms each, and an alarm arriving then waited
            # (issue 8's latency bench: its max, and its p99 12.9 -> 11.0 ms). Not in a
            # process that starts many gateways (tests): what they leave would never go.
            gc.freeze()
        logger.info("gateway %s ready in %.2f s: %d devices, %d hotline target(s)",
                    self.cfg.gateway.id, time.monotonic() - started, len(self.devices),
                    len(self.senders))

    async def _start_web(self) -> None:
        """The technician pages; the first start makes the technician code."""
        if await self.store.call(Store.setting, CODE_SETTING) is None:
            code = new_code()
            await self.store.call(Store.set_setting, CODE_SETTING, hash_code(code),
                                  self.clock.now())
            path = self.cfg.data_path() / "technician-code"
            await asyncio.to_thread(_write_private, path, code + "\n")
            logger.warning("first start: the technician code is in %s (readable by this "
                           "service only; `anxin technician-code` makes a new one)", path)
        web_cfg = self.cfg.web
        self._web = aiohttp_web.AppRunner(make_web_app(self), access_log=None,
                                          shutdown_timeout=1.0)
        await self._web.setup()
        try:
            await aiohttp_web.TCPSite(self._web, web_cfg.host, web_cfg.port).start()
        except OSError as e:
            # The pages are for the technician; alerts matter more. Say so and go on.
            logger.error("technician pages not started: cannot listen on %s:%d (%s)",
                         web_cfg.host, web_cfg.port, e.strerror)
            await self._web.cleanup()
            self._web = None
            return
        logger.info("technician pages on http://%s:%d/", web_cfg.host, web_cfg.port)

    async def _wait_connected(self) -> None:
        assert self.ingest is not None
        connected = asyncio.ensure_future(self.ingest.connected.wait())
        await asyncio.wait([connected, *self._tasks], return_when=asyncio.FIRST_COMPLETED)
        if not connected.done():
            connected.cancel()
            for t in self._tasks:
                if t.done():
                    t.result()  # re-raise what killed it

    def _spawn(self, coro: Any, name: str) -> None:
        self._tasks.append(asyncio.create_task(coro, name=f"anxin-{name}"))

    async def stop(self) -> None:
        """Stop every task, write what is buffered, close the store and the broker."""
        # before the connection goes: a clean stop says so (a crash leaves the will)
        if self.ha_topics is not None and self.ingest is not None and self.ingest.client:
            with contextlib.suppress(aiomqtt.MqttError, TimeoutError):
                async with asyncio.timeout(2):
                    await self.ingest.client.publish(self.ha_topics.availability, b"offline",
                                                     qos=1, retain=True)
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        self._tasks.clear()
        if self._web is not None:
            await self._web.cleanup()
            self._web = None
        if self.store.store is not None:
            await self._flush()
            await self._save_sequences()
        await self.store.close()
        if self.embedded is not None:
            await self.embedded.stop()
        logger.info("gateway stopped: %s", dict(self.metrics) or "no messages")

    async def run_forever(self) -> None:
        """Start, run until cancelled, stop."""
        await self.start()
        try:
            await asyncio.gather(*self._tasks)
        finally:
            await self.stop()

    # --- the message path --------------------------------------------------------------------

    def route(self, topic: str) -> tuple[Device, Model] | None:
        """The device a topic belongs to: its state topic or one level below it."""
        hit = self.devices.get(topic)
        if hit is None and "/" in topic:
            hit = self.devices.get(topic.rsplit("/", 1)[0])
        return hit

    async def handle_message(self, topic: str, payload: bytes, retained: bool,
                             now: float) -> None:
        """One MQTT message, start to finish. Never raises: ingest must go on."""
        self.metrics["messages"] += 1
        try:
            await self._handle(topic, payload, retained, now)
        except Exception as e:
            # A bug on one message must not stop ingest: every other sensor still needs
            # hearing. Keep the message and the error for a developer, loudly, and go on.
            self.metrics["internal_errors"] += 1
            reason = f"{type(e).__name__}: {e}"
            if self.internal_errors.failed(topic, reason, now):
                logger.exception("internal error on a message from %s; kept in quarantine",
                                 topic)
            with contextlib.suppress(Exception):
                await self.store.call(Store.quarantine, topic, "internal_error",
                                      f"{type(e).__name__}: {e}", payload, now)

    async def _handle(self, topic: str, payload: bytes, retained: bool, now: float) -> None:
        hit = self.route(topic)
        if hit is None:
            if topic.startswith(self.bridge_prefix):
                # Zigbee2MQTT's own state: read by commissioning, not an alarm source
                await self._on_bridge(topic.removeprefix(self.bridge_prefix), payload, now)
                return
            self.metrics["quarantined_unknown_device"] += 1
            await self.store.call(Store.quarantine, topic, "unknown_device",
                                  "no commissioned device has this topic", payload, now)
            return
        device, model = hit
        try:
            observations = ADAPTERS[device.source](device, model, topic, payload, now)
        except PayloadError as e:
            self.metrics["quarantined_bad_payload"] += 1
            self.bad_payloads.failed(device.id, str(e), now)
            await self.store.call(Store.quarantine, topic, "bad_payload", str(e), payload, now)
            # What could be read is still acted on: a garbled battery field must not
            # swallow the smoke alarm beside it.
            observations = list(e.partial)
        else:
            self.bad_payloads.ok(device.id, now)
        await self.process(observations, now, prime=retained)

    async def _on_flood(self, report: FloodReport) -> None:
        """A device began or stopped flooding: one quarantine entry each, for the technician."""
        if report.ended:
            reason = (f"flood over: {report.shed} message(s) shed in {report.duration_s:.0f} s "
                      f"above {report.limit_per_s:g} msg/s")
        else:
            self.metrics["floods"] += 1
            reason = (f"flooding ({report.key}): over {report.limit_per_s:g} msg/s; messages "
                      "beyond that are shed and counted until it stops")
        await self.store.call(Store.quarantine, report.topic, "flood", reason, report.sample,
                              self.clock.now())

    async def _on_bridge(self, what: str, payload: bytes, now: float) -> None:
        """Keep what commissioning reads: the paired devices and the latest pairing events."""
        if what == "devices":
            if payload != self.bridge_devices:
                self.bridge_devices = payload
                # kept for `anxin commission report` (a separate process): firmware, power
                await self.store.call(Store.set_setting, BRIDGE_DEVICES_SETTING,
                                      payload.decode("utf-8", "replace"), now)
        elif what == "event":
            try:
                event = parse_bridge_event(payload)
            except DiscoveryError as e:
                await self.store.call(Store.quarantine, self.bridge_prefix + what,
                                      "bad_payload", str(e), payload, now)
                return
            self.bridge_events.appendleft((now, event))
            logger.info("Zigbee2MQTT: %s %s %s", event.type, event.friendly_name,
                        event.status or "")

    async def assign_device(self, device_id: str, fields: dict[str, Any]) -> Path:
        """Write a device into the config file (validated, the old one backed up) and watch
        it now; the backup's path. ConfigError, with nothing written, if it would not load."""
        if self.config_path is None:
            raise ConfigError([("config", "this gateway was started without a config file, "
                                          "so devices cannot be assigned here")])
        cfg, backup = await asyncio.to_thread(assign_device, self.config_path, device_id,
                                              fields)
        self._config_mtime = _mtime(self.config_path)
        self.apply_devices(cfg)
        return backup

    async def flush_observations(self) -> None:
        """Store the buffered observations now (the walk-test page reads them)."""
        await self._flush()

    async def process(self, observations: list[Observation], now: float, *,
                      prime: bool = False) -> None:
        """Run Observations through the core and the manager; persist what changes."""
        for obs in observations:
            if obs.kind == "sos" and obs.device in self.cancel_devices:
                obs = replace(obs, kind="cancel")  # noqa: PLW2901 (a cancel-only button)
            self.metrics["observations"] += 1
            self.last_seen[obs.device] = now
            if obs.kind not in RAW_KINDS:  # samples stream past: too many for an SD card
                if self.thinning.keep(obs, now):
                    self._obs_buffer.append(obs)
                self.timeline.add(obs)
            changes = [] if prime else self.manager.on_observation(obs, now)
            mode = self._home_mode()
            found = self.core.step(obs, now, prime=prime)
            if self._home_mode() != mode:  # (no coroutine per observation for the rare case)
                await self._mode_changed(mode)
            if obs.kind == "sos" and self.self_test.run is not None and not prime:
                found = await self._self_test_press(obs, found, now)
            if found:
                self.metrics["findings"] += len(found)
                changes += await self._route(found, now)
            if changes:
                await self._apply(changes, now)
            if self.core.health.cleared or (self._troubles and obs.kind in _BATTERY_KINDS):
                await self._troubles_over(obs.device if obs.kind in _BATTERY_KINDS else None,
                                          now)
        if any(o.kind in INTERCOM_KINDS for o in observations):
            await self.intercom.observe(observations, now, prime=prime)
        if len(self._obs_buffer) >= OBSERVATION_FLUSH_ROWS:
            await self._flush()

    async def _route(self, findings: list[Finding], now: float) -> list[tuple[Alert, Change]]:
        """Technical troubles to the maintenance queue (and, for some, at once to the centre
        too); everything else to the alert manager."""
        changes: list[tuple[Alert, Change]] = []
        for f in findings:
            if is_technical(f):
                assert f.device is not None
                if await self.store.call(Store.note_trouble, f.device, f.event, f.room,
                                         f.evidence, now):
                    self._troubles.add((f.device, f.event))
                    logger.warning("maintenance: %s %s (%s)", f.device, f.event,
                                   ITEM_TEXT.get(f.event, ("", f.event))[1])
                if f.event in DIGEST_ONLY and not self.cfg.maintenance.immediate:
                    continue  # in the daily digest, not a page of its own
            changes += self.manager.on_finding(self._in_maintenance(f, now), now)
        return changes

    async def _troubles_over(self, battery_device: str | None, now: float) -> None:
        """Close maintenance items whose condition has ended."""
        over = list(self.core.health.cleared)
        self.core.health.cleared.clear()
        for device, silent_s in self.core.supervision.back:
            logger.warning("device %s heard from again after %.0f s offline", device, silent_s)
            over.append((device, "offline"))
        self.core.supervision.back.clear()
        if battery_device is not None:
            mem = self.core.instant.devices.get(battery_device)
            if mem is not None and not mem.battery_alarmed:
                over.append((battery_device, "low_battery"))
        for device, event in over:
            if (device, event) in self._troubles:
                self._troubles.discard((device, event))
                await self.store.call(Store.clear_trouble, device, event, now)
                logger.warning("maintenance: %s %s is over", device, event)

    async def _self_test_press(self, obs: Observation, found: list[Finding],
                               now: float) -> list[Finding]:
        """A button pressed during the weekly self-test: its first press is the test."""
        is_test, step = selftest.press(self.self_test, obs.device, now)
        if is_test:
            logger.warning("weekly self-test: %s pressed", obs.device)
            found = [replace(f, test=True, evidence={**f.evidence, "weekly_self_test": True})
                     if f.event == "sos" else f for f in found]
        await self._self_test_step(step, now)
        return found

    async def self_test_tick(self, now: float) -> None:
        """Start the week's button self-test at its hour, remind, finish it."""
        if self.self_test_cfg.buttons:
            await self._self_test_step(
                selftest.tick(self.self_test, self.self_test_cfg, now, self.tz), now)

    async def start_self_test(self, now: float, *, manual: bool = True) -> bool:
        """Begin the button self-test now (a technician's request); False if it cannot."""
        step = selftest.start(self.self_test, self.self_test_cfg, now, self.tz, manual=manual)
        await self._self_test_step(step, now)
        return step.started

    async def _self_test_step(self, step: selftest.Step, now: float) -> None:
        if step.started:
            await self.store.call(Store.set_setting, SELF_TEST_WEEK_SETTING,
                                  self.self_test.last_week or "", now)
            logger.warning("weekly self-test started: %s asked to press %s",
                           "the resident", ", ".join(self.self_test_cfg.buttons))
        if step.say:
            await self._speak(Prompt(step.say), None, "self_test")
        r = step.result
        if r is None:
            return
        await self.store.call(Store.add_record, "self_test", None, r.started_at,
                              {"pressed": r.pressed, "failed": r.failed, "manual": r.manual},
                              r.ended_at)
        rooms = {d.id: d.room for d, _ in self.devices.values()}
        for device in r.failed:
            if await self.store.call(Store.note_trouble, device, selftest.FAILED_EVENT,
                                     rooms.get(device), {"self_test_at": r.started_at}, now):
                self._troubles.add((device, selftest.FAILED_EVENT))
        logger.warning("weekly self-test finished: %s", "failed: " + ", ".join(r.failed)
                       if r.failed else "every button worked")

    async def send_maintenance_digest(self, now: float) -> str | None:
        """The maintenance digest now (open troubles, those fixed since the last one): the
        alert id, or None when there is nothing to report."""
        open_items = await self.store.call(Store.troubles)
        fixed = await self.store.call(Store.troubles, cleared_undigested=True)
        finding = digest(self.cfg.home.id, open_items, fixed, now, self.tz)
        if finding is None:
            return None
        changes = self.manager.on_finding(self._in_maintenance(finding, now), now)
        await self._apply(changes, now)
        await self.store.call(Store.mark_digested, now)
        logger.warning("maintenance digest sent: %s", finding.evidence["summary"])
        return changes[0][0].id if changes else None

    async def _maybe_digest(self, now: float) -> None:
        day = digest_day(now, self.tz, self.cfg.maintenance.digest_hour)
        # Only ever forward: a clock stepped back (NTP on a board without a real-time clock)
        # must not send yesterday's digest again.
        if day is None or (self._digest_day is not None and day <= self._digest_day):
            return
        self._digest_day = day
        await self.store.call(Store.set_setting, DIGEST_DAY_SETTING, day, now)
        await self.send_maintenance_digest(now)

    async def _apply(self, changes: list[tuple[Alert, Change]], now: float) -> None:
        for alert, change in changes:
            f = alert.finding
            if change in (Change.PENDING, Change.RAISED) and f.event in SNAPSHOT_EVENTS:
                # asked now, so a fall's still is there when its cancel window ends
                await self.intercom.alert_opened(alert, now)
            if change is Change.RAISED:
                targets = self.policy.targets(0)
                seq = await self._send(alert, targets, now, "raise")
                self.metrics["alerts_raised"] += 1
                logger.warning("ALERT %s raised: %s (code %d, severity %d) device=%s room=%s "
                               "seq=%d -> %s%s", alert.id, f.event, f.code, f.severity,
                               f.device, f.room, seq, ", ".join(targets),
                               " [TEST]" if f.test else "")
            elif change is Change.ESCALATED:
                before = set(self.policy.targets(alert.tier - 1))
                targets = tuple(t for t in self.policy.targets(alert.tier) if t not in before)
                await self._send(alert, targets, now, "escalate")
                self.metrics["alerts_escalated"] += 1
                logger.warning("alert %s not accepted in time: escalated to tier %d (%s) -> %s",
                               alert.id, alert.tier, self.policy.tiers[alert.tier].name,
                               ", ".join(targets))
            elif change is Change.REMINDED:
                await self._send(alert, self.policy.targets(alert.tier), now, "remind")
                self.metrics["alerts_reminded"] += 1
                logger.warning("alert %s still not accepted: reminder %d sent", alert.id,
                               alert.reminders)
            else:
                await self.store.call(Store.save_alert, alert, now)
                if change is Change.PENDING:
                    logger.warning("alert %s pending: %s in %s; sent in %.0f s unless the "
                                   "resident cancels", alert.id, f.event, f.room,
                                   (alert.cancel_deadline or now) - now)
                elif change is Change.CANCELLED:
                    self.metrics["alerts_cancelled"] += 1
                    logger.warning("alert %s cancelled by the resident: %s", alert.id, f.event)
            self._tick_wake.set()  # deadlines may have moved
            await self._say(alert, change)

    async def _send(self, alert: Alert, targets: tuple[str, ...], now: float,
                    purpose: str) -> int:
        """Store the alert and one message to each target in one transaction; wake senders."""
        escalation = None if purpose in ("raise", "update") else {
            "tier": alert.tier, "tier_name": self.policy.tiers[alert.tier].name,
            "reminder": alert.reminders}
        trusted = self.clock_status().trusted
        home, f = self.cfg.home, alert.finding
        # the still the intercom took travels as the body's `snapshot`, not in its evidence,
        # and only while every resident's consent stands
        snapshot, shown = f.evidence.get("snapshot"), alert
        if snapshot is not None:
            shown = replace(alert, finding=replace(f, evidence={
                k: v for k, v in f.evidence.items() if k != "snapshot"}))
            if not home.everyone_consents("snapshot_consent"):
                snapshot = None
        timeline = (self.timeline.for_alert(f.at, now, self.tz)
                    if f.severity in wire.TIMELINE_SEVERITIES else None)

        def encode(seq: int) -> bytes:
            return wire.encode_alert(shown, gateway_id=self.cfg.gateway.id, sequence=seq,
                                     residents=self.residents, tz=self.tz,
                                     escalation=escalation, address=home.address,
                                     clock=None if trusted else {"synced": False},
                                     district=home.district,
                                     contacts=[asdict(c) for c in home.contacts],
                                     timeline=timeline, snapshot=snapshot)

        senders = [self.senders[t] for t in targets]

        def commit(store: Store) -> tuple[int, dict[str, list[OutboxRow] | None]]:
            # what each sender would ask next, read in the same turn of the store thread
            return (store.notify(alert, targets, encode, now, purpose),
                    read_due(store, senders))

        seq, due = await self.store.call(commit)
        for s in senders:
            s.wake(due[s.target])
        await asyncio.sleep(0)  # the senders' POSTs go out before this handler goes on
        return seq

    def _in_maintenance(self, finding: Finding, now: float) -> Finding:
        """During test/maintenance mode every finding is a test: tier 0, never dispatched."""
        if now < self.maintenance_until and not finding.test:
            return replace(finding, test=True,
                           evidence={**finding.evidence, "maintenance_mode": True})
        return finding

    async def _read_maintenance(self, now: float) -> None:
        request = await self.store.call(Store.setting, TEST_ALARM_SETTING)
        if request:
            await self.store.call(Store.set_setting, TEST_ALARM_SETTING, "", now)
            await self.raise_test_alarm(int(request), now)
        if await self.store.call(Store.setting, SELF_TEST_REQUEST_SETTING):
            await self.store.call(Store.set_setting, SELF_TEST_REQUEST_SETTING, "", now)
            if not await self.start_self_test(now):
                logger.warning("self-test requested but not started: %s",
                               "one is under way" if self.self_test.run else
                               "no buttons to test (needs [home] speaker_topic)")
        until = await self.store.call(Store.maintenance_until)
        if (until > now) != (self.maintenance_until > now):
            if until > now:
                logger.warning("test/maintenance mode until %s: alerts are sent as tests",
                               datetime.fromtimestamp(until, self.tz).isoformat(" ", "minutes"))
            else:
                logger.warning("test/maintenance mode ended: alerts are real again")
        self.maintenance_until = until

    async def raise_test_alarm(self, record_id: int, now: float) -> str | None:
        """The commissioning end-to-end test: a test alert through the normal path."""
        record = await self.store.call(Store.record, record_id)
        if record is None or record.get("alert_id"):
            return None
        finding = Finding(
            detector="commissioning", home=self.cfg.home.id, code=TEST_ALARM_CODE,
            event="test_alarm", severity=TEST_ALARM_SEVERITY, at=now, room=None,
            # One alert per request: the manager folds findings of the same device.
            device=f"commissioning-{record_id}", test=True,
            evidence={"technician": record.get("technician"), "request": record_id})
        changes = self.manager.on_finding(finding, now)
        alert_id = changes[0][0].id if changes else None
        await self.store.call(Store.update_record, record_id,
                              {k: v for k, v in record.items() if k not in
                               ("id", "kind", "technician", "started_at", "ended_at")}
                              | {"alert_id": alert_id, "raised_at": now})
        logger.warning("commissioning test alarm %s requested by %s", alert_id,
                       record.get("technician"))
        if changes:
            await self._apply(changes, now)
        return alert_id

    def path_down_since(self) -> float | None:
        """Since when the first tier cannot be reached (None: it can, as far as we know)."""
        first = set(self.policy.targets(0))
        since = [self._since(p.down_since)
                 for p in (*[self.senders[t] for t in first],
                           *[f for f in self.feedback if f.name in first],
                           *[u for u in self.uplinks if u.name in first])]
        return min((s for s in since if s is not None), default=None)

    def _since(self, wall: float | None) -> float | None:
        """An outage's start, stamped by a sender or poller on the wall clock (they stay on
        real time: signed timestamps, backoff), on the gateway's clock."""
        return None if wall is None else self.clock.from_wall(wall)

    async def _watch_path(self, now: float) -> None:
        """Tell the home (by day) when the centre has been unreachable for a while."""
        since = self.path_down_since()
        hour = datetime.fromtimestamp(now, self.tz).hour
        prompt = path_prompt(None if since is None else now - since, self._path_announced,
                             hour)
        if prompt is PATH_DOWN:
            self._path_announced = True
            logger.warning("the centre has been unreachable for %.0f s: the home is told",
                           now - (since or now))
        elif prompt is PATH_BACK:
            self._path_announced = False
        if prompt is not None:
            await self._speak(prompt, None, "path")

    def _home_mode(self) -> tuple[str, bool, bool]:
        a = self.core.activity
        return a.mode, a.away_by_key, a.away_pressed_at is not None

    async def _mode_changed(self, before: tuple[str, bool, bool]) -> None:
        """Tell the resident the away key was heard (or the mode it set has ended)."""
        after = self._home_mode()
        if after != before and (prompt := away_prompt(before, after)) is not None:
            logger.info("home mode %s -> %s", before, after)
            await self._speak(prompt, None, "away_mode")

    async def _say(self, alert: Alert, change: Change) -> None:
        """Speak to the resident through the home's speaker, if there is one."""
        prompt = prompt_for(alert, change, cancel_window_s=self.cfg.alerts.fall_cancel_window_s,
                            path_down=self.path_down_since() is not None)
        if prompt is not None:
            await self._speak(prompt, alert.id, alert.finding.event)

    async def _speak(self, prompt: Prompt, alert_id: str | None, event: str) -> None:
        topic = self.cfg.home.speaker_topic
        if topic is None:
            return
        client = self.ingest.client if self.ingest is not None else None
        if client is None:
            logger.warning("speaker prompt (%s) not played: broker not connected", event)
            return
        payload = json.dumps({"say": prompt.say, "lang": LANG, "siren": prompt.siren,
                              "alert_id": alert_id, "event": event},
                             ensure_ascii=False).encode()
        try:
            await client.publish(topic, payload, qos=1)
        except aiomqtt.MqttError as e:
            logger.warning("speaker prompt (%s) not played: %s", event, e)

    async def _apply_feedback(self, target: str, events: list[dict[str, Any]],
                              cursor: str) -> None:
        """Operators' accept/resolve from `target`, applied and stored with the cursor; a
        look-in rings the home's intercom (gateway/intercom.py)."""
        now = self.clock.now()
        changed: list[tuple[Alert, Change]] = []
        for ev in events:
            if ev["action"] == "look_in":
                await self.intercom.look_in(ev, target, now)
                continue
            alert = self.manager.known(ev["alert_id"]) or await self.store.call(
                Store.get_alert, ev["alert_id"])
            if alert is None:
                logger.warning("feedback from %s about unknown alert %s ignored", target,
                               ev["alert_id"])
                continue
            try:
                changes = self.manager.on_feedback(
                    alert, ev["action"], now, operator=str(ev.get("operator") or target),
                    outcome=ev.get("outcome"), note=str(ev.get("note") or ""))
            except FeedbackError as e:
                logger.warning("feedback from %s not applied: %s", target, e)
                continue
            for a, change in changes:
                logger.warning("alert %s %s by %s at %s", a.id, change.value, a.taken_by,
                               target)
            changed += changes
        await self.store.call(Store.feedback_applied, target, cursor,
                              [a for a, _ in changed], now)
        for a, change in changed:
            self.metrics[f"alerts_{change.value}"] += 1
            await self._say(a, change)
        self._tick_wake.set()

    async def attach_snapshot(self, alert_id: str, snapshot: dict[str, str],
                              now: float) -> None:
        """The still the intercom took after a fall or SOS: kept with the alert, sent with its
        next message; an alert already sent is sent again with it to whoever was told (a
        receiver keeps the first body, and takes the still from a repeat)."""
        alert = self.manager.known(alert_id) or await self.store.call(Store.get_alert, alert_id)
        if alert is None or not alert.is_open:
            logger.warning("still for alert %s not attached: the alert is %s", alert_id,
                           "unknown" if alert is None else alert.state.value)
            return
        f = alert.finding
        alert.finding = replace(f, evidence={**f.evidence, "snapshot": snapshot})
        told = tuple(t for t in self.policy.targets(alert.tier)
                     if t in self.intercom_senders)  # the JSON transports: DC-09 has no room
        if alert.state is AlertState.PENDING_LOCAL or not told:
            await self.store.call(Store.save_alert, alert, now)
        else:
            await self._send(alert, told, now, "update")
        logger.warning("alert %s: the intercom's still attached%s", alert_id,
                       f", sent to {', '.join(told)}" if told and
                       alert.state is not AlertState.PENDING_LOCAL else "")

    async def _delivered(self, alert_id: str) -> None:
        now = self.clock.now()
        alert = self.manager.known(alert_id) or await self.store.call(Store.get_alert, alert_id)
        if alert is not None and alert.state == AlertState.RAISED:
            alert.move(AlertState.DELIVERED, now, "every hotline target acknowledged")
            await self.store.call(Store.save_alert, alert, now)

    # --- time ---------------------------------------------------------------------------------

    async def _ticker(self) -> None:
        while True:
            # The next alert deadline, or a tick's worth of the clock, slept in real seconds
            # (a scaled clock's hour may be a second), and never longer than TICK_MAX_S.
            deadline = self.manager.next_deadline()
            wait = TICK_EVERY_S if deadline is None else min(TICK_EVERY_S,
                                                             deadline - self.clock.now())
            timeout = max(0.0, min(TICK_MAX_S, self.clock.real(wait)))
            self._tick_wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._tick_wake.wait(), timeout)
            await self.check_clock()
            await self.tick(self.clock.now())
            self._heartbeat()

    def clock_status(self) -> timesync.ClockStatus:
        """What the gateway knows about its clock (trusted, synchronised, steps seen)."""
        fl = self.clock.floor if isinstance(self.clock, SteadyClock) else timesync.RELEASE_FLOOR
        return timesync.ClockStatus(  # plausible: the wall clock itself, not ours (floored)
            synchronized=self._os_synced, plausible=self._wall() >= fl, floor=fl,
            steps=len(self.clock_steps),
            last_step_s=self.clock_steps[-1][1] if self.clock_steps else None)

    def _synced(self) -> bool | None:
        synced = getattr(self.clock, "synced", None) or timesync.os_synchronized
        return synced()

    async def check_clock(self) -> float:
        """Follow a step of the wall clock (see gateway/timesync.py): every remembered time
        and open timer moves with it, so elapsed times stay true. The step, or 0.0."""
        if not isinstance(self.clock, SteadyClock):
            return 0.0
        self._os_synced = self._synced()
        step = self.clock.check(synced=self._os_synced is True)
        if step:
            await self._rebase(step)
        return step

    async def _rebase(self, step: float) -> None:
        now = self.clock.now()
        self.clock_steps.append((now, step))
        self._obs_buffer = [replace(o, at=o.at + step) for o in self._obs_buffer]
        moved = timesync.shift_state(step, self.core, self.manager, self.self_test)
        self.timeline.shift(step)
        await self.intercom.shift(step, now)
        if self.ingest is not None:
            timesync.shift_admission(self.ingest.admission, step)
        self.last_seen = {d: t + step for d, t in self.last_seen.items()}
        self._scheduled_at += step
        self.bridge_events = deque(((t + step, e) for t, e in self.bridge_events),
                                   maxlen=BRIDGE_EVENTS_KEPT)
        if self.maintenance_until > now - step:
            # Test mode set on the old clock lasts as long on the new one: after a step
            # back, real alarms must not go out as tests for the length of the step.
            self.maintenance_until += step
            await self.store.call(Store.set_maintenance_until, self.maintenance_until, now)
        synced = self.clock_status().trusted
        fixed = await self.store.call(
            timesync.shift_stored, step, self._stored_before, moved, now,
            lambda body, dt: timesync.shift_body(body, dt, synced))
        logger.warning("the wall clock stepped by %+.1f s (%s): open timers and %d alert(s) "
                       "moved with it, %d unsent message(s) corrected", step,
                       "synchronised" if synced else "not synchronised", len(moved), fixed)
        if synced:  # what the uplink sent on an unknown clock may have been refused: again
            for uplink in self.uplinks:
                await uplink.resend_unsure(step)
        self._tick_wake.set()

    def _heartbeat(self) -> None:
        """The systemd watchdog's heartbeat, sent from the ticker (so a hung event loop
        stops it) and only while every long-running task (ingest, outbox senders,
        pollers) is alive: a task that died is a gateway to restart, not to keep."""
        interval = self._watchdog_s
        if interval is None or time.monotonic() - self._watchdog_at < interval:
            return
        dead = [t.get_name() for t in self._tasks if t.done()]
        if dead:
            if not self._watchdog_warned:
                logger.error("watchdog heartbeat withheld: %s stopped", ", ".join(dead))
                self._watchdog_warned = True
            return
        self._watchdog_at = time.monotonic()
        sdnotify.notify("WATCHDOG=1")

    async def tick(self, now: float) -> None:
        """Time has passed: timers, supervision, inactivity, schedules (the ticker calls this
        every second, or every clock minute on a faster clock; a test may call it with a
        later `now` to move time on)."""
        polled = time.monotonic()
        # What another process asked for (`anxin maintenance`, `anxin devices add`) is read
        # every few real seconds, however fast the clock runs.
        if self._polled_at is None or polled - self._polled_at >= MAINTENANCE_READ_S:
            self._polled_at = polled
            await self._read_maintenance(now)
            await self._reread_config()
        if now - self._scheduled_at >= MAINTENANCE_READ_S:  # the daily schedules: clock time
            self._scheduled_at = now
            await self._maybe_digest(now)
            await self._maybe_learn(now)
        await self._watch_path(now)
        self.bad_payloads.expire(now)
        self.internal_errors.expire(now)
        changes = self.manager.tick(now)
        if self.core.supervision.back or self.core.health.cleared:
            await self._troubles_over(None, now)
        for before, after, at in self.core.activity.changes:
            logger.warning("home %s: %s → %s (since %s)", self.cfg.home.id, before, after,
                           datetime.fromtimestamp(at, self.tz).strftime("%H:%M"))
        self.core.activity.changes.clear()
        await self.self_test_tick(now)
        await self.intercom.tick(now)
        mode = self._home_mode()
        found = self.core.tick(now)
        await self._mode_changed(mode)
        for finding in found:
            if finding.detector == "supervision":
                logger.warning("device %s silent for %s s (expected every %.0f s): offline",
                               finding.device, finding.evidence["silent_for_s"],
                               finding.evidence["expected_every_s"])
        if found:
            changes += await self._route(found, now)
        if changes:
            await self._apply(changes, now)

    # --- Home Assistant ----------------------------------------------------------------------

    async def _ha_announce(self, client: aiomqtt.Client) -> None:
        """After each connect: discovery configs, then online, then the state (all retained)."""
        assert self.ha_topics is not None
        devices = list(self.devices.values())
        for topic, payload in homeassistant.discovery(self.ha_topics, self.cfg.gateway.id,
                                                      self.cfg.home.id, devices):
            await client.publish(topic, payload, qos=1, retain=True)
        self._ha_announced = {d.id for d, _ in devices}
        await client.publish(self.ha_topics.availability, b"online", qos=1, retain=True)
        self._ha_state = b""  # publish the state again

    async def _ha_publisher(self) -> None:
        """Publish the Home Assistant state document whenever it changes."""
        assert self.ha_topics is not None
        while True:
            await asyncio.sleep(HA_STATE_EVERY_S)
            client = self.ingest.client if self.ingest is not None else None
            if client is None or not self.ingest.connected.is_set():  # type: ignore[union-attr]
                continue
            try:
                if {d.id for d, _ in self.devices.values()} != self._ha_announced:
                    await self._ha_announce(client)  # a technician assigned a device
                memory = self.core.instant.devices
                payload = homeassistant.state(
                    open_alerts=await self.store.call(Store.open_alerts),
                    centre_link=self.path_down_since() is None,
                    test_mode=self.clock.now() < self.maintenance_until,
                    troubles=await self.store.call(Store.troubles),
                    devices=list(self.devices.values()), last_seen=self.last_seen,
                    battery={d: float(m.last["battery"]) for d, m in memory.items()
                             if isinstance(m.last.get("battery"), int | float)},
                    tz=self.tz)
                if payload != self._ha_state:
                    await client.publish(self.ha_topics.state, payload, qos=1, retain=True)
                    self._ha_state = payload
            except aiomqtt.MqttError as e:
                logger.info("Home Assistant state not published (%s); retrying", e)

    async def _status_writer(self) -> None:
        """Keep `status.json` in the data directory current for `anxin status` (and the
        DC-09 sequence numbers in the store)."""
        path = self.cfg.data_path() / "status.json"
        while True:
            await self._save_sequences()
            status = await self.status()
            try:
                await asyncio.to_thread(_write_atomically, path,
                                        json.dumps(status, ensure_ascii=False, indent=1))
            except OSError as e:
                # A full card: the gateway goes on (a dead task here would have the watchdog
                # restart it, and lose the alerts held in memory); the page still shows it.
                self.file_errors.failed(path.name, str(e), self.clock.now())
            else:
                self.file_errors.ok(path.name, self.clock.now())
            await asyncio.sleep(STATUS_EVERY_S)

    def _dc09(self) -> dict[str, DC09Transport]:
        return {n: s.transport for n, s in self.senders.items()
                if isinstance(s.transport, DC09Transport)}

    async def _save_sequences(self) -> None:
        for name, t in self._dc09().items():
            if t.sequence and self._saved_sequences.get(name) != t.sequence:
                await self.store.call(Store.set_setting, f"dc09_sequence:{name}",
                                      str(t.sequence), self.clock.now())
                self._saved_sequences[name] = t.sequence

    async def status(self) -> dict[str, Any]:
        """Health at a glance: broker, the path to the centre, devices, outbox, disk.

        Times are on the gateway's clock, except `started_at` and `updated_at`: the process
        and its heartbeat, which `anxin status` compares with the wall clock. `clock` says
        what the gateway's clock read at `updated_at`, and how fast it runs (`anxin sim
        --life` follows it)."""
        now, wall = self.clock.now(), time.time()
        memory = self.core.instant.devices
        configured = [d.id for d, _ in self.devices.values()]
        usage = shutil.disk_usage(self.cfg.data_path())
        return {
            "gateway_id": self.cfg.gateway.id, "home_id": self.cfg.home.id, "pid": os.getpid(),
            "started_at": self.started_at, "updated_at": wall,
            "clock": {"now": now, "speed": 1.0 / self.clock.real(1.0),
                      **self.clock_status().summary(),
                      "receivers_skew_s": {n: round(sd.transport.peer.skew_s, 1)
                                           for n, sd in self.senders.items()
                                           if hasattr(sd.transport, "peer")}},
            "broker_connected": bool(self.ingest and self.ingest.connected.is_set()),
            "path_down_since": self.path_down_since(),
            "targets": [{"name": n, "failures": sd.failures,
                         "down_since": self._since(sd.down_since), "sent": sd.sent}
                        for n, sd in self.senders.items()],
            "feedback": [{"name": f.name, "failures": f.failures,
                          "down_since": self._since(f.down_since)} for f in self.feedback],
            "maintenance_until": self.maintenance_until if self.maintenance_until > now
            else None,
            "devices": {
                "configured": len(configured),
                "online": sum(d in self.last_seen and d not in self.core.supervision.offline
                              and (d not in memory
                                   or memory[d].last.get("availability") != "offline")
                              for d in configured),
                "never_seen": sorted(d for d in configured if d not in self.last_seen),
                "offline": sorted(d for d in configured if d in memory
                                  and memory[d].last.get("availability") == "offline"),
                "low_battery": sorted(d for d in configured if d in memory
                                      and memory[d].battery_alarmed),
            },
            "maintenance_open": sorted(f"{d} {e}" for d, e in self._troubles),
            "home_state": {"mode": self.core.activity.mode,
                           "since": self.core.activity.mode_since,
                           "away_key": self.core.activity.away_by_key},
            "routine": (self.routine.get("days") or [None])[-1],
            "outbox_depth": await self.store.call(Store.outbox_depth),
            "intercom": {"unsent": await self.store.call(Store.intercom_depth),
                         "ringing": len(self.intercom.rings)},
            "last_alert": await self.store.call(Store.last_alert),
            "disk_free_mb": round(usage.free / 2**20),
            "storage": {**await self.retention.status(),
                        "readings_not_stored": self.thinning.skipped},
            "metrics": dict(self.metrics),
            "ingest": self.ingest.status() if self.ingest is not None else None,
        }

    async def _flusher(self) -> None:
        while True:
            await asyncio.sleep(OBSERVATION_FLUSH_S)
            await self._flush()

    async def _flush(self) -> None:
        # Awaited on the message path, not handed off: writing a batch while ingest goes on
        # measured no faster (issue 8's ingest bench, 2 cores: 0.43-0.52 of bare against
        # 0.57-0.60), the two threads contending for the GIL.
        batch, self._obs_buffer = self._obs_buffer, []
        if batch:
            await self.store.call(Store.add_observations, batch)


def _mtime(path: Path | None) -> float | None:
    try:
        return None if path is None else path.stat().st_mtime
    except OSError:
        return None


def _write_atomically(path: Path, text: str) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)


async def _no_delivery_hook(_event_id: str) -> None:
    """An intercom event acknowledged: nothing follows (an alert moves to delivered)."""
