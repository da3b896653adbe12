"""Spoken prompts for the home's speaker: what the resident hears, in plain Mandarin.

The gateway publishes them over MQTT to the home's speaker/siren (`[home] speaker_topic`),
as `{"say": "…", "lang": "zh-CN", "siren": false, "alert_id": "…", "event": "…"}`. Short
sentences, one instruction each; technical faults (low battery, offline) are never spoken, so
nobody is woken at night for a battery.
"""

from __future__ import annotations

from dataclasses import dataclass

from alerts.alert import Alert
from alerts.manager import Change

LANG = "zh-CN"

# Said as soon as an alarm is raised; the siren sounds for fire and gas.
RAISED: dict[str, tuple[str, bool]] = {
    "smoke": ("检测到烟雾！请马上离开房间，不要用电梯。正在通知服务中心。", True),
    "gas": ("检测到燃气泄漏！请不要开关电器，打开门窗，马上离开。正在通知服务中心。", True),
    "water_leak": ("检测到漏水，请关闭总水阀，小心地滑。正在通知服务中心。", False),
    "sos": ("已收到您的紧急呼叫，正在通知服务中心，请不要着急。", False),
    "fall": ("正在通知服务中心，请不要乱动，等待帮助。", False),
    "long_lie": ("您摔倒后一直没有起来，已经通知服务中心，请不要乱动，等待帮助。", False),
    "inactivity": ("很久没有检测到您活动，已经通知服务中心，工作人员会联系您。", False),
    "bathroom_overstay": ("您在卫生间很久了，已经通知服务中心，工作人员会联系您。", False),
    "not_up": ("早上好，还没有检测到您起床，工作人员会联系您。", False),
    "still_in_bed": ("很久没有检测到您活动，已经通知服务中心，工作人员会联系您。", False),
}


@dataclass(frozen=True, slots=True)
class Prompt:
    """One thing for the speaker to say."""

    say: str
    siren: bool = False


def prompt_for(alert: Alert, change: Change, *, cancel_window_s: float = 30.0,
               path_down: bool = False) -> Prompt | None:
    """What the resident hears after `change` to `alert`, or None."""
    f = alert.finding
    if f.severity >= 4:
        return None
    test = "测试。" if f.test else ""
    if change is Change.PENDING and f.event == "fall":
        return Prompt(f"{test}检测到您可能摔倒了。如果您没事，请长按按钮取消。"
                      f"{cancel_window_s:.0f}秒后将通知服务中心。")
    if change is Change.CANCELLED:
        return Prompt(f"{test}好的，已经取消，没有通知服务中心。")
    if change is Change.RAISED and f.event in RAISED:
        say, siren = RAISED[f.event]
        if path_down:
            say += "网络暂时不通，报警会一直重发。如有需要，请直接拨打电话求助。"
        return Prompt(test + say, siren and not f.test)
    if change is Change.ACCEPTED:
        return Prompt(f"{test}服务中心已经收到，正在为您处理，请放心。")
    return None


# The path to the centre: said once an outage has lasted PATH_DOWN_SPEAK_S, and once it is
# over; never at night (a resident woken at 3 a.m. for a network fault is a false alarm too),
# in which case it waits for the morning if the outage is still going on.
PATH_DOWN_SPEAK_S = 300.0
DAY_HOURS = range(7, 21)
PATH_DOWN = Prompt("和服务中心的网络断了，报警会自动重发。如果有紧急情况，请直接打电话求助。")
PATH_BACK = Prompt("和服务中心的网络已经恢复了。")


def path_prompt(down_for_s: float | None, announced: bool, local_hour: int) -> Prompt | None:
    """What to say about the path to the centre now (None: nothing).

    `down_for_s` is how long it has been down (None: it is up); `announced` whether this
    outage has been spoken of already.
    """
    if local_hour not in DAY_HOURS:
        return None
    if down_for_s is not None and down_for_s >= PATH_DOWN_SPEAK_S and not announced:
        return PATH_DOWN
    if down_for_s is None and announced:
        return PATH_BACK
    return None


# The away key (外出/回家): the resident hears that the press was taken, since a button that
# answers nothing gets pressed again and again — or never trusted.
AWAY_SET = Prompt("好的，外出模式。出门请关好门，回家后按两下按钮。")
AWAY_NOT_TAKEN = Prompt("没有检测到出门，外出模式已取消。")
WELCOME_HOME = Prompt("欢迎回家。")


def away_prompt(before: tuple[str, bool, bool], after: tuple[str, bool, bool]
                ) -> Prompt | None:
    """What to say when the home's mode changed from `before` to `after`, each
    (mode, away by the key, "away" pressed and waiting for the door); None: nothing."""
    mode0, key0, waiting0 = before
    mode1, key1, waiting1 = after
    if (waiting1 and not waiting0) or (key1 and mode1 == "away" and not key0 and not waiting0):
        return AWAY_SET  # pressed: waiting for the door (or away at once, with no door)
    if waiting0 and not waiting1 and mode1 != "away":
        return AWAY_NOT_TAKEN  # nobody went out: watching as before
    if key0 and mode0 == "away" and mode1 != "away":
        return WELCOME_HOME
    return None
