"""The transport interface: deliver one encoded alert body (or intercom event), or say why
not."""

from __future__ import annotations

from abc import ABC, abstractmethod


class DeliveryError(Exception):
    """The hotline did not acknowledge the message; it will be retried."""


class Transport(ABC):
    """Sends alert bodies to one hotline target. `send` returns only on acknowledgement."""

    name: str

    async def start(self) -> None:  # noqa: B027 (optional hook)
        """Open connections (optional)."""

    async def close(self) -> None:  # noqa: B027 (optional hook)
        """Release connections (optional)."""

    # Whether the target takes `anxin.intercom/1` events (webhook, MQTT uplink); an alarm
    # receiver (DC-09) or a phone (SMS) has no use for a call's signalling.
    carries_intercom = False

    @abstractmethod
    async def send(self, body: bytes) -> None:
        """Deliver `body`; raise DeliveryError unless the receiver acknowledged it."""

    async def send_intercom(self, body: bytes) -> None:
        """Deliver one `anxin.intercom/1` event; raise DeliveryError unless acknowledged."""
        raise DeliveryError(f"{self.name} carries no intercom events")
