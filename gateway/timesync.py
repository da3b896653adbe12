"""Whether the wall clock can be trusted, the receivers' clocks, and re-basing on a clock step.

A Raspberry Pi has no real-time clock: it boots at 1970, at the image's build date, or at
fake-hwclock's / systemd-timesyncd's last saved time (hours or months behind), and the clock
JUMPS when NTP first synchronises. anxin handles this in three places:

1. Trust. `os_synchronized()` asks the OS whether its clock is synchronised (the kernel's
   adjtimex state — what `timedatectl show -p NTPSynchronized` reads — and the file
   systemd-timesyncd touches on every sync, /run/systemd/timesync/synchronized); `floor()`
   is the earliest the time can be (the release date, timesyncd's saved clock, the newest
   time in the store). The gateway's clock (gateway/clock.py `SteadyClock`) never starts
   before the floor, and `anxin status` / the technician page show what it is sure of.

2. Durations. The runtime's time runs on the monotonic clock, anchored to the wall clock
   (`SteadyClock`), so it never jumps on its own. When the wall clock steps (NTP), the
   runtime re-anchors to it and shifts every open timer and remembered time in the domain
   state by the same step (`shift_state`): a quiet spell that had lasted 20 minutes still
   has, and a months-long forward jump is not months of inactivity, nor a jump backwards a
   frozen timer. Alerts raised before the step get their times corrected too, in memory,
   in the store and in messages not yet sent (`shift_stored`). Which fields are times is
   an explicit table, checked by tests/test_gateway_timesync.py against every state class.

3. Sending. A receiver refuses a signed message whose timestamp is more than five minutes
   from its own clock. Each transport keeps a `PeerClock`: the receiver's time as last
   learned (an HTTP response's Date header, a DC-09 NAK's timestamp, a signed feedback
   answer), kept on the monotonic clock, so a gateway whose clock is days wrong signs with
   the receiver's time and is heard; the body says whether the gateway's clock was
   synchronised and how long ago, by the monotonic clock, the event happened (`age_s`).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import json
import logging
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

from alerts import wire
from alerts.alert import Alert
from alerts.manager import Manager
from alerts.selftest import SelfTestState
from detectors.activity import _BLIP_FIELDS  # the order a blip's `before` is kept in
from detectors.core import Core

logger = logging.getLogger(__name__)

# No anxin release is older than this (2026-11-01 00:00 UTC): a clock before it is unset.
RELEASE_FLOOR = 1_793_491_200.0
TIMESYNCD_SYNCHRONIZED = Path("/run/systemd/timesync/synchronized")
TIMESYNCD_CLOCK = Path("/var/lib/systemd/timesync/clock")  # its mtime: the last sync
PEER_TOLERANCE_S = 2.0  # an HTTP Date has whole seconds, and a round trip takes some

_TIME_ERROR = 5  # adjtimex(2): the clock is not synchronised (STA_UNSYNC set)


@functools.cache
def _adjtimex_call() -> Callable[[Any], int] | None:
    """libc's adjtimex, looked up once (find_library runs ldconfig)."""
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        return ctypes.CDLL(name, use_errno=True).adjtimex  # type: ignore[no-any-return]
    except (OSError, AttributeError):
        return None


@functools.cache
def _seccomp_filtered() -> bool:
    """Whether a seccomp filter confines this process (systemd's SystemCallFilter=)."""
    try:
        status = Path("/proc/self/status").read_text(encoding="ascii", errors="replace")
    except OSError:
        return True  # cannot tell: assume confined
    return any(line.split()[1:2] == ["2"] for line in status.splitlines()
               if line.startswith("Seccomp:"))


def _adjtimex_state() -> int | None:
    """adjtimex(2) with no changes: the kernel's clock state, or None if it cannot be read.

    Under a seccomp filter it is not called at all: ProtectClock= blocks adjtimex even to
    read, and without SystemCallErrorNumber= a blocked call kills the process."""
    adjtimex = None if _seccomp_filtered() else _adjtimex_call()
    if adjtimex is None:
        return None
    buf = ctypes.create_string_buffer(512)  # struct timex; modes = 0 (the first field): read
    state = adjtimex(buf)
    return None if state < 0 else int(state)


def os_synchronized(*, adjtimex: Callable[[], int | None] = _adjtimex_state,
                    flag: Path = TIMESYNCD_SYNCHRONIZED) -> bool | None:
    """Whether the OS says its clock is synchronised (True/False), or None if it cannot say.

    The kernel's state is asked first: NTP daemons (timesyncd, chrony, ntpd) clear
    STA_UNSYNC once they discipline the clock. Where that call is forbidden, the file
    systemd-timesyncd touches on each successful sync is the sign."""
    state = adjtimex()
    if state is not None:
        return state != _TIME_ERROR
    try:
        flag.stat()
    except FileNotFoundError:
        return False if flag.parent.exists() else None
    except OSError:
        return None
    return True


def floor(*stamps: float | None, saved_clock: Path = TIMESYNCD_CLOCK) -> float:
    """The earliest the time can be now: the release date, timesyncd's last saved clock,
    and any time the gateway itself recorded (e.g. the newest row in its store)."""
    known = [RELEASE_FLOOR, *(s for s in stamps if s is not None and math.isfinite(s))]
    with contextlib.suppress(OSError):
        known.append(saved_clock.stat().st_mtime)
    return max(known)


@dataclass(frozen=True, slots=True)
class ClockStatus:
    """What the gateway knows about its clock, for `anxin status` and the technician page."""

    synchronized: bool | None  # the OS says so (None: it cannot say)
    plausible: bool  # not before the floor
    floor: float
    steps: int  # wall-clock steps seen since the start
    last_step_s: float | None  # the size of the last one (+ forward)

    @property
    def trusted(self) -> bool:
        """Synchronised per the OS, or (where the OS cannot say) at least not before the
        floor. A clock the OS says is not synchronised is not trusted, however plausible."""
        return self.synchronized is True or (self.synchronized is None and self.plausible)

    def summary(self) -> dict[str, Any]:
        """A plain dict (status.json)."""
        return {"trusted": self.trusted, "synchronized": self.synchronized,
                "plausible": self.plausible, "floor": self.floor, "steps": self.steps,
                "last_step_s": self.last_step_s}


class PeerClock:
    """A receiver's clock as last learned, kept against the monotonic clock so that the
    gateway's own wall clock stepping does not spoil it. Until something is learned (or
    while the receiver agrees with us), it is our wall clock."""

    def __init__(self, name: str, *, wall: Callable[[], float] = time.time,
                 ticks: Callable[[], float] = time.monotonic) -> None:
        self.name = name
        self._wall = wall
        self._ticks = ticks
        self._offset: float | None = None  # receiver time - monotonic, when we disagree

    def now(self) -> float:
        """The receiver's time now, as well as we know it."""
        return self._wall() if self._offset is None else self._ticks() + self._offset

    @property
    def learned(self) -> bool:
        """Whether the receiver's time is known to differ from our wall clock."""
        return self._offset is not None

    @property
    def skew_s(self) -> float:
        """How far the receiver's clock is ahead of our wall clock (0: agreeing)."""
        return 0.0 if self._offset is None else self.now() - self._wall()

    def mark(self) -> float:
        """The monotonic time now: take it before a request, give it to `learn`."""
        return self._ticks()

    def learn(self, peer_time: float, sent: float, *, quiet: bool = False) -> bool:
        """The receiver said its time was `peer_time` during the exchange that began at
        monotonic `sent`; True if what we sign with changed (logged unless `quiet`: the
        caller says it its own way)."""
        mid = (sent + self._ticks()) / 2
        offset = peer_time - mid
        wall_offset = self._wall() - self._ticks()
        new = None if abs(offset - wall_offset) <= PEER_TOLERANCE_S else offset
        if new is None and self._offset is None:
            return False
        if new is not None and self._offset is not None and \
                abs(new - self._offset) <= PEER_TOLERANCE_S:
            return False
        if quiet:
            pass
        elif new is None:
            logger.warning("receiver %s agrees with our clock again", self.name)
        else:
            logger.warning("receiver %s's clock is %+.0f s from ours: signing with its time",
                           self.name, new - wall_offset)
        self._offset = new
        return True

    def learn_http_date(self, date: str | None, sent: float) -> bool:
        """Learn from an HTTP response's Date header (RFC 9110: an origin server with a
        clock sends one on every response); False if there was none to read."""
        if not date:
            return False
        try:
            peer = parsedate_to_datetime(date).timestamp()
        except (TypeError, ValueError, IndexError, OverflowError):
            return False
        return self.learn(peer + 0.5, sent)  # whole seconds: the middle of that second


# --- re-basing the domain state on a clock step ------------------------------------------
#
# Every attribute of the domain's state classes that holds a time on the gateway's clock,
# by class. Durations, device times (an IMU's or bed sensor's own sample clock) and
# dates are not here. tests/test_gateway_timesync.py fails when a state class gains a
# float field that is in neither this table nor NOT_TIMES, so a new timer cannot be missed.

TIMES: dict[str, tuple[str, ...]] = {
    "ActivityState": ("mode_since", "last_at", "door_closed_at", "night_exit_at",
                      "out_of_bed_at", "up_seen_at", "up_last_at", "watching_since",
                      "not_returned_for", "up_at", "due_at", "away_pressed_at", "inside_since",
                      "inside_last", "bed_moved_at", "bed_still_for"),
    "_Blip": ("first", "last"),
    "SupervisionState": ("started_at",),
    "_Device": ("contact_since",),
    "DeviceMemory": ("suspected_at",),
    "BedState": ("raw_at", "zero_rr_since"),
    "Alert": ("cancel_deadline", "tier_at", "notified_at"),
    "Run": ("started_at",),
}
# Float fields that are not times on the gateway's clock, and why.
NOT_TIMES: dict[str, tuple[str, ...]] = {
    "DeviceFall": ("epoch", "rate"),  # device time; samples per second
    "Analyser": ("rate_hz", "t0", "last_t", "last_motion_t", "last_breath_t",
                 "last_pause_t", "last_heart_t", "last_life_t",  # the bed sensor's time
                 "ref_h", "ref_b"),  # signal amplitudes
    "Episode": ("since", "last", "good_s", "normal_since"),  # assessment (sensor) times
    "BlockAssembler": ("reorder_s", "restart_s", "_end", "_newest", "_rate"),  # device time
}
_ZERO_IS_NEVER = frozenset({"up_last_at", "due_at", "inside_last"})  # 0.0 means "not yet"
_BLIP_TIMES = frozenset({"last_at", "door_closed_at", "mode_since", "night_exit_at"})


def _shift_fields(obj: Any, dt: float) -> None:
    for name in TIMES[type(obj).__name__]:
        value = getattr(obj, name)
        if value is None or (value == 0.0 and name in _ZERO_IS_NEVER):
            continue
        setattr(obj, name, value + dt)


def _shift_assembler(assembler: Any, dt: float) -> None:
    # A block waiting to be put back in order remembers when it arrived (gateway time): a
    # step backwards left unshifted would hold a fall's samples for the length of the step.
    assembler._waiting = [(t0, n, b, arrived + dt, key)
                          for t0, n, b, arrived, key in assembler._waiting]


def shift_alert(alert: Alert, dt: float) -> None:
    """Move an alert's times (finding, history, timers) by `dt` seconds."""
    _shift_fields(alert, dt)
    alert.finding = replace(alert.finding, at=alert.finding.at + dt)
    alert.history = [(state, at + dt, note) for state, at, note in alert.history]


def shift_state(dt: float, core: Core, manager: Manager, self_test: SelfTestState) -> list[Alert]:
    """Move every remembered time of the detectors, the alert manager and the self-test by
    `dt` seconds (the wall clock stepped by `dt` and the gateway's clock follows): elapsed
    times stay what they were. Returns the alerts that were moved (to store again)."""
    a = core.activity
    _shift_fields(a, dt)
    if a.due_for is not None and a.due_for[0] is not None:
        a.due_for = (a.due_for[0] + dt, a.due_for[1])
    a.changes = [(before, after, at + dt) for before, after, at in a.changes]
    a.blips = [{**b, "at": b["at"] + dt} for b in a.blips]
    if a.blip is not None:
        _shift_fields(a.blip, dt)
        a.blip.before = tuple(v + dt if n in _BLIP_TIMES and v is not None else v
                              for n, v in zip(_BLIP_FIELDS, a.blip.before, strict=True))
    s = core.supervision
    _shift_fields(s, dt)
    s.last_seen = {d: t + dt for d, t in s.last_seen.items()}
    s.offline = {d: t + dt for d, t in s.offline.items()}
    for dev in core.health.devices.values():
        _shift_fields(dev, dt)
    for mem in core.instant.devices.values():
        _shift_fields(mem, dt)
    for fall in core.fall_imu.devices.values():
        _shift_assembler(fall.assembler, dt)
    for bed in core.vitals.beds.values():
        _shift_fields(bed, dt)
        _shift_assembler(bed.assembler, dt)
    run = self_test.run
    if run is not None:
        _shift_fields(run, dt)
        run.pressed = {b: t + dt for b, t in run.pressed.items()}
    return _shift_manager(manager, dt)


def _shift_manager(manager: Manager, dt: float) -> list[Alert]:
    moved: dict[str, Alert] = {}
    recent = manager._recent
    for alert in (*manager.pending.values(), *manager.watch.values(),
                  *(a for a, _ in recent.values())):
        if alert.id not in moved:
            shift_alert(alert, dt)
            moved[alert.id] = alert
    manager._recent = {k: (a, t + dt) for k, (a, t) in recent.items()}
    return list(moved.values())


def shift_admission(admission: Any, dt: float) -> None:
    """Move the ingest rate limiter's readings of the gateway's clock by `dt` (gateway/ingest.py
    measures rates on it): after a step back, a bucket would refill nothing for the length of
    the step, and a motion sensor past its burst would be shed all that while."""
    for bucket in admission.buckets.values():
        bucket.at += dt
        bucket.last_shed += dt if bucket.last_shed else 0.0
        bucket.flood_at += dt if bucket.flood_at else 0.0
        bucket.flood_since += dt if bucket.flood_since else 0.0


# --- what was stored on the old clock --------------------------------------------------------


def high_water(store: Any) -> dict[str, int]:
    """The last row ids of the observations and outbox tables (run on the store thread): rows
    after these were written by this process, on its clock."""
    conn = store.conn
    return {t: conn.execute(f"SELECT coalesce(max(id), 0) FROM {t}").fetchone()[0]  # noqa: S608
            for t in ("observations", "outbox")}


def newest_stamp(store: Any) -> float | None:
    """The newest time the store holds (run on the store thread): a floor for the clock."""
    conn = store.conn
    stamps = [conn.execute(q).fetchone()[0] for q in (
        "SELECT max(at) FROM observations", "SELECT max(created_at) FROM outbox")]
    return max((s for s in stamps if s is not None), default=None)


def shift_stored(store: Any, dt: float, after: dict[str, int], alerts: Iterable[Alert],
                 now: float, fix_body: Callable[[bytes, float], bytes]) -> int:
    """After a clock step of `dt`: move the times of observations this process stored, save
    the moved alerts, and correct the unsent messages (run on the store thread, one
    transaction). Returns how many unsent messages were corrected."""
    conn = store.conn
    with store._tx(durable=True):
        conn.execute("UPDATE observations SET at = at + ? WHERE id > ?",
                     (dt, after["observations"]))
        rows = conn.execute("SELECT id, body FROM outbox WHERE acked_at IS NULL AND id > ?",
                            (after["outbox"],)).fetchall()
        conn.executemany("UPDATE outbox SET body = ? WHERE id = ?",
                         [(fix_body(body, dt), row_id) for row_id, body in rows])
    for alert in alerts:
        store.save_alert(alert, now)
    return len(rows)



# --- the times inside an anxin.alert/1 body ----------------------------------------------------


def _moved(stamp: str, dt: float) -> str:
    return (datetime.fromisoformat(stamp) + timedelta(seconds=dt)).isoformat(
        timespec="milliseconds")


def shift_body(body: bytes, dt: float, synced: bool) -> bytes:
    """An unsent alert body with its times moved by `dt` (the clock stepped), and its clock
    field saying whether they can now be trusted. A body that is not an alert is kept."""
    try:
        msg = json.loads(body)
        msg["occurred_at"] = _moved(msg["occurred_at"], dt)
        msg["raised_at"] = _moved(msg["raised_at"], dt)
        for entry in msg.get("timeline") or ():
            entry["at"] = _moved(entry["at"], dt)
    except (ValueError, KeyError, TypeError):
        return body
    msg[wire.CLOCK_FIELD] = {**(msg.get(wire.CLOCK_FIELD) or {}), "synced": synced}
    return json.dumps(msg, ensure_ascii=False, separators=(",", ":")).encode()


_UNSYNCED_TAIL = b',"%s":{"synced":false}}' % wire.CLOCK_FIELD.encode()
_OCCURRED = b'"occurred_at":"'


def stamp_age(body: bytes, sent_at: float) -> bytes:
    """The body as it leaves: if its clock field says the gateway's clock was not
    synchronised, with `age_s`, the seconds from the event to `sent_at` (the gateway's
    clock, which runs on the monotonic one: a true duration even when the date is wrong)."""
    if not body.endswith(_UNSYNCED_TAIL):  # the common case: a synchronised clock
        return body
    # As wire.encode_alert writes a body (and shift_body keeps it): its clock last,
    # `occurred_at` the first of its keys that is not a plain string or number, so its first
    # occurrence is the body's own. Not parsed and written again: with its timeline that
    # took ~0.6 ms on the alarm path (tests/test_gateway_timesync.py checks the bytes equal
    # what parsing would make).
    start = body.find(_OCCURRED) + len(_OCCURRED)
    end = body.find(b'"', start)
    if start < len(_OCCURRED) or end < 0:
        return body
    try:
        occurred = datetime.fromisoformat(body[start:end].decode()).timestamp()
    except (ValueError, UnicodeDecodeError):
        return body
    age = round(max(0.0, sent_at - occurred), 3)
    return b"%s,\"age_s\":%s}}" % (body[:-2], json.dumps(age).encode())
