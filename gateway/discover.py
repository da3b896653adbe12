"""Discovery: what Zigbee2MQTT has paired, matched against the catalogue and the config.

Zigbee2MQTT keeps the list of paired devices as a retained message on
`<base>/bridge/devices`: a JSON array of objects with `ieee_address`, `friendly_name`,
`type` (Coordinator / Router / EndDevice), `interview_completed`, `supported` and a
`definition` (`model`, `vendor`, `description`, `exposes`). The technician's question is:
which of these does anxin know, which are already commissioned, and which are not.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from devices.catalogue import find_model, model_from_exposes


class DiscoveryError(ValueError):
    """bridge/devices could not be read; says why."""


@dataclass(frozen=True, slots=True)
class Found:
    """One paired device as Zigbee2MQTT reports it, and what anxin makes of it."""

    friendly_name: str
    ieee_address: str
    model: str | None
    vendor: str | None
    description: str | None
    interviewed: bool
    in_catalogue: bool
    configured_as: str | None  # the [[devices]] id using its topic, if any
    exposes: tuple[str, ...]  # the properties it exposes (for models anxin does not know)
    # For a model not in the catalogue: the classes it is mapped to from its exposes, or
    # why it cannot be (nothing anxin watches).
    mapped_classes: tuple[str, ...] = ()
    unmappable: str | None = None
    firmware: str | None = None  # software_build_id, for the commissioning report
    date_code: str | None = None
    power_source: str | None = None  # "Battery", "Mains (single phase)", …

    @property
    def usable(self) -> bool:
        """Whether anxin can watch it: in the catalogue, or mapped from its exposes."""
        return self.in_catalogue or bool(self.mapped_classes)

    def device_fields(self, base: str) -> dict[str, Any]:
        """The [[devices]] fields for it: source, topic, model (and exposes if mapped)."""
        if not self.interviewed or self.model is None:
            raise DiscoveryError(f"{self.friendly_name}: Zigbee2MQTT has not finished "
                                 "interviewing it; wait a moment and retry")
        if not self.usable:
            raise DiscoveryError(f"{self.friendly_name}: {self.unmappable}")
        fields: dict[str, Any] = {"source": "zigbee2mqtt", "model": self.model,
                                  "topic": f"{base}/{self.friendly_name}"}
        if not self.in_catalogue:
            fields["exposes"] = list(self.exposes)
        return fields


def pick(found: list[Found], name: str) -> Found:
    """The paired device called `name` (friendly name or IEEE address)."""
    hit = next((f for f in found if name in (f.friendly_name, f.ieee_address)), None)
    if hit is None:
        raise DiscoveryError(f"Zigbee2MQTT has no device {name!r} (paired: "
                             f"{', '.join(f.friendly_name for f in found) or 'none'})")
    return hit


@dataclass(frozen=True, slots=True)
class BridgeEvent:
    """One pairing event from `<base>/bridge/event`, as a technician sees it."""

    type: str  # device_joined, device_interview, device_announce, device_leave
    friendly_name: str
    ieee_address: str
    status: str | None  # for device_interview: started, successful, failed
    model: str | None  # once the interview succeeded
    supported: bool | None


def parse_bridge_event(payload: bytes) -> BridgeEvent:
    """`{"type": "device_interview", "data": {"friendly_name": …, "status": …}}`."""
    try:
        event = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DiscoveryError(f"bridge/event is not JSON: {e}") from None
    if not isinstance(event, dict) or not isinstance(event.get("data"), dict) \
            or not isinstance(event.get("type"), str):
        raise DiscoveryError("bridge/event has no type and data")
    data = event["data"]
    definition = data.get("definition") if isinstance(data.get("definition"), dict) else {}
    supported = data.get("supported")
    return BridgeEvent(
        type=event["type"], friendly_name=str(data.get("friendly_name") or "?"),
        ieee_address=str(data.get("ieee_address") or ""),
        status=str(data["status"]) if "status" in data else None,
        model=definition.get("model"),
        supported=supported if isinstance(supported, bool) else None)


def _properties(exposes: list[Any]) -> list[str]:
    out: list[str] = []
    for e in exposes or []:
        if not isinstance(e, dict):
            continue
        if "property" in e:
            out.append(str(e["property"]))
        out += _properties(e.get("features", []))  # composite exposes nest their features
    return out


def parse_bridge_devices(payload: bytes, base: str,
                         configured: dict[str, str]) -> list[Found]:
    """The paired devices (the coordinator left out); `configured` maps topic -> device id."""
    try:
        devices = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DiscoveryError(f"{base}/bridge/devices is not JSON: {e}") from None
    if not isinstance(devices, list):
        raise DiscoveryError(f"{base}/bridge/devices is not a JSON array")
    found = []
    for d in devices:
        if not isinstance(d, dict) or d.get("type") == "Coordinator":
            continue
        definition = d.get("definition") or {}
        model = definition.get("model")
        name = str(d.get("friendly_name") or d.get("ieee_address") or "?")
        exposes = tuple(dict.fromkeys(_properties(definition.get("exposes", []))))
        in_catalogue = model is not None and find_model(model) is not None
        mapped: tuple[str, ...] = ()
        unmappable = None
        if not in_catalogue:
            try:
                mapped = model_from_exposes(model or name, exposes).classes
            except ValueError as e:
                unmappable = str(e)
        found.append(Found(
            friendly_name=name, ieee_address=str(d.get("ieee_address", "")), model=model,
            vendor=definition.get("vendor"), description=definition.get("description"),
            interviewed=bool(d.get("interview_completed")),
            in_catalogue=in_catalogue, configured_as=configured.get(f"{base}/{name}"),
            exposes=exposes, mapped_classes=mapped, unmappable=unmappable,
            firmware=_text(d.get("software_build_id")), date_code=_text(d.get("date_code")),
            power_source=_text(d.get("power_source"))))
    return sorted(found, key=lambda f: (f.configured_as is not None, f.friendly_name))


def _text(v: Any) -> str | None:
    return None if v is None or v == "" else str(v)
