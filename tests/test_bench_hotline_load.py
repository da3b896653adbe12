"""bench/hotline_load.py, small: so the load run of issue 6 cannot rot.

A real hotline process, 40 gateways long-polling, 24 alerts (some sent twice), two operators
(made with the hotline's own function, logged in through the form) watching the queue, and
accepts reaching their gateway. Checks what the bench counts, never how fast: every alert
stored once and shown once as new on every stream, nothing refused.
"""

from __future__ import annotations

import json

from bench import hotline_load


def test_stream_counts_an_alert_as_new_only_on_its_first_delivery():
    """A repeat delivery and an operator's accept are updates, not a second new alert."""
    s = hotline_load.Stream()
    row = {"alert_id": "A", "deliveries": 1, "state": "received", "event": "sos"}
    s.note(json.dumps(row).encode(), 1.0)
    s.note(json.dumps({**row, "deliveries": 2}).encode(), 2.0)
    s.note(json.dumps({**row, "deliveries": 2, "state": "accepted"}).encode(), 3.0)
    s.note(json.dumps({"alert_id": "S", "event": "gateway_silent", "deliveries": 1,
                       "state": "received"}).encode(), 4.0)
    assert s.first_seen == {"A": 1.0, "S": 4.0}
    assert s.new["A"] == 1 and s.events == 4
    assert s.silent == {"S"}


async def test_small_load_run_loses_nothing():
    args = hotline_load.parser().parse_args([
        "--gateways", "40", "--alerts", "24", "--burst-s", "3", "--duplicates", "0.25",
        "--operators", "2", "--accept-every-s", "0.5", "--poll-wait-s", "2", "--ramp-s", "1",
        "--settle-s", "1", "--tail-s", "5", "--drain-timeout-s", "60"])
    got = await hotline_load.bench(args)
    assert got["gateways_polling"] == 40
    assert got["heartbeats"]["polls_answered"] >= 40 and not got["heartbeats"]["errors"]
    assert got["alerts"] == 24 and got["duplicates_sent"] == 6
    assert got["post_alerts_status"] == {200: 30} and not got["post_alerts_failed"]
    assert got["lost"] == {"not_in_store": 0, "not_on_every_stream": 0,
                           "not_shown_new_exactly_once": 0, "examples": []}
    assert got["store"] == {"alerts": 24, "extra_deliveries_counted": 6, "rejected": 0}
    assert got["queue_update_ms"]["n"] == 2 * 24 and got["streams_dropped"] == 0
    assert got["queue_update_split_ms"]["received_at_to_operator_stream"]["n"] == 2 * 24
    assert got["false_gateway_silent"] == {"stored": 0, "on_stream": 0}
    assert got["accepts"]["made"] >= 1
    assert got["accepts"]["reached_gateway"] == got["accepts"]["made"]
    assert set(got["accepts"]["status"]) == {200}
    assert not got["console_errors"] and got["console_during_burst_ms"]["/"]["n"] >= 1
    assert got["hotline"]["exit_log"] == []


async def test_small_load_run_with_the_mqtt_uplink_loses_nothing():
    """A third of the alerts from gateways on the MQTT uplink (real Mosquitto): stored once,
    shown once, every accept reaching its gateway (long poll or MQTT), no last will fired."""
    args = hotline_load.parser().parse_args([
        "--gateways", "20", "--alerts", "12", "--burst-s", "2", "--duplicates", "0.25",
        "--mqtt-alerts", "0.34", "--operators", "1", "--accept-every-s", "0.3",
        "--poll-wait-s", "2", "--ramp-s", "1", "--settle-s", "1", "--tail-s", "5"])
    got = await hotline_load.bench(args)
    assert got["mqtt_uplink"]["gateways"] == 4 and got["mqtt_uplink"]["alerts"] == 4
    assert got["queue_update_by_transport_ms"]["mqtt_uplink"]["n"] == 4
    assert got["queue_update_by_transport_ms"]["webhook"]["n"] == 8
    assert got["lost"]["not_in_store"] == got["lost"]["not_on_every_stream"] == 0
    assert got["lost"]["not_shown_new_exactly_once"] == 0
    assert got["store"] == {"alerts": 12, "extra_deliveries_counted": 3, "rejected": 0}
    assert got["duplicates_sent"] == 3 and not got["post_alerts_failed"]
    assert got["false_gateway_silent"] == {"stored": 0, "on_stream": 0}
    assert got["accepts"]["reached_gateway"] == got["accepts"]["made"] >= 1
