"""The embedded MQTT broker (amqtt) for the one-command demo. A real install uses Mosquitto."""

from __future__ import annotations

import logging
from typing import Any

logger = logging.getLogger(__name__)


class EmbeddedBroker:
    """An in-process amqtt broker on host:port, anonymous, for the demo only."""

    def __init__(self, host: str = "127.0.0.1", port: int = 1883) -> None:
        self.host = host
        self.port = port
        self._broker: Any = None

    async def start(self) -> None:
        """Start listening; raise RuntimeError with a clear message if it cannot."""
        try:
            from amqtt.broker import Broker  # noqa: PLC0415 (optional dependency)
        except ImportError:
            raise RuntimeError("the embedded broker needs amqtt: pip install 'anxin[embedded]' "
                               "(or point [mqtt] url at Mosquitto)") from None
        # amqtt logs every connection at INFO; the demo's own output is what matters.
        for name in ("amqtt", "transitions"):
            logging.getLogger(name).setLevel(logging.WARNING)
        config = {
            "listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{self.port}"}},
            "sys_interval": 0,
            "plugins": {
                "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True},
            },
        }
        self._broker = Broker(config)
        try:
            await self._broker.start()
        except Exception as e:
            raise RuntimeError(f"embedded broker could not listen on {self.host}:{self.port}: "
                               f"{e}") from e
        logger.info("embedded MQTT broker on %s:%d (demo only; use Mosquitto in production)",
                    self.host, self.port)

    async def stop(self) -> None:
        """Stop the broker."""
        if self._broker is not None:
            await self._broker.shutdown()
            self._broker = None
