"""Reading a message's bytes: the size limit, UTF-8 text, a JSON object (pure; shared by the
adapters and the raw signal block readers)."""

from __future__ import annotations

import json
from typing import Any

from devices.observation import PayloadError

MAX_PAYLOAD_BYTES = 64 * 1024
"""Larger messages are refused unread: no sensor state is anywhere near this size."""


def text(payload: bytes) -> str:
    """The payload as UTF-8 text, or PayloadError."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise PayloadError(f"payload is {len(payload)} bytes; the limit is {MAX_PAYLOAD_BYTES}")
    try:
        return payload.decode("utf-8")
    except UnicodeDecodeError as e:
        raise PayloadError(f"payload is not UTF-8 text (byte {e.start}: {e.reason})") from None


def json_object(payload: bytes) -> dict[str, Any]:
    """The payload as a JSON object, or PayloadError naming the parse problem."""
    s = text(payload)
    try:
        msg = json.loads(s)
    except json.JSONDecodeError as e:
        # Truncated messages end up here: "Expecting ',' delimiter at line 1 column 40".
        raise PayloadError(f"payload is not valid JSON: {e.msg} at line {e.lineno} "
                           f"column {e.colno}") from None
    except RecursionError:
        raise PayloadError("payload JSON is nested too deeply") from None
    if not isinstance(msg, dict):
        raise PayloadError(f"payload must be a JSON object, got {type(msg).__name__}")
    return msg
