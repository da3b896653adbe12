"""Both stores migrate safely when several processes open a new database at the same moment
(the gateway starting while a technician runs `anxin status`; two hotline receivers)."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from gateway import store as gateway_store
from hotline import store as hotline_store


def open_at_once(opener: Callable[[Path], Any], path: Path, n: int = 6) -> list[BaseException]:
    """Open the store at `path` from `n` threads released together; the errors they met."""
    barrier = threading.Barrier(n)
    errors: list[BaseException] = []

    def one() -> None:
        barrier.wait()
        try:
            opener(path).close()
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=one) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return errors


@pytest.mark.parametrize(("module", "opener"), [
    (gateway_store, gateway_store.Store),
    (hotline_store, hotline_store.HotlineStore),
])
def test_a_new_store_opened_by_several_at_once_is_migrated_once(tmp_path: Path, module,
                                                                opener):
    for round_ in range(10):  # the race is narrow: give it several chances
        path = tmp_path / f"store-{round_}.db"
        assert open_at_once(opener, path) == []
        with sqlite3.connect(path) as db:
            names = [r[0] for r in db.execute("SELECT name FROM migrations")]
        assert sorted(names) == sorted(name for name, _ in module.MIGRATIONS)
