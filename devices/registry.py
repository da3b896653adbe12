"""The device registry model: a configured device bound to its catalogue entry."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Device:
    """One commissioned device in one home.

    `topic` is where its state arrives; `model` is the catalogue model id (as Zigbee2MQTT
    names it, or an anxin-native model id).
    """

    id: str
    home: str
    source: str
    topic: str
    model: str
    room: str | None = None
    name: str | None = None
