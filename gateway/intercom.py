"""The 爱的眼睛 video intercom, gateway side (issue 6): look-ins rung and timed out, consent,
snapshots after a fall or SOS, and what the intercom did reported to the hotline.

The media (SIP/WebRTC) goes from the device to the centre; anxin carries the signalling and
records it. The device's MQTT interface is documented in devices/adapters/native.py:

- A look-in (`look_in` feedback from the hotline, alerts/wire.py) rings every intercom of
  the home: `{"ring": {"request_id", "from", "auto_answer"}}` on `<topic>/set`. Auto-answer
  only where every resident consented (`look_in_auto_answer`). The outcome comes back as
  `{"intercom": "answered"|"missed"|"declined"|"ended", "request_id"}`; a ring nobody
  answers within `LOOK_IN_TIMEOUT_S` is reported missed by the gateway, whatever the device
  says later; an intercom known to be offline is reported missed at once, not rung.
- After a fall or SOS, only where every resident consented (`snapshot_consent`), the
  gateway asks each intercom for one still (`{"snapshot": {"request_id": <alert id>}}`) and
  attaches the reference the intercom reports to that alert. Without consent it never asks,
  and a still nobody asked for is never attached.
- Every step (ringing, answered, auto_answered, missed, declined, ended, and the resident's
  call and check-in keys) is one `anxin.intercom/1` event with its own ULID, queued in the
  store for each target that carries them (webhook POST /intercom, the MQTT uplink's
  `<prefix>/<gateway>/intercom`) and retried until acknowledged; the hotline deduplicates on
  event_id. The rings under way, the stills asked for and the look-ins already taken are kept
  in the store, so a restart neither forgets a missed call nor rings twice.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import aiomqtt

from alerts import wire
from alerts.alert import Alert
from alerts.ulid import ulid
from devices.adapters.native import COMMAND_SUFFIX
from devices.observation import Observation
from devices.registry import Device
from gateway.store import Store

if TYPE_CHECKING:
    from gateway.runtime import Gateway

logger = logging.getLogger(__name__)

INTERCOM_MODEL = "anxin-intercom"
LOOK_IN_TIMEOUT_S = 45.0  # rung this long without an answer: missed
SNAPSHOT_WAIT_S = 120.0  # a still asked for after a fall or SOS is attached up to this late
CALL_KEPT_S = 2 * 3600.0  # an answered call whose "ended" never came is forgotten after this
SNAPSHOT_EVENTS = wire.SNAPSHOT_EVENTS
SEEN_KEPT = 200  # look-in request ids remembered, so a feedback replayed rings only once
STATE_SETTING = "intercom_state"
RING_SOURCES = frozenset({"centre", "family"})
OUTCOMES = frozenset({"answered", "missed", "declined", "ended"})


@dataclass(slots=True)
class Ring:
    """One intercom ringing for one look-in."""

    request_id: str
    device: str
    alert_id: str
    operator: str
    auto_answer: bool
    started: float
    answered: bool = False


class Intercom:
    """The home's intercoms as the runtime drives them."""

    def __init__(self, gw: Gateway) -> None:
        self.gw = gw
        self.rings: dict[tuple[str, str], Ring] = {}  # (request_id, device) -> ring
        self.snapshots: dict[str, float] = {}  # alert id -> until when a still is taken
        self.seen: list[str] = []  # look-in request ids already rung, oldest first
        self.asked: list[str] = []  # alerts a still was asked for (once each), oldest first

    # --- what the config says -------------------------------------------------------------

    def devices(self) -> list[Device]:
        """The home's intercoms."""
        return [d for d, m in self.gw.devices.values() if m.model == INTERCOM_MODEL]

    def consents(self, flag: str) -> bool:
        """Whether every resident agreed to `flag` (snapshot_consent, look_in_auto_answer)."""
        return self.gw.cfg.home.everyone_consents(flag)

    # --- state kept across a restart --------------------------------------------------------

    async def restore(self) -> None:
        """Pick up the rings, stills asked for and look-ins seen before a restart."""
        raw = await self.gw.store.call(Store.setting, STATE_SETTING)
        if not raw:
            return
        try:
            state = json.loads(raw)
            rings = {(r["request_id"], r["device"]): Ring(**r) for r in state["rings"]}
            snapshots = {str(k): float(v) for k, v in state["snapshots"].items()}
            seen = [str(r) for r in state["seen"]]
            asked = [str(a) for a in state.get("asked", [])]
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            # never a reason not to start: the rings under way are forgotten, and said so
            logger.error("intercom state in the store is unreadable (%s): starting afresh", e)
            return
        self.rings, self.snapshots, self.seen, self.asked = rings, snapshots, seen, asked

    async def _save(self, now: float) -> None:
        state = {"rings": [asdict(r) for r in self.rings.values()],
                 "snapshots": self.snapshots, "seen": self.seen, "asked": self.asked}
        await self.gw.store.call(Store.set_setting, STATE_SETTING, json.dumps(state), now)

    async def shift(self, dt: float, now: float) -> None:
        """The wall clock stepped by `dt`: a ring's 45 s and a still's wait go on as they
        were (a step back must not hold a ring open for the length of the step)."""
        for r in self.rings.values():
            r.started += dt
        self.snapshots = {a: until + dt for a, until in self.snapshots.items()}
        if self.rings or self.snapshots:
            await self._save(now)

    # --- events to the hotline --------------------------------------------------------------

    async def emit(self, device: str, event: str, request_id: str | None, now: float,
                   **detail: Any) -> str:
        """Queue one `anxin.intercom/1` event for every target that carries them."""
        gw = self.gw
        event_id = ulid(now)
        body = wire.encode_intercom(event_id=event_id, gateway_id=gw.cfg.gateway.id,
                                    home_id=gw.cfg.home.id, device_id=device, event=event,
                                    request_id=request_id, at=now, tz=gw.tz, detail=detail)
        targets = list(gw.intercom_senders)
        logger.warning("intercom %s: %s%s -> %s", device or "-", event,
                       f" (look-in {request_id})" if request_id else "",
                       ", ".join(targets) or "no target takes intercom events")
        if not targets:
            return event_id
        try:
            await gw.store.call(Store.queue_intercom, event_id, targets, body, now)
        except sqlite3.OperationalError as e:
            if getattr(e, "sqlite_errorcode", None) != sqlite3.SQLITE_FULL:
                raise
            # Signalling, not an alarm: on a full disk it is said once in the log, and lost.
            logger.error("intercom event %s not kept: storage full", event)
            return event_id
        for t in targets:
            gw.intercom_senders[t].wake()
        return event_id

    async def _command(self, device: Device, payload: dict[str, Any]) -> str | None:
        """Publish a command on the intercom's `/set` topic; the error, if it did not go."""
        client = self.gw.ingest.client if self.gw.ingest is not None else None
        if client is None:
            return "broker not connected"
        try:
            await client.publish(device.topic + COMMAND_SUFFIX,
                                 json.dumps(payload, ensure_ascii=False).encode(), qos=1)
        except aiomqtt.MqttError as e:
            return str(e)
        return None

    # --- look-ins ---------------------------------------------------------------------------

    async def look_in(self, ev: dict[str, Any], target: str, now: float) -> None:
        """The centre (or family) asks to look in: ring every intercom of the home."""
        request_id = ev["request_id"]
        if request_id in self.seen:
            logger.info("look-in %s from %s already rung", request_id, target)
            return
        self.seen.append(request_id)
        del self.seen[:-SEEN_KEPT]
        source = ev.get("from") if ev.get("from") in RING_SOURCES else "centre"
        operator = str(ev.get("operator") or target)
        alert_id = str(ev.get("alert_id") or "")
        devices = self.devices()
        if not devices:
            await self.emit("", "missed", request_id, now, reason="no_intercom",
                            alert_id=alert_id)
        auto = self.consents("look_in_auto_answer")
        offline = self.gw.core.offline()
        for d in devices:
            if d.id in offline:
                # the operator learns at once, and phones instead of waiting 45 s for nothing
                await self.emit(d.id, "missed", request_id, now, reason="intercom_offline",
                                alert_id=alert_id)
                continue
            error = await self._command(d, {"ring": {"request_id": request_id, "from": source,
                                                     "auto_answer": auto}})
            if error is not None:
                logger.warning("look-in %s: intercom %s not rung: %s", request_id, d.id, error)
                await self.emit(d.id, "missed", request_id, now, reason="not_sent",
                                error=error, alert_id=alert_id)
                continue
            self.rings[(request_id, d.id)] = Ring(request_id, d.id, alert_id, operator, auto,
                                                  now)
            await self.emit(d.id, "ringing", request_id, now, auto_answer=auto, source=source,
                            operator=operator, alert_id=alert_id,
                            timeout_s=LOOK_IN_TIMEOUT_S)
        await self._save(now)

    def _ring_for(self, device: str, request_id: str | None) -> Ring | None:
        if request_id is not None:
            return self.rings.get((request_id, device))
        mine = [r for r in self.rings.values() if r.device == device]
        return max(mine, key=lambda r: r.started) if mine else None

    async def observe(self, observations: list[Observation], now: float, *,
                      prime: bool = False) -> None:
        """One message's observations: the intercom's keys and its calls' outcomes."""
        if prime:
            return  # a retained message is state, not something the intercom did now
        intercoms = {d.id for d in self.devices()}
        request_ids = {o.device: str(o.value) for o in observations
                       if o.kind == "intercom_request"}
        changed = False
        for obs in observations:
            if obs.device not in intercoms:
                continue
            if obs.kind == "checkin":
                await self.emit(obs.device, "checkin", None, now)
            elif obs.kind == "snapshot":
                await self._snapshot(obs, now)
                changed = True
            elif obs.kind == "intercom" and obs.value == "call":
                await self.emit(obs.device, "call", None, now)
            elif obs.kind == "intercom" and obs.value in OUTCOMES:
                await self._outcome(obs, request_ids.get(obs.device), now)
                changed = True
        if changed:
            await self._save(now)

    async def _outcome(self, obs: Observation, request_id: str | None, now: float) -> None:
        ring = self._ring_for(obs.device, request_id)
        event = str(obs.value)
        detail: dict[str, Any] = {}
        if ring is not None:
            request_id = ring.request_id
            detail = {"after_s": round(now - ring.started, 1), "alert_id": ring.alert_id}
            if event == "answered":
                ring.answered = True
                event = "auto_answered" if ring.auto_answer else "answered"
            else:
                del self.rings[(ring.request_id, ring.device)]
        elif request_id is None:
            detail = {"unmatched": True}  # no look-in under way: said so, still recorded
        await self.emit(obs.device, event, request_id, now, **detail)

    async def tick(self, now: float) -> None:
        """Rings nobody answered in time are missed; stills not taken in time are given up."""
        over = [r for r in self.rings.values()
                if not r.answered and now - r.started >= LOOK_IN_TIMEOUT_S]
        for r in over:
            del self.rings[(r.request_id, r.device)]
            await self.emit(r.device, "missed", r.request_id, now, reason="no_answer",
                            after_s=round(now - r.started, 1), alert_id=r.alert_id)
        stale = [r for r in self.rings.values()
                 if r.answered and now - r.started >= CALL_KEPT_S]
        for r in stale:  # the device restarted mid-call, say: its "ended" will not come
            del self.rings[(r.request_id, r.device)]
            logger.warning("look-in %s on %s: no end reported after %.0f s, forgotten",
                           r.request_id, r.device, now - r.started)
        late = [a for a, until in self.snapshots.items() if now > until]
        for alert_id in late:
            del self.snapshots[alert_id]
            logger.warning("alert %s: no still from the intercom within %.0f s", alert_id,
                           SNAPSHOT_WAIT_S)
        if over or stale or late:
            await self._save(now)

    # --- stills after a fall or SOS ---------------------------------------------------------

    async def alert_opened(self, alert: Alert, now: float) -> None:
        """A fall or SOS: ask the intercoms for one still, where everyone consented."""
        f = alert.finding
        if f.event not in SNAPSHOT_EVENTS or alert.id in self.asked:
            return  # a fall is asked when it opens, not again when its window ends
        devices = self.devices()
        if not devices or not self.consents("snapshot_consent"):
            return  # without consent the intercom is never asked
        self.asked.append(alert.id)
        del self.asked[:-SEEN_KEPT]
        self.snapshots[alert.id] = now + SNAPSHOT_WAIT_S
        for d in devices:
            error = await self._command(d, {"snapshot": {"request_id": alert.id}})
            if error is not None:
                logger.warning("alert %s: still not asked of %s: %s", alert.id, d.id, error)
        await self._save(now)

    async def _snapshot(self, obs: Observation, now: float) -> None:
        value = obs.value
        assert isinstance(value, dict)  # checked by the adapter
        alert_id = value.get("request_id")
        if not self.consents("snapshot_consent"):
            logger.warning("still from %s dropped: the residents have not consented",
                           obs.device)
            return
        if alert_id not in self.snapshots:
            logger.warning("still from %s dropped: nobody asked for it (request %s)",
                           obs.device, alert_id)
            return
        del self.snapshots[alert_id]
        snap = {"ref": value["ref"], "taken_at": wire.iso(value["taken_at"], self.gw.tz)}
        await self.gw.attach_snapshot(alert_id, snap, now)
