"""`anxin demo`: an embedded broker, the gateway, a simulated home and a hotline, together.

Runs on the embedded defaults in gateway/defaults/demo.toml. Nothing here is a stand-in: the
simulated devices publish their real Zigbee2MQTT payloads over MQTT, the gateway runs exactly as
`anxin run` does, and the hotline verifies each signed alert before it shows it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import shutil
import socket
import sys
from pathlib import Path
from typing import Any

import aiomqtt

from gateway.broker import EmbeddedBroker
from gateway.config import Config, demo_path, load

BANNER = """
  安心 anxin — demo                                     (Ctrl-C 停止 / to stop)
  ─────────────────────────────────────────────────────────────────────────────
  接警台 Hotline page:   http://127.0.0.1:{hotline_port}/     ← open this in a browser
                         login 登录: {operator} / {password}  (new each start)
  技术人员 Technician:   http://127.0.0.1:{web_port}/   code: {code}
  MQTT broker:           mqtt://127.0.0.1:{broker_port}  (embedded, demo only)
  Gateway store:         {db}

  What to watch: {resident} ({age}) lives at home with {n} sensors. The simulated
  home goes about its day; about 20 s after start the kitchen smoke detector goes off.
  The gateway raises a smoke alarm (Contact ID 111, severity 1), signs it and sends
  it to the hotline, where it appears without a reload.
  Then: log in and press 接警 Accept in the queue. The gateway learns it within a
  second and stops escalating; leave it for 60 s instead and the daughter's phone is
  texted (see http://127.0.0.1:{hotline_port}/api/notifications).
  Try: {anxin} sim --broker mqtt://127.0.0.1:{broker_port} --config {config} --scenario sos_press
"""


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_port(preferred: int) -> int:
    if _port_free(preferred):
        return preferred
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    print(f"port {preferred} is busy; using {port} instead", file=sys.stderr)
    return port


def demo_config(data_dir: Path, hotline_port: int, web_port: int = 8080) -> Config:
    """The demo config with its data under `data_dir`, the hotline on `hotline_port` and the
    technician pages on `web_port`."""
    cfg = load(demo_path())

    def here(url: str | None) -> str | None:  # the demo hotline's port, wherever it landed
        return url and url.replace("127.0.0.1:9000", f"127.0.0.1:{hotline_port}")

    hotline = [dataclasses.replace(t, url=here(t.url), feedback_url=here(t.feedback_url))
               for t in cfg.hotline]
    return dataclasses.replace(cfg, hotline=hotline, base_dir=str(data_dir.resolve()),
                               gateway=dataclasses.replace(cfg.gateway, data_dir="."),
                               web=dataclasses.replace(cfg.web, port=web_port))


async def _speaker(broker_port: int, topic: str) -> None:
    """The home's speaker, played on the terminal: what the resident would hear."""
    async with aiomqtt.Client("127.0.0.1", broker_port) as client:
        await client.subscribe(topic, qos=1)
        async for message in client.messages:
            said = json.loads(bytes(message.payload))  # type: ignore[arg-type]
            siren = " + 警报声 siren" if said.get("siren") else ""
            print(f"  [speaker 🔊] “{said['say']}”{siren}", flush=True)


def _anxin_command() -> str:
    """How to call `anxin` from this shell: the venv's script when it is not on PATH."""
    script = Path(sys.executable).with_name("anxin")
    if shutil.which("anxin") == str(script) or not script.exists():
        return "anxin"
    with contextlib.suppress(ValueError):
        return str(script.relative_to(Path.cwd()))
    return str(script)


async def run_demo(*, data_dir: Path, broker_port: int = 1883, hotline_port: int = 9000,
                   speed: float = 1.0) -> int:
    """Run the demo until cancelled."""
    from gateway.runtime import Gateway  # noqa: PLC0415
    from hotline.server import ensure_operator, serve  # noqa: PLC0415
    from simulator.runner import run as simulate  # noqa: PLC0415
    from simulator.scenarios import load_scenario  # noqa: PLC0415

    data_dir.mkdir(parents=True, exist_ok=True)
    broker_port = _free_port(broker_port)
    hotline_port = _free_port(hotline_port)
    web_port = _free_port(8080)
    cfg = demo_config(data_dir, hotline_port, web_port)
    broker = EmbeddedBroker("127.0.0.1", broker_port)
    await broker.start()
    url = f"mqtt://127.0.0.1:{broker_port}"
    tasks: list[asyncio.Task[Any]] = []
    gw = Gateway(cfg, broker_url=url)
    operator, password = ensure_operator(str(data_dir / "hotline.db"), "demo")
    try:
        tasks.append(asyncio.create_task(
            serve("127.0.0.1", hotline_port, cfg.secret(0), str(data_dir / "hotline.db")),
            name="demo-hotline"))
        await gw.start()
        resident = cfg.home.residents[0]
        code_file = cfg.data_path() / "technician-code"
        code = code_file.read_text().strip() if code_file.exists() else \
            "(set earlier; `anxin technician-code` makes a new one)"
        print(BANNER.format(hotline_port=hotline_port, web_port=web_port, code=code,
                            operator=operator, password=password,
                            broker_port=broker_port,
                            db=cfg.data_path() / "anxin.db", resident=resident.name,
                            age=resident.age, n=len(cfg.devices), config=demo_path(),
                            anxin=_anxin_command()),
              flush=True)

        def show(t: float, what: str) -> None:
            print(f"  [home  t={t:6.1f}s] {what}", flush=True)

        tasks.append(asyncio.create_task(
            simulate(cfg.device_list(), load_scenario("demo"), url, speed=speed,
                     loop_forever=True, on_event=show), name="demo-simulator"))
        if cfg.home.speaker_topic:
            tasks.append(asyncio.create_task(_speaker(broker_port, cfg.home.speaker_topic),
                                             name="demo-speaker"))
        raised = 0
        while True:
            await asyncio.sleep(0.5)
            for t in tasks:
                if t.done():
                    t.result()  # a crashed part stops the demo with its error
            now_raised = gw.metrics["alerts_raised"]
            if now_raised != raised:
                raised = now_raised
                print(f"  → gateway raised {raised} alert(s); see http://127.0.0.1:"
                      f"{hotline_port}/", flush=True)
    finally:
        await gw.stop()  # first, so it does not see the hotline go and report an outage
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        await broker.stop()
        print("\n  demo stopped.", flush=True)
