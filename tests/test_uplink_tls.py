"""TLS for every uplink: a webhook, SMS gateway or MQTT uplink to another host than this box
must be https:// or mqtts:// (DC-09: AES-encrypted), or carry an explicit allow_plaintext for
a link inside a VPN; and mqtts:// really verifies the centre's certificate."""

from __future__ import annotations

import asyncio
import contextlib
import json
import tomllib

import pytest

from gateway.config import ConfigError, is_loopback, parse
from gateway.ingest import BrokerAddress
from gateway.transports.mqtt_uplink import MqttUplink
from tests._mosquitto import running_mosquitto
from tests._tls import make_pki

BASE = """
[gateway]
id = "gw-tls"
[home]
id = "home-tls"
"""


def hotline(**keys: object) -> str:
    """A config with one [[hotline]] target of these keys."""
    lines = [f"{k} = {json.dumps(v)}" for k, v in {"secret": "s", **keys}.items()]
    return BASE + "[[hotline]]\n" + "\n".join(lines) + "\n"


def problems(text: str) -> dict[str, str]:
    """key path -> message of every problem, or {} if the config loads."""
    try:
        parse(tomllib.loads(text))
    except ConfigError as e:
        return dict(e.problems)
    return {}


@pytest.mark.parametrize(("keys", "path", "fix"), [
    ({"url": "http://hotline.example/alerts"}, "hotline[0].url", "https://"),
    ({"url": "http://192.168.1.20:9000/alerts"}, "hotline[0].url", "https://"),
    ({"kind": "sms", "url": "http://sms.example/send", "to": "+8613800000000"},
     "hotline[0].url", "https://"),
    ({"kind": "mqtt", "url": "mqtt://broker.centre.example:1883"}, "hotline[0].url",
     "mqtts://"),
    ({"url": "https://hotline.example/alerts",
      "feedback_url": "http://hotline.example/feedback"}, "hotline[0].feedback_url",
     "https://"),
])
def test_plain_text_to_another_host_is_refused_naming_the_key_and_the_fix(keys, path, fix):
    found = problems(hotline(**keys))
    assert list(found) == [path]
    assert fix in found[path]
    assert "allow_plaintext = true" in found[path]  # the documented way out, for a VPN


@pytest.mark.parametrize("keys", [
    {"url": "https://hotline.example/alerts", "feedback_url": "https://hotline.example/fb"},
    {"kind": "mqtt", "url": "mqtts://broker.centre.example:8883"},
    {"url": "http://127.0.0.1:9000/alerts", "feedback_url": "http://localhost:9000/fb"},
    {"url": "http://[::1]:9000/alerts"},
    {"kind": "mqtt", "url": "mqtt://127.0.0.2:1883"},
    # inside a WireGuard tunnel, said so explicitly
    {"url": "http://10.8.0.1:9000/alerts", "allow_plaintext": True},
    {"kind": "mqtt", "url": "mqtt://10.8.0.1:1883", "allow_plaintext": True},
])
def test_tls_this_box_or_an_explicit_tunnel_is_accepted(keys):
    assert problems(hotline(**keys)) == {}


DC09 = {"kind": "dc09", "port": 12000, "account": "C0FFEE"}


def test_dc09_to_another_host_needs_its_aes_key():
    found = problems(hotline(**DC09, host="receiver.centre.example"))
    assert list(found) == ["hotline[0].key"]
    assert "without AES encryption" in found["hotline[0].key"]
    assert "allow_plaintext = true" in found["hotline[0].key"]
    for keys in ({"host": "receiver.centre.example", "key": "0123456789abcdef"},
                 {"host": "10.8.0.1", "allow_plaintext": True},  # inside a tunnel, said so
                 {"host": "127.0.0.1"}):  # a receiver on this box (tests, a local relay)
        assert problems(hotline(**DC09, **keys)) == {}, keys


def test_loopback_is_only_this_box():
    assert is_loopback("localhost") and is_loopback("127.0.0.1") and is_loopback("::1")
    for host in ("localhost.example", "10.0.0.1", "0.0.0.0", "::", "hotline.example"):
        assert not is_loopback(host), host


def test_a_plain_text_uplink_through_a_tunnel_is_named_at_every_start(caplog):
    def uplink(host: str, *, tls: bool = False) -> None:
        MqttUplink("centre", BrokerAddress(host, 1883, tls=tls), b"k", gateway_id="gw-tls",
                   home_id="home-tls")

    uplink("127.0.0.1")
    uplink("broker.centre.example", tls=True)
    assert caplog.records == []
    uplink("10.8.0.1")
    (record,) = caplog.records
    assert record.levelname == "WARNING"
    assert "10.8.0.1:1883 is not encrypted" in record.getMessage()


@pytest.mark.mosquitto
async def test_mqtts_refuses_a_centre_whose_certificate_it_cannot_verify(tmp_path):
    (tmp_path / "right").mkdir()
    (tmp_path / "other").mkdir()
    right, other = make_pki(tmp_path / "right"), make_pki(tmp_path / "other")
    options = f"cafile {right['ca']}\ncertfile {right['server']}\nkeyfile {right['server_key']}"

    async def connects(ca: str) -> bool:
        address = BrokerAddress("127.0.0.1", port, tls=True, ca_file=ca)
        uplink = MqttUplink("centre", address, b"k", gateway_id="gw-tls", home_id="home-tls",
                            backoff_max_s=1.0)

        async def apply(*_: object) -> None:
            return None

        task = asyncio.create_task(uplink.run(apply))
        try:
            async with asyncio.timeout(5):
                await uplink.connected.wait()
            return True
        except TimeoutError:
            return False
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    with running_mosquitto(listener_options=options) as (_, port):
        assert not await connects(str(other["ca"]))  # an impostor's certificate: never
        assert await connects(str(right["ca"]))
