"""The 爱的眼睛 video intercom emulator: an MQTT client that speaks the intercom's documented
interface (devices/adapters/native.py) the way the device does.

It listens on `<topic>/set` for the gateway's commands and answers them by its behaviour:

- a ring (`{"ring": {"request_id", "from", "auto_answer"}}`): `answer` takes it after
  `answer_after_s` (and hangs up `talk_s` later: "answered", then "ended"); `ignore` lets it
  ring (the gateway decides it was missed); `decline` refuses it ("declined"); `ring_out`
  rings `ring_s` and reports "missed" itself. A ring with `auto_answer` is answered at once
  whatever the behaviour, as the device does where the residents consented.
- a snapshot request (`{"snapshot": {"request_id"}}`): it reports a reference to a still it
  "took" (`snapshot_ref`, made up per request: the picture itself would be on the centre's
  media server, never on MQTT), unless `snapshots` is off.

And its keys: `press_call()` (呼叫), `press_checkin()` (平安打卡), `press_sos()`. Everything it
publishes and every command it got are kept in `sent` and `commands`, for a test to read.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiomqtt

from devices.adapters.native import COMMAND_SUFFIX
from devices.catalogue import find_model
from devices.registry import Device

logger = logging.getLogger(__name__)

BEHAVIOURS = ("answer", "ignore", "decline", "ring_out")


@dataclass(slots=True)
class IntercomBehaviour:
    """How the emulated resident (and device) responds."""

    on_ring: str = "answer"  # one of BEHAVIOURS
    answer_after_s: float = 0.5  # the resident walking to the screen
    talk_s: float = 1.0  # how long the call lasts before "ended"
    ring_s: float = 30.0  # ring_out: the device gives up after this long
    snapshots: bool = True  # whether it answers a snapshot request
    snapshot_base: str = "https://media.centre.example/snap/"

    def __post_init__(self) -> None:
        if self.on_ring not in BEHAVIOURS:
            raise ValueError(f"on_ring {self.on_ring!r} is not one of {', '.join(BEHAVIOURS)}")


@dataclass(slots=True)
class IntercomEmulator:
    """One intercom on a broker; `async with` it, then press keys or wait for rings."""

    device: Device
    host: str
    port: int
    behaviour: IntercomBehaviour = field(default_factory=IntercomBehaviour)
    clock: Callable[[], float] = time.time
    sent: list[dict[str, Any]] = field(default_factory=list)
    commands: list[dict[str, Any]] = field(default_factory=list)
    _client: aiomqtt.Client | None = None
    _listener: asyncio.Task[None] | None = None
    _calls: set[asyncio.Task[None]] = field(default_factory=set)

    def __post_init__(self) -> None:
        model = find_model(self.device.model)
        if model is None or model.model != "anxin-intercom":
            raise ValueError(f"{self.device.id} is a {self.device.model}, not an "
                             "anxin-intercom")

    @property
    def command_topic(self) -> str:
        """Where the gateway's commands arrive."""
        return self.device.topic + COMMAND_SUFFIX

    async def __aenter__(self) -> IntercomEmulator:
        self._client = aiomqtt.Client(self.host, self.port,
                                      identifier=f"anxin-sim-intercom-{self.device.id}")
        await self._client.__aenter__()
        await self._client.subscribe(self.command_topic, qos=1)
        self._listener = asyncio.create_task(self._listen(), name=f"intercom-{self.device.id}")
        await self._online()
        return self

    async def __aexit__(self, *exc: object) -> None:
        for task in (*self._calls, *([self._listener] if self._listener else [])):
            task.cancel()
        for task in (*self._calls, *([self._listener] if self._listener else [])):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._client is not None:
            await self._client.__aexit__(None, None, None)
            self._client = None

    async def _online(self) -> None:
        assert self._client is not None
        await self._client.publish(f"{self.device.topic}/availability",
                                   json.dumps({"state": "online"}).encode(), qos=1,
                                   retain=True)

    async def publish(self, props: dict[str, Any]) -> None:
        """Publish properties on the device's topic with its clock (`ts`), QoS 1."""
        assert self._client is not None
        msg = {**props, "ts": round(self.clock(), 3)}
        self.sent.append(msg)
        await self._client.publish(self.device.topic, json.dumps(msg).encode(), qos=1)

    async def press_call(self) -> None:
        """The resident presses 呼叫 (call the centre)."""
        await self.publish({"intercom": "call"})

    async def press_checkin(self) -> None:
        """The resident presses 平安打卡 (the daily check-in)."""
        await self.publish({"checkin": True})

    async def press_sos(self) -> None:
        """The resident presses the SOS key."""
        await self.publish({"sos": True})

    async def _listen(self) -> None:
        assert self._client is not None
        async for message in self._client.messages:
            payload = message.payload if isinstance(message.payload, bytes) else b""
            try:
                command = json.loads(payload)
            except ValueError:
                logger.warning("intercom %s: unreadable command %r", self.device.id, payload)
                continue
            if not isinstance(command, dict):
                continue
            self.commands.append(command)
            if isinstance(command.get("ring"), dict):
                self._start(self._ring(command["ring"]))
            elif isinstance(command.get("snapshot"), dict):
                self._start(self._snapshot(command["snapshot"]))

    def _start(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._calls.add(task)
        task.add_done_callback(self._calls.discard)

    async def _ring(self, ring: dict[str, Any]) -> None:
        b, rid = self.behaviour, ring.get("request_id")
        if ring.get("auto_answer") is True:
            await self.publish({"intercom": "answered", "request_id": rid})
        elif b.on_ring == "ignore":
            return
        elif b.on_ring == "decline":
            await asyncio.sleep(b.answer_after_s)
            await self.publish({"intercom": "declined", "request_id": rid})
            return
        elif b.on_ring == "ring_out":
            await asyncio.sleep(b.ring_s)
            await self.publish({"intercom": "missed", "request_id": rid})
            return
        else:
            await asyncio.sleep(b.answer_after_s)
            await self.publish({"intercom": "answered", "request_id": rid})
        await asyncio.sleep(b.talk_s)
        await self.publish({"intercom": "ended", "request_id": rid})

    async def _snapshot(self, request: dict[str, Any]) -> None:
        if not self.behaviour.snapshots:
            return
        rid = request.get("request_id")
        await self.publish({"snapshot": {"ref": f"{self.behaviour.snapshot_base}{rid}.jpg",
                                         "taken_at": round(self.clock(), 3),
                                         "request_id": rid}})
