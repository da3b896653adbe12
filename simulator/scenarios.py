"""Scenarios: scripted days in a simulated home, as TOML files.

    name = "smoke_kitchen"
    description = "厨房起火：烟雾报警器报警 / Fire in the kitchen"
    duration_s = 60                 # how long the scenario runs (>= the last step)

    [[steps]]
    at = 5                          # seconds from the start
    room = "kitchen"                # the device in this room that reports `kind` ...
    # device = "smoke-kitchen"      # ... or name the device; with neither, the first
                                    # configured device that reports `kind` (a worn button)
    kind = "smoke"                  # an Observation kind (devices/observation.py KINDS)
    value = true
    say = "厨房冒烟，烟雾报警器响了"     # optional narration shown while it runs

    [expect]                        # what the gateway must do; the tests check it
    alerts = ["smoke"]              # events sent to the hotline, in order
    cancelled = []                  # events recorded as cancelled by the resident

Built-in scenarios live beside this file in `scenarios/`; any path to a .toml works too.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devices.observation import KINDS, PayloadError, check_value

BUILTIN_DIR = Path(__file__).parent / "scenarios"


class ScenarioError(ValueError):
    """A scenario that cannot be run; the message names the file and key path."""


@dataclass(frozen=True, slots=True)
class Step:
    """One thing that happens at `at` seconds."""

    at: float
    kind: str
    value: Any
    room: str | None = None
    device: str | None = None
    say: str | None = None


@dataclass(frozen=True, slots=True)
class Expect:
    """What the gateway must make of the scenario."""

    alerts: tuple[str, ...] = ()
    cancelled: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Scenario:
    """A scripted sequence of steps."""

    name: str
    description: str
    duration_s: float
    steps: tuple[Step, ...]
    expect: Expect = field(default_factory=Expect)
    source: str = ""


def builtin_names() -> list[str]:
    """The names of the scenarios shipped with anxin."""
    return sorted(p.stem for p in BUILTIN_DIR.glob("*.toml"))


def load_scenario(name_or_path: str | Path) -> Scenario:
    """A built-in scenario by name, or a scenario file by path."""
    path = Path(name_or_path)
    if path.suffix != ".toml":
        builtin = BUILTIN_DIR / f"{name_or_path}.toml"
        if not builtin.exists():
            raise ScenarioError(f"no scenario {str(name_or_path)!r}: built-in ones are "
                                f"{', '.join(builtin_names())}, or give a path to a .toml file")
        path = builtin
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise ScenarioError(f"{path}: cannot read: {e.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ScenarioError(f"{path}: not valid TOML: {e}") from None
    return parse_scenario(data, str(path))


def _keys(where: str, table: dict[str, Any], allowed: set[str], source: str) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise ScenarioError(f"{source}: {where}{unknown[0]}: unknown key (allowed: "
                            f"{', '.join(sorted(allowed))})")


def _typed(source: str, path: str, value: Any, types: type | tuple[type, ...],
           what: str) -> Any:
    if isinstance(value, bool) and bool not in (types if isinstance(types, tuple) else (types,)):
        raise ScenarioError(f"{source}: {path}: expected {what}, got {value!r}")
    if not isinstance(value, types):
        raise ScenarioError(f"{source}: {path}: expected {what}, got {value!r}")
    return value


def parse_scenario(data: dict[str, Any], source: str = "<scenario>") -> Scenario:
    """Check a scenario table and build it; ScenarioError names the key path."""
    _keys("", data, {"name", "description", "duration_s", "steps", "expect"}, source)
    name = _typed(source, "name", data.get("name", Path(source).stem), str, "a string")
    description = _typed(source, "description", data.get("description", ""), str, "a string")
    raw_steps = _typed(source, "steps", data.get("steps", []), list, "a list of [[steps]]")
    steps: list[Step] = []
    for i, s in enumerate(raw_steps):
        p = f"steps[{i}]"
        _typed(source, p, s, dict, "a table")
        _keys(f"{p}.", s, {"at", "kind", "value", "room", "device", "say"}, source)
        for required in ("at", "kind", "value"):
            if required not in s:
                raise ScenarioError(f"{source}: {p}.{required}: missing")
        at = float(_typed(source, f"{p}.at", s["at"], (int, float), "seconds (a number)"))
        if at < 0:
            raise ScenarioError(f"{source}: {p}.at: must be >= 0, got {at}")
        kind = _typed(source, f"{p}.kind", s["kind"], str, "a string")
        if kind not in KINDS:
            raise ScenarioError(f"{source}: {p}.kind: unknown kind {kind!r} (one of "
                                f"{', '.join(KINDS)})")
        try:
            value = check_value(kind, s["value"])
        except PayloadError as e:
            raise ScenarioError(f"{source}: {p}.value: {e}") from None
        room = s.get("room")
        device = s.get("device")
        if room is not None and device is not None:
            raise ScenarioError(f"{source}: {p}: give room or device, not both")
        if room is not None:
            _typed(source, f"{p}.room", room, str, "a string")
        if device is not None:
            _typed(source, f"{p}.device", device, str, "a string")
        say = s.get("say")
        if say is not None:
            _typed(source, f"{p}.say", say, str, "a string")
        steps.append(Step(at, kind, value, room, device, say))
    if steps != sorted(steps, key=lambda st: st.at):
        raise ScenarioError(f"{source}: steps: must be in order of `at`")
    last = steps[-1].at if steps else 0.0
    duration = float(_typed(source, "duration_s", data.get("duration_s", last), (int, float),
                            "seconds (a number)"))
    if duration < last:
        raise ScenarioError(f"{source}: duration_s: {duration} is before the last step "
                            f"({last})")
    ex = _typed(source, "expect", data.get("expect", {}), dict, "a table")
    _keys("expect.", ex, {"alerts", "cancelled"}, source)
    expect = Expect(
        tuple(_typed(source, "expect.alerts", ex.get("alerts", []), list, "a list")),
        tuple(_typed(source, "expect.cancelled", ex.get("cancelled", []), list, "a list")))
    return Scenario(name, description, duration, tuple(steps), expect, source)
