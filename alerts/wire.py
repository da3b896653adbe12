"""The webhook/MQTT wire format `anxin.alert/1`: pure JSON encode/decode and HMAC signatures.

Signature: `X-Anxin-Signature: sha256=<hex>` where hex is HMAC-SHA256 over
`<X-Anxin-Timestamp> + "." + body` with the shared secret. A receiver rejects a bad signature
or a timestamp more than `MAX_SKEW_S` away from its own clock, and deduplicates on `alert_id`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from alerts.alert import OUTCOMES, Alert

SCHEMA = "anxin.alert/1"
MAX_SKEW_S = 300
# Optional: {"synced": false, "age_s": 12.5} when the gateway's clock was not synchronised
# (a Pi has no real-time clock): the times may be off, but `age_s` — seconds from the event
# to the sending, on the monotonic clock — is not, so a centre places the event at its
# receipt less `age_s`. The gateway corrects `occurred_at` in what it has not sent yet once
# its clock is synchronised.
CLOCK_FIELD = "clock"
TIMESTAMP_HEADER = "X-Anxin-Timestamp"
SIGNATURE_HEADER = "X-Anxin-Signature"

# Plain titles an operator reads first, Chinese first.
TITLES: dict[str, dict[str, str]] = {
    "smoke": {"zh": "烟雾报警", "en": "Smoke alarm"},
    "gas": {"zh": "燃气泄漏报警", "en": "Gas leak alarm"},
    "water_leak": {"zh": "漏水报警", "en": "Water leak"},
    "sos": {"zh": "紧急呼叫（SOS按钮）", "en": "Emergency call (SOS button)"},
    "fall": {"zh": "跌倒报警", "en": "Fall detected"},
    "long_lie": {"zh": "跌倒后长时间未起身", "en": "Long lie after a fall"},
    "no_breathing": {"zh": "卧床时未检测到呼吸", "en": "No breathing detected in bed"},
    "bradycardia": {"zh": "心率持续过低", "en": "Heart rate too low (sustained)"},
    "tachycardia": {"zh": "静息心率持续过高", "en": "Heart rate too high at rest (sustained)"},
    "bradypnoea": {"zh": "呼吸频率持续过低", "en": "Breathing too slow (sustained)"},
    "tachypnoea": {"zh": "呼吸频率持续过高", "en": "Breathing too fast (sustained)"},
    "tamper": {"zh": "设备防拆报警", "en": "Device tamper"},
    "low_battery": {"zh": "设备电量低", "en": "Low battery"},
    "offline": {"zh": "设备离线", "en": "Device offline"},
    "gateway_silent": {"zh": "网关失联（家中安全监测中断）", "en": "Gateway silent"},
    "test_alarm": {"zh": "安装调试测试报警", "en": "Commissioning test alarm"},
    "maintenance_digest": {"zh": "设备维护日报", "en": "Device maintenance digest"},
    "inactivity": {"zh": "长时间无活动", "en": "No activity"},
    "bathroom_overstay": {"zh": "卫生间内长时间无动静", "en": "Too long in the bathroom"},
    "night_wandering": {"zh": "夜间外出未归", "en": "Night-time exit, no return"},
    "not_up": {"zh": "早上未起床", "en": "Not up in the morning"},
    "missed_checkin": {"zh": "今日未平安打卡", "en": "Daily check-in missed"},
    "bed_exit": {"zh": "夜间离床未归", "en": "Out of bed at night, not back"},
    "not_returned": {"zh": "出门后入夜未归", "en": "Went out, not back by night"},
    "still_in_bed": {"zh": "卧床老人长时间无动静", "en": "Bed-bound resident not moving"},
    "routine_deviation": {"zh": "生活规律明显改变（请回访）",
                          "en": "Routine has changed (please call)"},
    "self_test_failed": {"zh": "按钮每周测试失败", "en": "Button failed its weekly test"},
    "weak_link": {"zh": "设备信号弱", "en": "Weak radio link"},
    "stuck_contact": {"zh": "门磁状态长时间不变", "en": "Contact sensor stuck"},
    "call_request": {"zh": "呼叫请求", "en": "Call request"},
}

# Fields every message carries, with the JSON types they must have.
REQUIRED: dict[str, type | tuple[type, ...]] = {
    "schema": str, "alert_id": str, "gateway_id": str, "home_id": str, "sequence": int,
    "code": int, "event": str, "severity": int, "title": dict, "room": (str, type(None)),
    "device_id": (str, type(None)), "detector": str, "occurred_at": str, "raised_at": str,
    "test": bool, "residents": list, "evidence": dict,
}

# What an alert may carry besides (issue 6), each optional so older receivers and older
# gateways keep working: checked when present.
TIMELINE_WINDOW_S = 3 * 3600  # how far back the home's timeline reaches before the alert
TIMELINE_MAX = 300  # entries at most (the newest kept): a busy home stays one small body
TIMELINE_SEVERITIES = frozenset({1, 2, 3})  # technical faults need no history of the home
SNAPSHOT_EVENTS = frozenset({"fall", "sos"})  # the contract: a still after these only
OPTIONAL: dict[str, type | tuple[type, ...]] = {
    "address": str, "district": str, "contacts": list, "timeline": list, "snapshot": dict,
    "escalation": dict,
}


class WireError(ValueError):
    """A message that must be refused; `reason` is a short machine word, str() explains."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def iso(ts: float, tz: ZoneInfo) -> str:
    """ISO 8601 with the zone's offset, ms precision (2026-11-22T21:44:05.123+08:00)."""
    return datetime.fromtimestamp(ts, tz).isoformat(timespec="milliseconds")


def title(event: str) -> dict[str, str]:
    """The {"zh", "en"} title for an event name."""
    return TITLES.get(event, {"zh": f"报警：{event}", "en": f"Alarm: {event}"})


def encode_alert(alert: Alert, *, gateway_id: str, sequence: int,
                 residents: list[dict[str, Any]], tz: ZoneInfo,
                 escalation: dict[str, Any] | None = None, address: str = "",
                 district: str = "", contacts: list[dict[str, str]] | None = None,
                 timeline: list[dict[str, Any]] | None = None,
                 snapshot: dict[str, str] | None = None,
                 clock: dict[str, Any] | None = None) -> bytes:
    """The `anxin.alert/1` JSON body for an alert that has been raised.

    `escalation` ({"tier": 1, "tier_name": "backup", "reminder": 0}) is added when the
    message is an escalation or a reminder of an alert nobody has accepted yet. `timeline`
    (see `timeline_entry`) is sent for severities 1-3 only and cut to the newest
    `TIMELINE_MAX`; `snapshot` ({"ref", "taken_at"}) only on a fall or SOS - the caller
    passes it only where the residents consented. `clock` (optional, see CLOCK_FIELD) says
    how far the gateway's times can be trusted.
    """
    f = alert.finding
    raised_at = alert.raised_at
    if raised_at is None:
        raise ValueError(f"alert {alert.id} has not been raised")
    body = {
        "schema": SCHEMA,
        "alert_id": alert.id,
        "gateway_id": gateway_id,
        "home_id": f.home,
        "sequence": sequence,
        "code": f.code,
        "event": f.event,
        "severity": f.severity,
        "title": title(f.event),
        "room": f.room,
        "device_id": f.device,
        "detector": f.detector,
        "occurred_at": iso(f.at, tz),
        "raised_at": iso(raised_at, tz),
        "test": f.test,
        "residents": residents,
        "evidence": f.evidence,
        "address": address,
        "district": district,
        "contacts": list(contacts or []),
    }
    if timeline is not None and f.severity in TIMELINE_SEVERITIES:
        body["timeline"] = timeline[-TIMELINE_MAX:]
    if snapshot is not None and f.event in SNAPSHOT_EVENTS:
        body["snapshot"] = {"ref": snapshot["ref"], "taken_at": snapshot["taken_at"]}
    if escalation is not None:
        body["escalation"] = escalation
    if clock is not None:
        body[CLOCK_FIELD] = clock
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def timeline_entry(at: float, room: str | None, device: str, kind: str, value: Any,
                   tz: ZoneInfo) -> dict[str, Any]:
    """One entry of an alert's `timeline`: an observation as the operator reads it."""
    return {"at": iso(at, tz), "room": room, "device": device, "kind": kind, "value": value}


def sign(secret: bytes, timestamp: int, body: bytes) -> str:
    """The `X-Anxin-Signature` header value for `body` sent at `timestamp` (unix seconds)."""
    mac = hmac.new(secret, str(timestamp).encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def signed_headers(secret: bytes, timestamp: int, body: bytes) -> dict[str, str]:
    """The headers to send with `body`."""
    return {
        "Content-Type": "application/json; charset=utf-8",
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: sign(secret, timestamp, body),
    }


@dataclass(frozen=True, slots=True)
class Verified:
    """A message whose signature and time checked out, with its decoded body."""

    body: dict[str, Any]
    timestamp: int


def verify(secret: bytes, timestamp: str | None, signature: str | None, body: bytes,
           now: float, max_skew_s: float = MAX_SKEW_S) -> Verified:
    """Check a received message; return it decoded, or raise WireError saying why not."""
    ts = check_signature(secret, timestamp, signature, body, now, max_skew_s)
    return Verified(decode(body), ts)


def check_signature(secret: bytes, timestamp: str | None, signature: str | None,
                    signed: bytes, now: float, max_skew_s: float = MAX_SKEW_S) -> int:
    """Check the timestamp and signature over `signed`; return the timestamp or raise."""
    if not timestamp or not signature:
        raise WireError("unsigned", f"missing {TIMESTAMP_HEADER} or {SIGNATURE_HEADER} header")
    try:
        ts = int(timestamp)
    except ValueError:
        raise WireError("bad_timestamp", f"{TIMESTAMP_HEADER} is not an integer") from None
    if abs(now - ts) > max_skew_s:
        raise WireError("stale", f"timestamp {ts} is {now - ts:+.0f} s from the receiver's "
                                 f"clock (allowed ±{max_skew_s:.0f} s)")
    if not hmac.compare_digest(sign(secret, ts, signed), signature):
        raise WireError("bad_signature", "signature does not match the body and timestamp")
    return ts


def _parse(body: bytes, schema: str, required: dict[str, type | tuple[type, ...]],
           what: str) -> dict[str, Any]:
    """A JSON object of `schema` with every `required` field of its type, or WireError."""
    try:
        msg = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise WireError("bad_json", f"{what} is not JSON: {e}") from None
    if not isinstance(msg, dict):
        raise WireError("bad_schema", f"{what} is not a JSON object")
    if msg.get("schema") != schema:
        raise WireError("bad_schema", f"schema is {msg.get('schema')!r}, expected {schema!r}")
    for key, typ in required.items():
        if key not in msg:
            raise WireError("bad_schema", f"missing field {key!r}")
        value = msg[key]
        # bool is an int in Python; a true where a number belongs is still wrong.
        if not isinstance(value, typ) or (typ is int and isinstance(value, bool)):
            raise WireError("bad_schema", f"field {key!r} has the wrong type")
    return msg


def decode(body: bytes) -> dict[str, Any]:
    """Parse and check an `anxin.alert/1` body; raise WireError naming the first problem."""
    msg = _parse(body, SCHEMA, REQUIRED, "body")
    if not 1 <= msg["severity"] <= 4:
        raise WireError("bad_schema", "severity must be 1..4")
    for key, typ in OPTIONAL.items():
        if key in msg and not isinstance(msg[key], typ):
            raise WireError("bad_schema", f"field {key!r} has the wrong type")
    _check_profile(msg)
    return msg


def _check_profile(msg: dict[str, Any]) -> None:
    """The optional resident-profile additions a console shows; raise naming the problem."""
    for i, c in enumerate(msg.get("contacts", ())):
        if not isinstance(c, dict) or not all(isinstance(c.get(k), str)
                                              for k in ("name", "relation", "phone")):
            raise WireError("bad_schema", f"contacts[{i}] needs name, relation and phone "
                                          "strings")
    timeline = msg.get("timeline", ())
    if len(timeline) > TIMELINE_MAX:
        raise WireError("bad_schema", f"timeline has {len(timeline)} entries (at most "
                                      f"{TIMELINE_MAX})")
    for i, e in enumerate(timeline):
        if not (isinstance(e, dict) and isinstance(e.get("at"), str)
                and isinstance(e.get("device"), str) and isinstance(e.get("kind"), str)
                and isinstance(e.get("room"), (str, type(None)))
                and isinstance(e.get("value"), (str, int, float, bool, type(None)))):
            raise WireError("bad_schema", f"timeline[{i}] needs at, room, device, kind and a "
                                          "scalar value")
    snap = msg.get("snapshot")
    if snap is not None and not (isinstance(snap.get("ref"), str) and snap["ref"]
                                 and isinstance(snap.get("taken_at"), str)):
        raise WireError("bad_schema", "snapshot needs a ref and a taken_at string")
    for i, r in enumerate(msg["residents"]):
        if isinstance(r, dict) and not isinstance(r.get("medication", ""), str):
            raise WireError("bad_schema", f"residents[{i}].medication is not a string")


# --- feedback: what the hotline tells the gateway back ---------------------------------------
#
# Homes sit behind NAT, so the gateway asks: `GET <feedback_url>?gateway_id=…&after=<cursor>
# &wait=<s>` (a long poll), signed like an alert but over `<timestamp>.GET <path?query>`. The
# hotline answers `anxin.feedback/1`, itself signed over the body: a forged "accepted" would
# stop an escalation, so the gateway trusts only what carries the shared secret.

FEEDBACK_SCHEMA = "anxin.feedback/1"
FEEDBACK_ACTIONS = frozenset({"accepted", "resolved", "look_in"})
RESOLUTION_OUTCOMES = OUTCOMES  # how an operator closes an alert, {code: "中文 / English"}


def request_signature_base(method: str, path_qs: str) -> bytes:
    """What a signed request's signature covers besides the timestamp."""
    return f"{method.upper()} {path_qs}".encode()


def decode_feedback(body: bytes) -> dict[str, Any]:
    """Parse and check an `anxin.feedback/1` body; raise WireError naming the problem."""
    try:
        msg = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise WireError("bad_json", f"feedback is not JSON: {e}") from None
    if not isinstance(msg, dict) or msg.get("schema") != FEEDBACK_SCHEMA:
        raise WireError("bad_schema", f"feedback schema is not {FEEDBACK_SCHEMA!r}")
    if not isinstance(msg.get("cursor"), str) or not isinstance(msg.get("events"), list):
        raise WireError("bad_schema", "feedback needs a string cursor and a list of events")
    for i, ev in enumerate(msg["events"]):
        if not isinstance(ev, dict):
            raise WireError("bad_schema", f"events[{i}] is not an object")
        for key, typ in (("alert_id", str), ("action", str), ("at", (int, float))):
            if not isinstance(ev.get(key), typ) or isinstance(ev.get(key), bool):
                raise WireError("bad_schema", f"events[{i}].{key} is missing or mistyped")
        if ev["action"] not in FEEDBACK_ACTIONS:
            raise WireError("bad_schema", f"events[{i}].action {ev['action']!r} is not one of "
                                          f"{', '.join(sorted(FEEDBACK_ACTIONS))}")
        # A look-in may be about no alert (alert_id ""), but must name the call it starts:
        # the intercom's answer comes back under that request_id.
        if ev["action"] == "look_in" and not (isinstance(ev.get("request_id"), str)
                                              and ev["request_id"]):
            raise WireError("bad_schema", f"events[{i}] is a look_in without a request_id")
    return msg


# --- intercom events: what the home's video intercom did (gateway -> hotline) ---------------
#
# POST <hotline base>/intercom, signed exactly like /alerts, or the uplink topic
# `<prefix>/<gateway_id>/intercom` in an envelope. The media (SIP/WebRTC) goes from the device
# to the centre; these records are the signalling: who rang, who answered, when.

INTERCOM_SCHEMA = "anxin.intercom/1"
INTERCOM_EVENTS = frozenset({"ringing", "answered", "auto_answered", "missed", "declined",
                             "ended", "call", "checkin"})
INTERCOM_REQUIRED: dict[str, type | tuple[type, ...]] = {
    "schema": str, "event_id": str, "gateway_id": str, "home_id": str, "device_id": str,
    "event": str, "request_id": (str, type(None)), "at": str, "detail": dict,
}


def encode_intercom(*, event_id: str, gateway_id: str, home_id: str, device_id: str,
                    event: str, request_id: str | None, at: float, tz: ZoneInfo,
                    detail: dict[str, Any] | None = None) -> bytes:
    """The `anxin.intercom/1` JSON body for one thing the home's intercom did."""
    if event not in INTERCOM_EVENTS:
        raise ValueError(f"intercom event {event!r} is not one of "
                         f"{', '.join(sorted(INTERCOM_EVENTS))}")
    body = {"schema": INTERCOM_SCHEMA, "event_id": event_id, "gateway_id": gateway_id,
            "home_id": home_id, "device_id": device_id, "event": event,
            "request_id": request_id, "at": iso(at, tz), "detail": dict(detail or {})}
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def decode_intercom(body: bytes) -> dict[str, Any]:
    """Parse and check an `anxin.intercom/1` body; raise WireError naming the first problem."""
    msg = _parse(body, INTERCOM_SCHEMA, INTERCOM_REQUIRED, "intercom event")
    if not msg["event_id"]:
        raise WireError("bad_schema", "event_id is empty")
    if msg["event"] not in INTERCOM_EVENTS:
        raise WireError("bad_schema", f"event {msg['event']!r} is not one of "
                                      f"{', '.join(sorted(INTERCOM_EVENTS))}")
    return msg


# --- the MQTT uplink's envelope --------------------------------------------------------------
#
# MQTT 3.1.1 has no headers, so over the uplink a message travels as
# `{"timestamp": <unix s>, "signature": "sha256=…", "body": "<the JSON text>"}`: the same
# signature as over HTTP, over `<timestamp>.<body>`, with the body kept as the exact text
# that was signed.


def envelope(secret: bytes, timestamp: int, body: bytes) -> bytes:
    """Wrap a body for the MQTT uplink."""
    return json.dumps({"timestamp": timestamp, "signature": sign(secret, timestamp, body),
                       "body": body.decode()}, ensure_ascii=False,
                      separators=(",", ":")).encode()


def open_envelope(secret: bytes, payload: bytes, now: float,
                  max_skew_s: float = MAX_SKEW_S) -> bytes:
    """The body inside an uplink envelope, if its signature and time check out."""
    try:
        env = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise WireError("bad_json", f"envelope is not JSON: {e}") from None
    if not isinstance(env, dict) or not isinstance(env.get("body"), str):
        raise WireError("bad_schema", "envelope needs timestamp, signature and a body string")
    body = env["body"].encode()
    check_signature(secret, str(env.get("timestamp", "")), env.get("signature"), body, now,
                    max_skew_s)
    return body
