"""A Pi booted without network and without a real-time clock, end to end on real parts.

The gateway's wall clock (injected: the machine's is never touched) starts three days behind
the hotline's. An SOS press still reaches the hotline and is accepted, marked unsynchronised
with the event's age; then NTP "arrives" (the wall clock jumps three days forward): no false
inactivity alarm follows, and the unaccepted SOS escalates when its real wait is up, with
its corrected time.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from pathlib import Path

import aiohttp
import pytest

from gateway.cli import _clock_line
from gateway.clock import SteadyClock
from gateway.config import load
from gateway.runtime import Gateway
from gateway.store import Store
from gateway.web.app import CODE_SETTING
from gateway.web.auth import hash_code
from tests._config import SECRET
from tests._mosquitto import free_port
from tests.test_e2e_gateway import TS0215A_PRESS, TS0215A_RESET, gateway, hotline, publish
from tests.test_e2e_uplink import centre as uplink_centre
from tests.test_e2e_uplink import write_config as write_uplink_config

pytestmark = pytest.mark.mosquitto

DAY = 86400.0
ESCALATE_S = 4.0
CODE = "ABCD-EFGH-JKLM"
MOTION = b'{"battery":100,"illuminance":30,"linkquality":90,"occupancy":true,"voltage":3055}'


def write_config(tmp: Path, broker: int, primary: int, backup: int, gid: str, *,
                 feedback: bool = False, web_port: int | None = None) -> Path:
    """An SOS button and a motion sensor; tiers: primary -> backup after ESCALATE_S."""
    feedback_url = f'feedback_url = "http://127.0.0.1:{primary}/feedback"' if feedback else ""
    text = f"""
[gateway]
id = "{gid}"
data_dir = "./data"

[mqtt]
url = "mqtt://127.0.0.1:{broker}"
zigbee2mqtt_base_topic = "{gid}"
native_base_topic = "{gid}-native"

[home]
id = "home-{gid}"
address = "测试路 9 号"

[[home.residents]]
name = "孙秀英"
age = 84

[activity]
day_limit_h = 3
night_limit_h = 3

[[devices]]
id = "sos-bedside"
source = "zigbee2mqtt"
topic = "{gid}/bedside_sos"
model = "TS0215A_sos"
room = "bedroom"

[[devices]]
id = "motion-living"
source = "zigbee2mqtt"
topic = "{gid}/living_pir"
model = "RTCGQ11LM"
room = "living_room"

[[hotline]]
name = "primary"
url = "http://127.0.0.1:{primary}/alerts"
secret = "{SECRET}"
retry_max_s = 0.5
{feedback_url}

[[hotline]]
name = "backup"
url = "http://127.0.0.1:{backup}/alerts"
secret = "{SECRET}"
retry_max_s = 0.5

[escalation]
renotify_s = [0, 0, 0, 0]

[[escalation.tiers]]
name = "centre"
targets = ["primary"]

[[escalation.tiers]]
name = "backup-centre"
targets = ["backup"]
after_s = [{ESCALATE_S}, {ESCALATE_S}, 0, 0]
"""
    if web_port is not None:  # the technician pages, with a known code
        text += f"\n[web]\nenabled = true\nport = {web_port}\n"
        (tmp / "data").mkdir(exist_ok=True)
        store = Store(tmp / "data" / "anxin.db")
        store.set_setting(CODE_SETTING, hash_code(CODE), time.time())
        store.close()
    path = tmp / "anxin.toml"
    path.write_text(text, encoding="utf-8")
    return path


class FakeWall:
    """The gateway's wall clock: the machine's, `offset` seconds off, until NTP sets it."""

    def __init__(self, offset: float) -> None:
        self.offset = offset

    def __call__(self) -> float:
        return time.time() + self.offset

    def synced(self) -> bool:
        return self.offset == 0.0


async def accept(view, alert_id: str) -> int:
    """An operator accepts the alert at the hotline (logged in, where the hotline asks)."""
    act = getattr(view, "act", None)
    if act is not None:
        return await act(alert_id, "accept")
    async with view.http.post(f"http://127.0.0.1:{view.port}/api/alerts/{alert_id}/accept",
                              json={"operator": "接警员"}) as r:
        return r.status


async def technician_page(port: int) -> str:
    """The technician's status page, logged in with the code."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        async with http.post(f"http://127.0.0.1:{port}/login", data={"code": CODE}) as r:
            assert r.status == 200, await r.text()
        async with http.get(f"http://127.0.0.1:{port}/") as r:
            return await r.text()


def at(stamp: str) -> float:
    return datetime.fromisoformat(stamp).timestamp()


async def test_a_gateway_days_behind_is_heard_and_a_later_ntp_jump_raises_nothing_false(
        tmp_path, mosquitto):
    _, port = mosquitto
    p_port, b_port = free_port(), free_port()
    gid = "gw-clock"
    web = free_port()
    cfg = write_config(tmp_path, port, p_port, b_port, gid, web_port=web)
    wall = FakeWall(-3 * DAY)
    clock = SteadyClock(wall=wall, synced=wall.synced)
    async with hotline(p_port, tmp_path / "primary.db") as primary, \
            hotline(b_port, tmp_path / "backup.db") as backup, \
            gateway(cfg, clock=clock) as gw:
        assert not gw.clock_status().trusted
        assert "clock NOT synchronised" in await technician_page(web)
        assert _clock_line((await gw.status())["clock"]).startswith(
            "✗ clock: NOT synchronised — alerts carry their age")
        await publish(port, (f"{gid}/living_pir", MOTION), (f"{gid}/living_pir", MOTION),
                      gap=0.2)
        pressed = time.time()
        await publish(port, (f"{gid}/bedside_sos", TS0215A_PRESS),
                      (f"{gid}/bedside_sos", TS0215A_RESET))
        # The hotline refuses the first try as stale (three days off), its Date header
        # gives the gateway the centre's time, and the second try is accepted.
        (alert,) = await primary.wait_for(1, timeout=20)
        assert alert["event"] == "sos"
        body = alert["body"]
        assert body["clock"]["synced"] is False
        assert 0.0 <= body["clock"]["age_s"] < 15.0  # the monotonic age, not three days
        assert at(body["occurred_at"]) == pytest.approx(pressed - 3 * DAY, abs=15)
        assert gw.senders["primary"].transport.peer.skew_s == pytest.approx(3 * DAY, abs=5)
        raised = time.monotonic()
        quiet_before = wall() - gw.core.activity.last_at

        wall.offset = 0.0  # NTP arrives: the wall clock jumps three days forward
        deadline = time.monotonic() + 15
        while not gw.clock_steps and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        ((_, step),) = gw.clock_steps
        assert step == pytest.approx(3 * DAY, abs=5)
        assert gw.clock_status().trusted
        assert "clock NOT synchronised" not in await technician_page(web)
        line = _clock_line((await gw.status())["clock"])
        assert line.startswith("✓ clock: synchronised (NTP); stepped 1x, last +259200 s"), line
        # the quiet spell is what it was (seconds), not three days
        assert time.time() - gw.core.activity.last_at == pytest.approx(quiet_before, abs=10)

        # The SOS escalates when its real wait is up: not at once on the jump, not never,
        # and the escalation carries the corrected time of the press.
        (escalated,) = await backup.wait_for(1, timeout=20)
        assert time.monotonic() - raised >= ESCALATE_S - 1.0
        assert escalated["alert_id"] == alert["alert_id"]
        assert at(escalated["body"]["occurred_at"]) == pytest.approx(pressed, abs=15)
        assert "clock" not in escalated["body"]  # synchronised now
        await asyncio.sleep(2.5)  # several ticks after the jump
        events = [a["event"] for a in await primary.alerts() + await backup.alerts()]
        assert events == ["sos", "sos"]  # no inactivity, not-up or offline from the jump
        assert not gw.core.supervision.offline


async def test_an_operators_acceptance_reaches_a_gateway_days_behind(tmp_path, mosquitto):
    """The feedback poll is signed, and its answer checked, on the hotline's time as learned
    from its Date header: acceptance travels back and the escalation stops."""
    _, port = mosquitto
    p_port, b_port = free_port(), free_port()
    gid = "gw-clock-acc"
    cfg = write_config(tmp_path, port, p_port, b_port, gid, feedback=True)
    wall = FakeWall(-3 * DAY)
    async with hotline(p_port, tmp_path / "primary.db") as primary, \
            hotline(b_port, tmp_path / "backup.db") as backup, \
            gateway(cfg, clock=SteadyClock(wall=wall, synced=wall.synced)) as gw:
        await publish(port, (f"{gid}/bedside_sos", TS0215A_PRESS),
                      (f"{gid}/bedside_sos", TS0215A_RESET))
        (alert,) = await primary.wait_for(1, timeout=20)
        assert await accept(primary, alert["alert_id"]) == 200
        deadline = time.monotonic() + 20
        while gw.metrics["alerts_accepted"] < 1 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert gw.metrics["alerts_accepted"] == 1
        assert gw.feedback[0].peer.skew_s == pytest.approx(3 * DAY, abs=5)
        await asyncio.sleep(ESCALATE_S + 1.0)  # past the backup's wait
        assert await backup.alerts() == []


async def test_rows_written_while_the_clock_ran_ahead_do_not_hold_a_quiet_spell_open(
        tmp_path, mosquitto):
    """First run: the clock set a day ahead; movement is stored at that time. Second run:
    NTP has set it right. The clock does not start at the stored rows' time, and those rows
    are not replayed as the last activity (a quiet spell would stay open for a day)."""
    _, port = mosquitto
    gid = "gw-clock-ahead"
    cfg = write_config(tmp_path, port, free_port(), free_port(), gid)
    wall = FakeWall(+DAY)
    async with gateway(cfg, clock=SteadyClock(wall=wall, synced=lambda: False)) as gw:
        await publish(port, (f"{gid}/living_pir", MOTION), (f"{gid}/living_pir", MOTION),
                      gap=0.2)
        deadline = time.monotonic() + 15
        while gw.metrics["observations"] < 2 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert gw.core.activity.last_at > time.time() + DAY - 60
    wall.offset = 0.0
    async with gateway(cfg, clock=SteadyClock(wall=wall, synced=wall.synced)) as gw:
        now = gw.clock.now()
        assert now == pytest.approx(time.time(), abs=5)
        last = gw.core.activity.last_at
        assert last is None or last <= now


async def test_test_mode_set_before_a_step_back_lasts_as_long_after_it(tmp_path, mosquitto):
    """Set a day ahead, the clock is stepped back by NTP during test/maintenance mode: the
    mode ends when it was meant to, not a day later (real alarms would go out as tests)."""
    _, port = mosquitto
    gid = "gw-clock-maint"
    cfg = write_config(tmp_path, port, free_port(), free_port(), gid)
    wall = FakeWall(+DAY)
    async with gateway(cfg, clock=SteadyClock(wall=wall, synced=wall.synced)) as gw:
        until = gw.clock.now() + 3600
        await gw.store.call(Store.set_maintenance_until, until, gw.clock.now())
        deadline = time.monotonic() + 15
        while gw.maintenance_until != until and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert gw.maintenance_until == until
        wall.offset = 0.0
        while not gw.clock_steps and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert gw.maintenance_until - gw.clock.now() == pytest.approx(3600, abs=30)
        await asyncio.sleep(3)  # the store is read again: the corrected end holds
        assert gw.maintenance_until - gw.clock.now() == pytest.approx(3600, abs=30)
        assert await gw.store.call(Store.maintenance_until) == gw.maintenance_until


def test_where_the_os_cannot_say_a_wall_clock_behind_the_floor_is_not_trusted(tmp_path):
    """No word from the OS (chrony under the unit's seccomp filter, say): the wall clock is
    judged against the floor, not the gateway's own clock, which never reads below it."""
    cfg = load(write_config(tmp_path, free_port(), free_port(), free_port(), "gw-floor"))
    wall = FakeWall(-30 * DAY)
    clock = SteadyClock(floor=time.time() - DAY, wall=wall, synced=lambda: None)
    gw = Gateway(cfg, clock=clock)
    gw._os_synced = None
    status = gw.clock_status()
    assert clock.now() >= clock.floor and not status.plausible and not status.trusted
    wall.offset = 0.0
    assert gw.clock_status().trusted


async def test_an_uplink_alert_refused_for_a_wrong_clock_is_sent_again_once_it_is_set(
        tmp_path, mosquitto):
    """Over the MQTT uplink the centre cannot answer "stale": the broker has acknowledged.
    An alert stamped ten days behind (outside the centre's week) is sent again when NTP
    sets the clock, with its corrected time, and the centre takes it."""
    _, port = mosquitto
    gid, prefix = "gw-clock-up", "anxin-clock"
    cfg = write_uplink_config(tmp_path, port, gid, prefix)
    wall = FakeWall(-10 * DAY)
    hport = free_port()
    async with uplink_centre(port, hport, tmp_path / "centre.db", prefix) as centre, \
            gateway(cfg, clock=SteadyClock(wall=wall, synced=wall.synced)) as gw:
        pressed = time.time()
        await publish(port, (f"{gid}/bedside_sos", TS0215A_PRESS))
        deadline = time.monotonic() + 15
        while gw.metrics["alerts_raised"] < 1 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        await asyncio.sleep(1.5)
        assert await centre.alerts() == []  # refused as stale, silently, at the centre
        wall.offset = 0.0  # NTP
        (alert,) = await centre.wait_for(1, timeout=20)
        assert alert["event"] == "sos"
        assert at(alert["body"]["occurred_at"]) == pytest.approx(pressed, abs=15)
        assert alert["body"]["clock"]["synced"] is True
