"""The commissioning report from the store: what it says about each device, and what the
technician must fix before leaving."""

from __future__ import annotations

from devices.observation import Observation
from gateway import commissioning as cm
from gateway.config import load
from gateway.store import Store
from tests.test_e2e_gateway import write_config


def test_report_warns_of_low_battery_weak_link_and_missing_availability(tmp_path):
    cfg = load(write_config(tmp_path, 1, 2, gateway_id="gw-report"))
    home = cfg.home.id
    store = Store(tmp_path / "anxin.db")
    try:
        store.add_observations([
            Observation(home, "smoke-kitchen", "battery", 9.0, 1.0),
            Observation(home, "leak-bathroom", "link_quality", 12.0, 1.0),
            Observation(home, "radar-bathroom", "link_quality", 200.0, 1.0)])
        report = cm.build_report(store, cfg, "王师傅", 10.0)
        text = "\n".join(report["warnings"])
        assert "smoke-kitchen: 电量低" in text
        assert "leak-bathroom: 信号弱 (LQI 12)" in text
        assert "radar-bathroom: 未收到 Zigbee2MQTT 在线状态" in text
        radar = next(d for d in report["devices"] if d["id"] == "radar-bathroom")
        smoke = next(d for d in report["devices"] if d["id"] == "smoke-kitchen")
        assert radar["zigbee2mqtt_availability"] == "never"
        assert smoke["zigbee2mqtt_availability"] is None  # battery: supervised by its reports
        assert not report["passed"]  # no walk test, no test alarm
        assert "注意事项 To fix" in cm.render_html(report | {"id": 1})

        store.add_observations([Observation(home, "radar-bathroom", "availability",
                                             "online", 11.0)])
        again = cm.build_report(store, cfg, "王师傅", 12.0)
        assert not [w for w in again["warnings"] if w.startswith("radar-bathroom")]
        assert again["id"] == report["id"] + 1  # each report is kept
    finally:
        store.close()
