"""The weekly self-test of the alarm buttons (JGJ/T 484 asks for weekly tests of call buttons).

Once a week, at a convenient hour, the home's speaker asks the resident to press each alarm
button once. The first press of each button in the test window is the test: it travels to the
centre as a test alert (so the whole path is proved, not only the button) and is ticked off.
A second press of the same button within the window is a real call — a resident who needs help
during the test must not be told it was only a test. At the end of the window (or as soon as
every button has been pressed) the result is recorded; a button that sent nothing is a
maintenance trouble (`self_test_failed`) until it is heard from again.

Pure: `tick` for the passage of time, `press` for a button; both take `now` and return what
the gateway should do.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

# Said to the resident. Short sentences, one instruction each.
ASK = "每周按钮测试：请按一下您的紧急呼叫按钮。这是测试，不会叫人上门。"
REMIND = "每周按钮测试：请再按一下紧急呼叫按钮。"
THANKS = "按钮测试完成，一切正常，谢谢您。"
FAILED = "有的按钮没有收到信号，工作人员会和您联系。"
START_WITHIN_H = 3  # a gateway that was off at the hour starts the test up to 3 h late
FAILED_EVENT = "self_test_failed"


@dataclass(frozen=True, slots=True)
class SelfTestConfig:
    """Which buttons, and when: `weekday` 0 = Monday, `hour` local."""

    buttons: tuple[str, ...]
    weekday: int = 2
    hour: int = 10
    window_s: float = 1800.0
    remind_after_s: float = 600.0


@dataclass(slots=True)
class Run:
    """A self-test under way."""

    started_at: float
    buttons: tuple[str, ...]
    pressed: dict[str, float] = field(default_factory=dict)
    reminded: bool = False
    manual: bool = False

    @property
    def missing(self) -> list[str]:
        return [b for b in self.buttons if b not in self.pressed]


@dataclass(slots=True)
class SelfTestState:
    """The week of the last test started, and the test under way."""

    last_week: str | None = None  # ISO year-week, e.g. "2026-W48"
    run: Run | None = None


@dataclass(frozen=True, slots=True)
class Result:
    """A finished self-test: each button's press time (None: nothing came)."""

    started_at: float
    ended_at: float
    pressed: dict[str, float | None]
    manual: bool

    @property
    def failed(self) -> list[str]:
        return [b for b, at in self.pressed.items() if at is None]


@dataclass(frozen=True, slots=True)
class Step:
    """What the gateway should do: say something, record a result, or both."""

    say: str | None = None
    result: Result | None = None
    started: bool = False


def week_of(now: float, tz: ZoneInfo) -> str:
    y, w, _ = datetime.fromtimestamp(now, tz).isocalendar()
    return f"{y}-W{w:02d}"


def start(state: SelfTestState, cfg: SelfTestConfig, now: float, tz: ZoneInfo, *,
          manual: bool = False) -> Step:
    """Begin a self-test now (the schedule, or a technician asking for one)."""
    if state.run is not None or not cfg.buttons:
        return Step()
    state.last_week = week_of(now, tz)
    state.run = Run(now, cfg.buttons, manual=manual)
    return Step(say=ASK, started=True)


def tick(state: SelfTestState, cfg: SelfTestConfig, now: float, tz: ZoneInfo) -> Step:
    """Start this week's test at its hour; remind; finish when the window is over."""
    run = state.run
    if run is None:
        local = datetime.fromtimestamp(now, tz)
        if (cfg.buttons and local.weekday() == cfg.weekday
                and cfg.hour <= local.hour < cfg.hour + START_WITHIN_H
                and state.last_week != week_of(now, tz)):
            return start(state, cfg, now, tz)
        return Step()
    if now >= run.started_at + cfg.window_s:
        return _finish(state, now)
    if not run.reminded and run.missing and now >= run.started_at + cfg.remind_after_s:
        run.reminded = True
        return Step(say=REMIND)
    return Step()


def press(state: SelfTestState, device: str, now: float) -> tuple[bool, Step]:
    """A button was pressed: (whether this press is the test, what to do)."""
    run = state.run
    if run is None or device not in run.buttons or device in run.pressed:
        return False, Step()  # a real call
    run.pressed[device] = now
    if not run.missing:
        return True, _finish(state, now)
    return True, Step()


def _finish(state: SelfTestState, now: float) -> Step:
    run = state.run
    assert run is not None
    state.run = None
    result = Result(run.started_at, now, {b: run.pressed.get(b) for b in run.buttons},
                    run.manual)
    return Step(say=FAILED if result.failed else THANKS, result=result)
