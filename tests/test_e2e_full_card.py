"""A card that is really full: the gateway's data directory on a small tmpfs, filled by
another file to the last byte (ENOSPC from the kernel, not a simulated SQLite limit). With
the space reserve the SOS that finds the card full is stored durably (it survives a
restart) as well as sent; without one it is only sent from memory. When room returns the
reserve comes back and observations are stored again.

Mounting a tmpfs needs root, which CI has; elsewhere the test is skipped, saying why.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.store import Store
from tests._mosquitto import free_port
from tests.test_e2e_gateway import (
    HS1SA_QUIET,
    TS0215A_PRESS,
    TS0215A_RESET,
    gateway,
    hotline,
    publish,
    write_config,
)

pytestmark = pytest.mark.mosquitto


@contextlib.contextmanager
def small_card(path: Path, mb: int) -> Iterator[Path]:
    """A tmpfs of `mb` MB mounted at `path` for the test."""
    path.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={mb}m,mode=0700", "tmpfs",
                           str(path)], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"a small tmpfs cannot be mounted here (needs root, as in CI): "
                    f"{done.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def fill(card: Path) -> Path:
    """Fill the card to the last byte with another file, as a runaway log would."""
    filler = card / "runaway.log"
    with filler.open("wb", buffering=0) as f:
        for size in (1 << 16, 1 << 12, 1 << 9, 1):
            try:
                while True:
                    f.write(b"\0" * size)
                    os.fsync(f.fileno())
            except OSError as e:
                if e.errno != errno.ENOSPC:
                    raise
    return filler


async def until(check, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.5)


def stored_sos(db: Path) -> list[tuple[str, int]]:
    """The SOS alerts in the database on the card, and their messages, read from outside."""
    with contextlib.closing(sqlite3.connect(db)) as conn:
        return conn.execute("SELECT a.state, count(o.id) FROM alerts a LEFT JOIN outbox o ON "
                            "o.alert_id = a.id WHERE a.event = 'sos' GROUP BY a.id").fetchall()


@pytest.mark.parametrize("reserve_mb", [1, 0])
async def test_an_sos_on_a_full_card_is_sent_and_with_the_reserve_stored(tmp_path, mosquitto,
                                                                        reserve_mb):
    _, port = mosquitto
    hport, gid = free_port(), f"gw-card{reserve_mb}"
    with small_card(tmp_path / "card", 6) as card:
        path = write_config(tmp_path, port, hport, gateway_id=gid)
        path.write_text(path.read_text().replace('data_dir = "./data"', f'data_dir = "{card}"')
                        + f"\n[storage]\nreserve_mb = {reserve_mb}\n")
        db = card / "anxin.db"
        async with hotline(hport, tmp_path / "hotline.db") as hl, gateway(path) as gw:
            assert (card / "anxin.reserve").exists() == bool(reserve_mb)
            # The write-ahead log keeps the room of earlier writes, so a full card is felt
            # first by a store whose log has just been cut back (as a checkpoint does).
            await gw.store.call(lambda s: s.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)"))
            filler = fill(card)
            await publish(port, (f"{gid}/bedside_sos", TS0215A_PRESS),
                          (f"{gid}/bedside_sos", TS0215A_RESET))
            (alert,) = await hl.wait_for(1, timeout=20)
            assert (alert["code"], alert["device_id"]) == (101, "sos-bedside")
            state = await gw.store.call(Store.storage_state)
            assert state["full_since"] is not None  # the technician is told either way
            if reserve_mb:
                # the reserve made room: the alert and its message are on the card
                assert not (card / "anxin.reserve").exists() and state["reserve_spent"]
                assert state["pending_alerts"] == 0
                assert stored_sos(db) == [("raised", 1)] or stored_sos(db) == [
                    ("delivered", 1)]
                # observations do not eat the room meanwhile
                dropped = state["dropped"].get("observations", 0)
                await publish(port, (f"{gid}/kitchen_smoke", HS1SA_QUIET))

                async def counted() -> bool:
                    st = await gw.store.call(Store.storage_state)
                    return st["dropped"].get("observations", 0) > dropped
                await until(counted)
            else:
                assert state["pending_alerts"] == 1 and stored_sos(db) == []  # memory only

            filler.unlink()  # room again
            assert gw.store.store is not None
            gw.store.store.room_after_s = 0.0  # the episode ends at the next write

            async def recovered() -> bool:
                await publish(port, (f"{gid}/kitchen_smoke", HS1SA_QUIET))  # life goes on
                st = await gw.store.call(Store.storage_state)
                return st["full_since"] is None and not st["reserve_spent"]
            await until(recovered)
            assert (card / "anxin.reserve").exists() == bool(reserve_mb)
            assert stored_sos(db) == [("delivered", 1)]
            assert len(await hl.alerts()) == 1  # sent once
