"""anxin-native JSON adapter, for devices with no Zigbee equivalent (pendant, bed, intercom).

Format. A device publishes to its configured topic (by convention
`anxin/sensor/<device-id>`) a JSON object whose keys are the properties its catalogue entry
exposes, plus an optional `ts`, the device's own clock in unix seconds:

    anxin/sensor/pendant-wearable   {"fall": "fall", "battery": 87, "ts": 1795423445.2}
    anxin/sensor/pendant-wearable   {"sos": true}
    anxin/sensor/bed-1              {"in_bed": true, "heart_rate": 62, "respiration_rate": 15}
    anxin/sensor/intercom           {"intercom": "call"}
    anxin/sensor/intercom           {"away_mode": "away"}
    anxin/sensor/intercom           {"intercom": "answered", "request_id": "01JD…"}

Properties and values (`anxin devices catalog --json` lists each model's):
- `fall`: "fall" | "suspected" | "none"; `sos`, `cancel`, `checkin`: true for a press
  (false is no event); `battery`: 0..100; `battery_low`, `in_bed`: true/false;
  `heart_rate` bpm, `respiration_rate` breaths/min; `away_mode`: "away" (the resident going
  out pressed 外出) | "home" (回家).
- The 爱的眼睛 video intercom (`anxin-intercom`). Device -> gateway, on its topic:
  `{"intercom": "call"}` the resident's call key (a care call to the centre);
  `{"sos": true}` its SOS key; `{"checkin": true}` its 平安打卡 key; `{"away_mode": …}`;
  `{"intercom": "answered"|"missed"|"declined"|"ended", "request_id": "<id>"}` what became
  of a ring the gateway asked for (answered: the resident took it, or it answered itself
  where asked to; missed: it rang out; declined: the resident refused it; ended: hung up);
  `{"snapshot": {"ref": "<where the still is>", "taken_at": <unix s>, "request_id": "<id>"}}`
  the still it took when asked: a reference on the centre's media server, never image bytes.
  Gateway -> device, on `<topic>/set` (QoS 1, not retained; only the gateway may publish
  there, gateway/broker_acl.py): `{"ring": {"request_id": "<id>", "from": "centre"|"family",
  "auto_answer": true|false}}` ring for a look-in (auto_answer only where every resident
  consented, `look_in_auto_answer`); `{"snapshot": {"request_id": "<id>"}}` take a still now
  (sent only after a fall or SOS, and only where the residents consented, `snapshot_consent`).
  The media itself (SIP/WebRTC) goes from the device to the centre, not through anxin.
- `null` means unknown and is skipped. Every other key is an error: the format is ours, so
  an unknown key is a typo to fix, not a newer firmware to tolerate.
- Availability: `<topic>/availability` with `{"state": "online"|"offline"}` (or the plain
  string), typically the device's MQTT last will.
- A native device publishes at least once an hour (its battery, say): silence for two hours
  is loss of supervision (detectors/supervision.py).
- Raw accelerometer streams of a wearable whose model reports `accel` go to `<topic>/imu`:
  blocks of samples in JSON or a compact binary form (devices/imu.py says how), each read
  into one `accel` Observation for the fall detector (detectors/fall_imu.py); a bed sensor's
  raw ballistocardiogram goes to `<topic>/bcg` (devices/bcg.py), read into `bcg`
  Observations for the vital-signs detector (detectors/vitals.py).
"""

from __future__ import annotations

import math

from devices import bcg, imu
from devices.adapters._common import availability, decode_properties, json_object
from devices.catalogue import Model
from devices.observation import Observation, PayloadError
from devices.registry import Device

# Commands to a device (the intercom's ring and snapshot) go one level below its topic.
COMMAND_SUFFIX = "/set"

# Raw signal streams, one level below the device's topic: subtopic -> (kind, block reader)
STREAMS = {"imu": ("accel", imu), "bcg": ("bcg", bcg)}


def adapt(device: Device, model: Model, topic: str, payload: bytes,
          received_at: float) -> list[Observation]:
    """Observations in one native message for `device`; PayloadError if unreadable."""
    if topic == device.topic + "/availability":
        return availability(device, payload, received_at)
    stream = STREAMS.get(topic.removeprefix(device.topic + "/"))
    if stream is not None:
        kind, reader = stream
        if not model.expose_for_kind(kind):
            raise PayloadError(f"{device.id} ({model.model}) does not stream {kind} blocks: "
                               f"nothing belongs on {topic!r}")
        block = reader.parse_block(payload)
        return [Observation(device.home, device.id, kind, reader.observation_value(block),
                            received_at, device.room, block.t0)]
    if topic == device.topic + COMMAND_SUFFIX:
        return []  # the gateway's own command to the device, heard back: not an observation
    if topic != device.topic:
        raise PayloadError(f"unexpected topic {topic!r} for native device {device.id} "
                           f"(expected {device.topic!r}, its /availability, /imu or /bcg)")
    msg = json_object(payload)
    device_at = None
    ts = msg.pop("ts", None)
    if ts is not None:
        if isinstance(ts, bool) or not isinstance(ts, int | float) or not math.isfinite(ts):
            raise PayloadError(f"ts: expected unix seconds, got {ts!r}")
        device_at = float(ts)
    return decode_properties(device, model, msg, received_at, device_at, unknown="error")
