"""What issue 6's alert body costs on the alarm path: the home's 3 h timeline and the encode.

A busy home (five PIRs going on and off every 0.6 s for 3.3 hours: far more than a real
home, so the timeline is full at 300 entries and the memory bound of 6,000 is reached) feeds
gateway/timeline.py as the runtime does; then an SOS is encoded with the resident profile,
contacts and timeline, as gateway/runtime.py `_send` does before the outbox write. Prints:

- `timeline_add_us`: the cost per observation on the ingest path;
- `first_alert_ms`: timeline and encode for the first alert (each entry formatted once);
- `later_alerts_median_ms`: the same for alerts after it (entries already formatted);
- `body_bytes`: the size of that body on the wire (per target, stored in the outbox).

    python bench/alert_body.py [--alerts 200]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from alerts import wire  # noqa: E402
from alerts.alert import Alert, AlertState  # noqa: E402
from detectors.finding import Finding  # noqa: E402
from devices.observation import Observation  # noqa: E402
from gateway.timeline import Timeline  # noqa: E402

TZ = ZoneInfo("Asia/Shanghai")
T0 = 1_795_400_000.0
RESIDENTS = [{"name": "王秀英", "age": 84, "ability_level": 2, "conditions": ["高血压"],
              "medication": "华法林 2.5mg 每晚（易出血）"}]
CONTACTS = [{"name": "王强", "relation": "儿子", "phone": "138 0000 0001"},
            {"name": "李梅", "relation": "邻居", "phone": "13800000002"}]


def main() -> None:
    """Measure and print one JSON object."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--alerts", type=int, default=200, help="alerts encoded")
    args = p.parse_args()
    timeline = Timeline()
    stream = [Observation("home", f"pir{i % 5}", "motion", i % 2 == 0, T0 + i * 0.6, "客厅")
              for i in range(20_000)]
    started = time.perf_counter()
    for obs in stream:
        timeline.add(obs)
    add_us = (time.perf_counter() - started) / len(stream) * 1e6
    at = stream[-1].at
    finding = Finding("instant", "home", 101, "sos", 1, at, {"kind": "sos", "value": True},
                      "客厅", "sos-button")
    alert = Alert("01JDBENCH", finding, AlertState.PENDING_LOCAL)
    alert.move(AlertState.RAISED, at)
    times, body = [], b""
    for _ in range(args.alerts):
        started = time.perf_counter()
        entries = timeline.for_alert(finding.at, at, TZ)
        body = wire.encode_alert(alert, gateway_id="gw", sequence=1, residents=RESIDENTS,
                                 tz=TZ, address="徐汇区 田林路 1 弄 2 号 301",
                                 district="徐汇区 田林街道", contacts=CONTACTS,
                                 timeline=entries)
        times.append((time.perf_counter() - started) * 1000)
    print(json.dumps({
        "timeline_entries": len(json.loads(body)["timeline"]), "kept_in_memory": len(timeline),
        "timeline_add_us": round(add_us, 3), "first_alert_ms": round(times[0], 3),
        "later_alerts_median_ms": round(statistics.median(times[1:]), 3),
        "body_bytes": len(body)}))


if __name__ == "__main__":
    main()
