"""The console's words in Chinese (default) and English, and the detectors' evidence in
plain sentences an operator reads in the first ten seconds."""

from __future__ import annotations

import json
import math
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

from alerts.wire import RESOLUTION_OUTCOMES

TZ = ZoneInfo("Asia/Shanghai")
LANG_COOKIE = "anxin_lang"
LANGS = ("zh", "en")

# Which queue an alert waits in, so care calls and faults never bury an emergency.
TECHNICAL_EVENTS = frozenset({"gateway_silent", "offline", "low_battery", "tamper", "weak_link",
                              "stuck_contact", "self_test_failed", "maintenance_digest"})
LANES = ("emergency", "care", "technical", "test")


def lane(alert: dict[str, Any]) -> str:
    """emergency (severity 1-2), care (3), technical (4 and device/gateway faults), test."""
    if alert["test"]:
        return "test"
    if alert["event"] in TECHNICAL_EVENTS or alert["severity"] >= 4:
        return "technical"
    return "care" if alert["severity"] == 3 else "emergency"


def lang_of(request: web.Request) -> str:
    """?lang= (then kept in a cookie), else the cookie, else Chinese."""
    q = request.query.get("lang")
    if q in LANGS:
        return q
    c = request.cookies.get(LANG_COOKIE)
    return c if c in LANGS else "zh"


T: dict[str, tuple[str, str]] = {
    "app": ("安心 接警台", "anxin hotline"),
    "level": ("级别", "Level"),
    "queue": ("接警队列", "Alert queue"),
    "history": ("已处理", "History"),
    "stats": ("统计", "Statistics"),
    "operators": ("接警员", "Operators"),
    "logout": ("退出", "Log out"),
    "login": ("登录", "Log in"),
    "username": ("用户名", "Username"),
    "password": ("密码", "Password"),
    "lane_emergency": ("紧急报警", "Emergencies"),
    "lane_care": ("关怀呼叫", "Care calls"),
    "lane_technical": ("设备故障", "Technical faults"),
    "lane_test": ("测试报警", "Tests"),
    "sev1": ("紧急", "Life"), "sev2": ("重要", "Urgent"), "sev3": ("关注", "Care"),
    "sev4": ("技术", "Technical"),
    "received": ("待接警", "waiting"), "accepted": ("已接警", "accepted"),
    "resolved": ("已处理", "resolved"),
    "since_raised": ("已等待", "waiting"), "since_escalation": ("升级后", "since escalation"),
    "escalated": ("已升级", "escalated"), "reminder": ("提醒", "reminder"),
    "accept": ("接警", "Accept"), "resolve": ("处理完毕", "Resolve"),
    "note": ("添加备注", "Add note"), "dispatch": ("派遣", "Dispatch"),
    "look_in": ("视频探视", "Video look-in"), "open": ("详情", "Details"),
    "mute": ("静音", "Mute"), "unmute": ("打开提示音", "Sound on"),
    "live": ("实时", "live"), "offline": ("连接中断，正在重连…", "disconnected, reconnecting…"),
    "empty": ("暂无", "none"),
    "what": ("发生了什么", "What happened"), "where": ("位置", "Where"),
    "room": ("房间", "Room"), "device": ("设备", "Device"), "home": ("家庭", "Home"),
    "evidence": ("依据", "Evidence"), "resident": ("老人信息", "Resident"),
    "age": ("年龄", "Age"), "ability": ("能力等级", "Ability level"),
    "conditions": ("健康状况", "Conditions"), "medication": ("用药", "Medication"),
    "address": ("地址", "Address"), "district": ("区/街道", "District"),
    "contacts": ("紧急联系人", "Emergency contacts"), "call": ("拨打", "Call"),
    "sms": ("短信", "SMS"), "timeline": ("近3小时传感器记录", "Sensor timeline (last 3 h)"),
    "previous": ("该户历史报警", "Previous alerts of this home"),
    "intercom": ("对讲记录", "Intercom"), "audit": ("处理记录", "Audit trail"),
    "actions": ("处置", "Actions"), "outcome": ("处理结果", "Outcome"),
    "operator": ("接警员", "Operator"), "time": ("时间", "Time"),
    "raised": ("报警时间", "Raised"), "accepted_at": ("接警时间", "Accepted"),
    "resolved_at": ("处理时间", "Resolved"), "deliveries": ("送达次数", "Deliveries"),
    "gateway": ("网关", "Gateway"), "type": ("类型", "Type"), "state": ("状态", "State"),
    "snapshot": ("抓拍（已同意）", "Snapshot (consented)"),
    "d_family": ("家属", "Family"), "d_community_worker": ("社区工作人员", "Community worker"),
    "d_ambulance_120": ("120 急救", "120 ambulance"), "d_fire_119": ("119 消防", "119 fire"),
    "d_police_110": ("110 报警", "110 police"),
    "a_accepted": ("接警", "accepted"), "a_resolved": ("处理完毕", "resolved"),
    "a_note": ("备注", "note"), "a_dispatched": ("派遣", "dispatched"),
    "a_look_in": ("视频探视", "video look-in"),
    "ability0": ("能力完好", "intact"), "ability1": ("轻度失能", "mildly impaired"),
    "ability2": ("中度失能", "moderately impaired"), "ability3": ("重度失能", "severely impaired"),
    "ability4": ("完全失能", "fully dependent"),
    "years": ("岁", "years"), "none": ("无", "none"),
    "from": ("从", "From"), "to": ("到", "To"), "period": ("周期", "Period"),
    "day": ("日", "day"), "week": ("周", "week"), "month": ("月", "month"),
    "show": ("查询", "Show"), "csv": ("导出 CSV（民政报表）", "Export CSV"),
    "by_type": ("按类型", "By type"), "by_outcome": ("按处理结果", "By outcome"),
    "by_district": ("按区/街道", "By district"), "by_period": ("按周期", "By period"),
    "count": ("数量", "Count"), "total": ("合计", "Total"),
    "to_accept": ("报警→接警", "raised→accepted"),
    "to_resolve": ("接警→处理", "accepted→resolved"),
    "median": ("中位数", "median"), "p90": ("P90", "p90"), "open_alerts": ("未处理", "open"),
    "role": ("角色", "Role"), "created": ("创建时间", "Created"),
    "disabled": ("已停用", "disabled"),
    "add": ("添加", "Add"), "disable": ("停用", "Disable"), "enable": ("启用", "Enable"),
    "reset_password": ("重置密码", "Reset password"),
    "change_password": ("修改密码", "Change password"),
    "new_password": ("新密码", "New password"), "save": ("保存", "Save"),
    "role_operator": ("接警员", "operator"), "role_supervisor": ("主管", "supervisor"),
    "role_admin": ("管理员", "admin"),
    "unknown_district": ("（未设置）", "(not set)"),
    "no_look_in_yet": ("尚未探视", "no look-in yet"),
    "ev_ringing": ("正在呼叫", "ringing"), "ev_answered": ("已接听", "answered"),
    "ev_auto_answered": ("已自动接通", "auto-answered"), "ev_missed": ("无人接听", "missed"),
    "ev_declined": ("已拒绝", "declined"), "ev_ended": ("通话结束", "ended"),
    "ev_call": ("老人呼叫", "resident called"), "ev_checkin": ("平安打卡", "check-in"),
    "details": ("技术细节", "Technical details"),
    "restored": ("已恢复联系", "contact restored"),
    "note_hint": ("备注（如：已电话联系）", "note (e.g. called her)"),
    "who_hint": ("姓名/电话", "name / phone"), "test_mark": ("测试", "TEST"),
}


def t(lang: str, key: str) -> str:
    """The word for `key` in `lang`."""
    zh, en = T.get(key, (key, key))
    return en if lang == "en" else zh


def strings(lang: str) -> str:
    """All words for `lang` as JSON for the page's script (safe inside <script>)."""
    return json.dumps({k: t(lang, k) for k in T}, ensure_ascii=False).replace("<", "\\u003c")


def outcome(code: str | None, lang: str) -> str:
    """An outcome code in words (the wire's "中文 / English" split by language)."""
    if not code:
        return ""
    if code == "open":
        return t(lang, "open_alerts")
    if code == "restored":
        return t(lang, "restored")
    words = RESOLUTION_OUTCOMES.get(code, code)
    zh, _, en = words.partition(" / ")
    return (en or zh) if lang == "en" else zh


def local_time(ts: float | None, fmt: str = "%Y-%m-%d %H:%M:%S") -> str:
    """Unix seconds as Beijing time."""
    return "—" if ts is None else datetime.fromtimestamp(ts, TZ).strftime(fmt)


def iso_local(value: str, fmt: str = "%m-%d %H:%M:%S") -> str:
    """An ISO-8601 time from a gateway shown in Beijing time."""
    try:
        return datetime.fromisoformat(value).astimezone(TZ).strftime(fmt)
    except (TypeError, ValueError):
        return str(value)


def duration(seconds: float | None, lang: str) -> str:
    """A span as an operator says it: 45 秒, 12 分钟, 2 小时 5 分钟, 3 天."""
    if seconds is None or not math.isfinite(seconds):
        return "—"
    s = max(0, round(seconds))
    zh = lang != "en"
    if s < 90:
        return f"{s} 秒" if zh else f"{s} s"
    m = round(s / 60)
    if m < 90:
        return f"{m} 分钟" if zh else f"{m} min"
    h, m = divmod(m, 60)
    if h < 48:
        return (f"{h} 小时 {m} 分钟" if zh else f"{h} h {m} min") if m else (
            f"{h} 小时" if zh else f"{h} h")
    return f"{round(h / 24)} 天" if zh else f"{round(h / 24)} days"


ROOMS = {"kitchen": ("厨房", "kitchen"), "bathroom": ("卫生间", "bathroom"),
         "bedroom": ("卧室", "bedroom"), "living_room": ("客厅", "living room"),
         "livingroom": ("客厅", "living room"), "hallway": ("走廊", "hallway"),
         "hall": ("门厅", "hall"), "entrance": ("入户门", "entrance"),
         "balcony": ("阳台", "balcony"), "dining_room": ("餐厅", "dining room"),
         "toilet": ("卫生间", "toilet"), "study": ("书房", "study")}


def room(name: str | None, lang: str) -> str:
    """A room id in words (kitchen -> 厨房); unknown ids as they are."""
    if not name:
        return "—"
    zh, en = ROOMS.get(name.lower(), (name, name.replace("_", " ")))
    return en if lang == "en" else zh


KINDS = {"smoke": ("烟雾", "smoke"), "gas": ("燃气", "gas"), "water_leak": ("漏水", "water leak"),
         "motion": ("有人活动", "motion"), "contact": ("门窗", "door/window"),
         "presence": ("有人", "presence"), "occupancy": ("有人", "occupancy"),
         "button": ("按钮", "button"), "in_bed": ("在床", "in bed"),
         "heart_rate": ("心率", "heart rate"), "respiration_rate": ("呼吸频率", "breathing rate"),
         "battery": ("电量", "battery"), "temperature": ("温度", "temperature"),
         "humidity": ("湿度", "humidity"), "tamper": ("防拆", "tamper"),
         "power": ("用电", "power"), "action": ("按键", "press"), "checkin": ("打卡", "check-in"),
         "fall": ("跌倒", "fall"), "sos": ("紧急按钮", "SOS"), "door": ("门", "door"),
         "availability": ("在线状态", "availability")}
VALUES = {"fall": ("跌倒", "fall"), "suspected": ("疑似跌倒", "suspected fall"),
          "none": ("无", "none"), "online": ("在线", "online"), "offline": ("离线", "offline")}


def kind(name: str, lang: str) -> str:
    """A sensor reading's kind in words."""
    zh, en = KINDS.get(name, (name, name.replace("_", " ")))
    return en if lang == "en" else zh


def reading(kind_name: str, value: Any, lang: str) -> str:
    """A reading's value in words (True for a door is 'closed'; for smoke 'detected')."""
    zh = lang != "en"
    if isinstance(value, bool):
        if kind_name == "contact":
            return ("关闭" if value else "打开") if zh else ("closed" if value else "open")
        return ("是" if value else "否") if zh else ("yes" if value else "no")
    if value is None:
        return "—"
    if isinstance(value, str) and value in VALUES:
        zh_v, en_v = VALUES[value]
        return zh_v if zh else en_v
    return str(value)


def _yes(v: Any, lang: str) -> str:
    return reading("", bool(v), lang)


# evidence key -> (中文, English) sentence; {v} is the value as words, {d} as a duration.
EVIDENCE: dict[str, tuple[str, str]] = {
    "silent_for_s": ("网关已 {d} 没有消息", "the gateway has been silent for {d}"),
    "last_seen": ("最后一次收到消息：{t}", "last heard from at {t}"),
    "last_activity": ("最后一次活动：{t}", "last activity at {t}"),
    "quiet_for_s": ("已连续 {d} 没有任何活动", "no activity at all for {d}"),
    "limit_s": ("报警阈值 {d}", "the limit is {d}"),
    "limit_this_hour_s": ("此时段阈值 {d}", "the limit at this hour is {d}"),
    "still_for_s": ("已静止 {d}", "still for {d}"),
    "stillness_s": ("撞击后静止 {d}", "still for {d} after the impact"),
    "lying_s": ("倒地已 {d}", "lying down for {d}"),
    "held_s": ("状态已保持 {d}", "unchanged for {d}"),
    "no_breath_s": ("已 {d} 未检测到呼吸", "no breath for {d}"),
    "waited_for_return_s": ("等待返回 {d}", "waited {d} for a return"),
    "peak_g": ("撞击峰值 {v} g", "impact peak {v} g"),
    "orientation_change_deg": ("身体姿态变化 {v}°", "body orientation changed {v}°"),
    "in_bathroom_since": ("进入卫生间时间：{t}", "in the bathroom since {t}"),
    "out_of_bed_since": ("离床时间：{t}", "out of bed since {t}"),
    "last_checkin_day": ("上次打卡：{v}", "last check-in: {v}"),
    "expected": ("预计：{v}", "expected: {v}"),
    "hr": ("心率 {v} 次/分", "heart rate {v} bpm"),
    "rr": ("呼吸 {v} 次/分", "breathing {v} /min"),
    "rate": ("测得 {v}", "measured {v}"),
    "threshold": ("阈值 {v}", "threshold {v}"),
    "link_quality": ("信号质量 {v}", "link quality {v}"),
    "rule": ("规则：{v}", "rule: {v}"),
    "why": ("原因：{v}", "why: {v}"),
    "pattern": ("变化：{v}", "change: {v}"),
    "seen_at_startup": ("网关启动时已处于报警状态", "already alarming when the gateway started"),
    "never_heard_since_start": ("网关启动后从未收到该设备消息",
                                "never heard since the gateway started"),
    "away": ("老人外出模式", "resident marked away"),
    "home_state": ("家中状态：{v}", "home state: {v}"),
}
TIME_KEYS = frozenset({"last_seen", "last_activity", "in_bathroom_since", "out_of_bed_since"})
# Shown only under "technical details": numbers for the engineer, not the operator.
QUIET_KEYS = frozenset({"series", "series_columns", "ref", "device_time", "fall_device_time",
                        "impact_time", "rate_hz", "internal_rate_hz", "still_window_s",
                        "limits_source", "quality_min", "setting", "hysteresis", "failed",
                        "blips_set_aside", "source", "freefall_min_g", "recover_deg",
                        "min_duration_s", "mean_orientation_change_deg", "good_s",
                        "moving_s", "reference_days", "score"})


def evidence_lines(event: str, evidence: dict[str, Any], lang: str
                   ) -> tuple[list[str], dict[str, Any]]:
    """(sentences for the operator, what is left for the technical details)."""
    lines: list[str] = []
    rest: dict[str, Any] = {}
    zh = lang != "en"
    kind_name = evidence.get("kind")
    if isinstance(kind_name, str) and "value" in evidence:
        what = kind(kind_name, lang)
        said = reading(kind_name, evidence["value"], lang)
        what = what if said == what else f"{what}：{said}" if zh else f"{what}: {said}"
        lines.append(f"传感器报告：{what}" if zh else f"the sensor reported {what}")
    for key, value in evidence.items():
        if key in ("kind", "value"):
            continue
        if key in EVIDENCE and key not in QUIET_KEYS and value not in (None, "", [], {}):
            zh_s, en_s = EVIDENCE[key]
            text = en_s if lang == "en" else zh_s
            if isinstance(value, bool):
                if not value:
                    continue
                lines.append(text.split("{")[0].rstrip("：: ") if "{" in text else text)
                continue
            lines.append(text.format(
                v=_words(value, lang),
                d=duration(value, lang) if isinstance(value, int | float) else value,
                t=iso_local(value, "%m-%d %H:%M") if isinstance(value, str) else value))
        else:
            rest[key] = value
    return lines, rest


def _words(value: Any, lang: str) -> str:
    if isinstance(value, float):
        return f"{value:.1f}"
    if isinstance(value, list):
        return "、".join(_words(v, lang) for v in value) if lang != "en" else ", ".join(
            _words(v, lang) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k} {_words(v, lang)}" for k, v in value.items())
    if isinstance(value, bool):
        return _yes(value, lang)
    return str(value)
