"""Payload adapters: pure functions from one MQTT message to Observations.

Every adapter has the signature

    adapt(device, model, topic, payload, received_at) -> list[Observation]

and raises `PayloadError` naming what was wrong. When part of a message could still be read
(a smoke alarm next to a garbled battery value), the error carries those Observations in
`partial`: the gateway quarantines the message *and* acts on what was readable, because
dropping a fire alarm over a bad battery field would be the wrong way round.
"""

from collections.abc import Callable

from devices.adapters import native, zigbee2mqtt
from devices.catalogue import Model
from devices.observation import Observation
from devices.registry import Device

Adapter = Callable[[Device, Model, str, bytes, float], list[Observation]]

ADAPTERS: dict[str, Adapter] = {
    "zigbee2mqtt": zigbee2mqtt.adapt,
    "anxin": native.adapt,
}

__all__ = ["ADAPTERS", "Adapter"]
