"""The gateway runtime: wires ingest -> adapters -> detectors -> alert manager -> store -> outbox.

This is where the wall clock is read and passed in as `now`; everything it calls in devices/,
detectors/ and alerts/ is pure.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from dataclasses import asdict, replace
from typing import Any
from zoneinfo import ZoneInfo

from alerts import wire
from alerts.alert import Alert, AlertState
from alerts.manager import Change, Manager, ManagerConfig
from detectors.core import Core, CoreConfig
from detectors.instant import InstantConfig
from devices.adapters import ADAPTERS
from devices.catalogue import Model, find_model
from devices.observation import Observation, PayloadError
from devices.registry import Device
from gateway.broker import EmbeddedBroker
from gateway.config import Config
from gateway.ingest import BrokerAddress, Ingest, read_password
from gateway.outbox import OutboxSender
from gateway.store import AsyncStore, Store
from gateway.transports import WebhookTransport

logger = logging.getLogger(__name__)

OBSERVATION_FLUSH_S = 1.0
OBSERVATION_FLUSH_ROWS = 500
TICK_MAX_S = 1.0


class Gateway:
    """One home's gateway. `await start()`, then `await stop()`; or `await run_forever()`."""

    def __init__(self, cfg: Config, *, broker_url: str | None = None) -> None:
        self.cfg = cfg
        self.tz = ZoneInfo(cfg.gateway.timezone)
        self.broker_url = broker_url
        self.core = Core(CoreConfig(instant=InstantConfig(cfg.alerts.low_battery_pct)))
        self.manager = Manager(ManagerConfig(
            fall_cancel_window_s=cfg.alerts.fall_cancel_window_s,
            dedupe_window_s=cfg.alerts.dedupe_window_s))
        self.cancel_devices = frozenset(cfg.alerts.cancel_devices)
        self.residents = [asdict(r) for r in cfg.home.residents]
        self.devices: dict[str, tuple[Device, Model]] = {}
        for dev in cfg.device_list():
            model = find_model(dev.model)
            assert model is not None  # checked when the config was loaded
            self.devices[dev.topic] = (dev, model)
        self.bridge_prefix = cfg.mqtt.zigbee2mqtt_base_topic + "/bridge/"
        self.metrics: Counter[str] = Counter()
        self.store = AsyncStore(cfg.data_path() / "anxin.db")
        self.senders = [
            OutboxSender(self.store, WebhookTransport(cfg.target_name(i), t.url, cfg.secret(i),
                                                      t.timeout_s),
                         self._delivered, backoff_max_s=t.retry_max_s)
            for i, t in enumerate(cfg.hotline)]
        self.embedded: EmbeddedBroker | None = None
        self.ingest: Ingest | None = None
        self._tasks: list[asyncio.Task[Any]] = []
        self._obs_buffer: list[Observation] = []
        self._tick_wake = asyncio.Event()
        self.ready = asyncio.Event()

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
        now = time.time()
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
        self.ingest = Ingest(address, self.subscriptions(), self.handle_message,
                             client_id=mq.client_id or f"anxin-{self.cfg.gateway.id}",
                             keepalive_s=mq.keepalive_s)
        self._spawn(self.ingest.run(), "ingest")
        self._spawn(self._ticker(), "ticker")
        self._spawn(self._flusher(), "observations")
        for s in self.senders:
            self._spawn(s.run(), f"outbox-{s.target}")
        unsent = sum((await self.store.call(Store.outbox_depth)).values())
        if unsent:
            logger.warning("%d alert message(s) from before the restart are being resent", unsent)
        await self._wait_connected()
        self.ready.set()
        logger.info("gateway %s ready in %.2f s: %d devices, %d hotline target(s)",
                    self.cfg.gateway.id, time.monotonic() - started, len(self.devices),
                    len(self.senders))

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
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        self._tasks.clear()
        if self.store.store is not None:
            await self._flush()
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
            logger.exception("internal error on a message from %s; kept in quarantine", topic)
            with contextlib.suppress(Exception):
                await self.store.call(Store.quarantine, topic, "internal_error",
                                      f"{type(e).__name__}: {e}", payload, now)

    async def _handle(self, topic: str, payload: bytes, retained: bool, now: float) -> None:
        hit = self.route(topic)
        if hit is None:
            if topic.startswith(self.bridge_prefix):
                return  # Zigbee2MQTT's own state: read by commissioning, not an alarm source
            self.metrics["quarantined_unknown_device"] += 1
            await self.store.call(Store.quarantine, topic, "unknown_device",
                                  "no commissioned device has this topic", payload, now)
            return
        device, model = hit
        try:
            observations = ADAPTERS[device.source](device, model, topic, payload, now)
        except PayloadError as e:
            self.metrics["quarantined_bad_payload"] += 1
            logger.warning("device %s: payload quarantined: %s", device.id, e)
            await self.store.call(Store.quarantine, topic, "bad_payload", str(e), payload, now)
            # What could be read is still acted on: a garbled battery field must not
            # swallow the smoke alarm beside it.
            observations = list(e.partial)
        await self.process(observations, now, prime=retained)

    async def process(self, observations: list[Observation], now: float, *,
                      prime: bool = False) -> None:
        """Run Observations through the core and the manager; persist what changes."""
        for obs in observations:
            if obs.kind == "sos" and obs.device in self.cancel_devices:
                obs = replace(obs, kind="cancel")  # noqa: PLW2901 (a cancel-only button)
            self.metrics["observations"] += 1
            self._obs_buffer.append(obs)
            changes = [] if prime else self.manager.on_observation(obs, now)
            for finding in self.core.step(obs, now, prime=prime):
                self.metrics["findings"] += 1
                changes += self.manager.on_finding(finding, now)
            if changes:
                await self._apply(changes, now)
        if len(self._obs_buffer) >= OBSERVATION_FLUSH_ROWS:
            await self._flush()

    async def _apply(self, changes: list[tuple[Alert, Change]], now: float) -> None:
        targets = [s.target for s in self.senders]
        for alert, change in changes:
            f = alert.finding
            if change is Change.RAISED:
                def encode(seq: int, alert: Alert = alert) -> bytes:
                    return wire.encode_alert(alert, gateway_id=self.cfg.gateway.id,
                                             sequence=seq, residents=self.residents, tz=self.tz)
                seq = await self.store.call(Store.raise_alert, alert, targets, encode, now)
                self.metrics["alerts_raised"] += 1
                logger.warning("ALERT %s raised: %s (code %d, severity %d) device=%s room=%s "
                               "seq=%d%s", alert.id, f.event, f.code, f.severity, f.device,
                               f.room, seq, " [TEST]" if f.test else "")
                for s in self.senders:
                    s.wake()
            else:
                await self.store.call(Store.save_alert, alert, now)
                if change is Change.PENDING:
                    logger.warning("alert %s pending: %s in %s; sent in %.0f s unless the "
                                   "resident cancels", alert.id, f.event, f.room,
                                   (alert.cancel_deadline or now) - now)
                    self._tick_wake.set()
                elif change is Change.CANCELLED:
                    self.metrics["alerts_cancelled"] += 1
                    logger.warning("alert %s cancelled by the resident: %s", alert.id, f.event)

    async def _delivered(self, alert_id: str) -> None:
        now = time.time()
        alert = self.manager.known(alert_id) or await self.store.call(Store.get_alert, alert_id)
        if alert is not None and alert.state == AlertState.RAISED:
            alert.move(AlertState.DELIVERED, now, "every hotline target acknowledged")
            await self.store.call(Store.save_alert, alert, now)

    # --- time ---------------------------------------------------------------------------------

    async def _ticker(self) -> None:
        while True:
            deadline = self.manager.next_deadline()
            timeout = TICK_MAX_S if deadline is None else max(0.0, min(TICK_MAX_S,
                                                                      deadline - time.time()))
            self._tick_wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._tick_wake.wait(), timeout)
            now = time.time()
            changes = self.manager.tick(now)
            for finding in self.core.tick(now):
                changes += self.manager.on_finding(finding, now)
            if changes:
                await self._apply(changes, now)

    async def _flusher(self) -> None:
        while True:
            await asyncio.sleep(OBSERVATION_FLUSH_S)
            await self._flush()

    async def _flush(self) -> None:
        batch, self._obs_buffer = self._obs_buffer, []
        if batch:
            await self.store.call(Store.add_observations, batch)
