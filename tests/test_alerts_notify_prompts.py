"""What people read and hear: the SMS text for a relative, the prompts for the resident."""

from __future__ import annotations

import json

import pytest

from alerts import notify
from alerts.alert import Alert, AlertState
from alerts.manager import Change
from alerts.prompts import prompt_for
from detectors.finding import Finding

BODY = {"alert_id": "01JD", "home_id": "home-1", "event": "fall", "severity": 1,
        "test": False, "title": {"zh": "跌倒报警", "en": "Fall detected"}, "room": "卫生间",
        "raised_at": "2026-11-23T06:05:00.000+08:00",
        "residents": [{"name": "王秀英"}, {"name": "李建国"}]}


def test_sms_text_says_who_what_where_when():
    text = notify.text(BODY, "静安区示例路 88 弄")
    assert text.startswith("【安心】王秀英、李建国家06:05发生跌倒报警（卫生间）")
    assert "静安区示例路 88 弄" in text and "请立即打电话确认平安" in text


def test_test_and_reminder_messages_say_so():
    text = notify.text({**BODY, "test": True, "escalation": {"tier": 2, "reminder": 1}})
    assert text.startswith("【安心·测试】") and "再次提醒" in text


def test_request_body_and_channel_check():
    body = json.loads(notify.encode(BODY, to="+8613800000000", channel="voice"))
    assert (body["schema"], body["to"], body["channel"], body["alert_id"]) == (
        "anxin.notify/1", "+8613800000000", "voice", "01JD")
    with pytest.raises(ValueError, match="channel"):
        notify.encode(BODY, to="1", channel="fax")


def alert(event, severity=1, test=False):
    f = Finding(detector="instant", home="h", code=100, event=event, severity=severity, at=0.0,
                test=test)
    return Alert(id="A1", finding=f, state=AlertState.RAISED)


def test_prompts():
    fall = prompt_for(alert("fall"), Change.PENDING, cancel_window_s=30)
    assert fall.say.startswith("检测到您可能摔倒了") and "30秒" in fall.say and not fall.siren
    smoke = prompt_for(alert("smoke"), Change.RAISED)
    assert smoke.siren and "烟雾" in smoke.say
    assert "网络暂时不通" in prompt_for(alert("sos"), Change.RAISED, path_down=True).say
    assert prompt_for(alert("sos"), Change.ACCEPTED).say.startswith("服务中心已经收到")
    assert prompt_for(alert("low_battery", severity=4), Change.RAISED) is None  # never spoken
    drill = prompt_for(alert("smoke", test=True), Change.RAISED)
    assert drill.say.startswith("测试。") and not drill.siren


def test_path_prompt_by_day_once_per_outage_and_on_return():
    from alerts.prompts import PATH_BACK, PATH_DOWN, path_prompt  # noqa: PLC0415
    assert path_prompt(None, False, 10) is None
    assert path_prompt(120, False, 10) is None  # not long enough yet
    assert path_prompt(300, False, 10) is PATH_DOWN
    assert path_prompt(900, True, 10) is None  # said once
    assert path_prompt(None, True, 10) is PATH_BACK
    assert path_prompt(3600, False, 3) is None  # never at night ...
    assert path_prompt(3600, False, 7) is PATH_DOWN  # ... but in the morning if still down


def test_the_away_key_is_answered_out_loud():
    from alerts.prompts import AWAY_NOT_TAKEN, AWAY_SET, WELCOME_HOME, away_prompt  # noqa: PLC0415

    home, waiting = ("occupied", False, False), ("occupied", False, True)
    away = ("away", True, False)
    assert away_prompt(home, waiting) is AWAY_SET  # pressed: go, close the door
    assert away_prompt(waiting, away) is None  # gone: nobody inside to hear
    assert away_prompt(home, away) is AWAY_SET  # no door watched: away at the press
    assert away_prompt(waiting, home) is AWAY_NOT_TAKEN  # nobody went out
    assert away_prompt(away, home) is WELCOME_HOME
    assert away_prompt(("away", False, False), home) is None  # back from a walk: no fuss
    assert away_prompt(home, home) is None
