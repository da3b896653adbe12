"""Finding: a detector's conclusion about a home, coded the way monitoring centres code events."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Finding:
    """A detector's conclusion.

    `code` is the Ademco Contact ID event code (111 smoke, 151 gas, 154 water, 101 personal
    emergency, 100 medical, used here for falls, 383 tamper, 384 low battery, ...); `event` is
    the machine name ("smoke", "fall", ...); `severity` runs from 1 (life) to 4 (technical).
    `test` marks a finding caused by a device self-test or a drill: it travels as `test: true`
    end to end and never reaches a real dispatch.
    """

    detector: str
    home: str
    code: int
    event: str
    severity: int
    at: float
    evidence: dict[str, Any] = field(default_factory=dict)
    room: str | None = None
    device: str | None = None
    resident: str | None = None
    test: bool = False
