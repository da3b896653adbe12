"""Disk space held in reserve beside the store, given up to write an alert on a full card.

On a full SD card (a runaway log, another program, a card smaller than planned) an alert the
store cannot write is still sent from memory (gateway/store.py), but it is lost if the
gateway restarts before room returns. So the gateway keeps a file of `size` bytes allocated
beside its database (`posix_fallocate`: real blocks, not a sparse file that frees nothing).
When an alert cannot be written because the disk is full, the store deletes the reserve and
writes the alert into the room it leaves. While the reserve is spent the store writes only
alerts, their messages and what operators do about them: observations and bookkeeping are
dropped and counted, so the room goes to what must not be lost. Once the disk has room for
the reserve and as much again, it is allocated anew and everything is written again.

The reserve only helps when the disk is full: a database at a page limit is not.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class Reserve:
    """A reserve file of `size` bytes at `path` (size 0: none is kept)."""

    path: Path
    size: int
    released_at: float | None = None  # wall clock, when this process gave it up

    @property
    def spent(self) -> bool:
        """Whether a reserve is wanted and is not in place (given up, or no room for it)."""
        if self.size <= 0:
            return False
        try:
            return self.path.stat().st_size < self.size
        except FileNotFoundError:
            return True

    def ensure(self) -> bool:
        """Allocate the reserve if it is missing and the disk has room for it twice over;
        whether it is in place now."""
        if not self.spent:
            return self.size > 0
        try:
            free = shutil.disk_usage(self.path.parent).free
        except OSError:
            return False
        if free < 2 * self.size:
            return False
        part = self.path.with_name(self.path.name + ".part")
        try:
            fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                os.posix_fallocate(fd, 0, self.size)
                os.fsync(fd)
            finally:
                os.close(fd)
            part.replace(self.path)
        except OSError as e:  # the room went meanwhile; try again later
            with contextlib.suppress(OSError):
                part.unlink()
            logger.debug("reserve %s not allocated: %s", self.path, e)
            return False
        if self.released_at is not None:
            logger.warning("disk space reserve restored (%d MB) after %.0f s: everything is "
                           "stored again", self.size // 2**20, time.time() - self.released_at)
            self.released_at = None
        return True

    def release(self) -> bool:
        """Give the reserve up to make room; whether there was one to give."""
        try:
            self.path.unlink()
        except FileNotFoundError:
            return False
        self.released_at = time.time()
        logger.error("disk full: the %d MB space reserve %s was released to write an alert; "
                     "only alerts are stored until the card has room again", self.size // 2**20,
                     self.path)
        return True
