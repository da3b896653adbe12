"""Writing the gateway config for the technician: assign a device without hand-editing TOML.

`assign_device` adds a [[devices]] entry (or updates the one with that id) in the config file
itself. The file is edited with tomlkit, so the installer's comments and layout stay as they
were. The new text is validated exactly as `anxin check-config` would before anything is
written; a config that would not load is refused with every problem named, and the file is
left untouched. The previous version is kept under `<config dir>/config-backups/`, and the
new one replaces the old atomically (written beside it, fsynced, renamed), so a power cut
mid-write leaves either the old file or the new one, never half of each.
"""

from __future__ import annotations

import os
import shutil
import time
import tomllib
from pathlib import Path
from typing import Any

import tomlkit

from gateway.config import Config, ConfigError, parse

BACKUP_DIR = "config-backups"
KEEP_BACKUPS = 30
# What a technician may set on a device; everything else in the entry is kept as it was.
ASSIGNABLE = ("source", "topic", "model", "room", "name", "resident", "zone", "exposes")


def assign_device(path: str | os.PathLike[str], device_id: str, fields: dict[str, Any],
                  *, now: float | None = None) -> tuple[Config, Path]:
    """Add or update device `device_id`; return the new Config and the backup's path.

    Fields set to None are removed from the entry. ConfigError if the result would not load.
    """
    unknown = set(fields) - set(ASSIGNABLE)
    if unknown:
        raise ConfigError([(f"devices.{device_id}", f"cannot set {', '.join(sorted(unknown))}"
                                                    f" (settable: {', '.join(ASSIGNABLE)})")])
    p = Path(path)
    old_text = p.read_text(encoding="utf-8")
    doc = tomlkit.parse(old_text)
    devices = doc.get("devices")
    if devices is None:
        devices = tomlkit.aot()
        doc.append("devices", devices)
    entry = next((d for d in devices if d.get("id") == device_id), None)
    if entry is None:
        entry = tomlkit.table()
        entry["id"] = device_id
        devices.append(entry)
    for key in ASSIGNABLE:
        if key not in fields:
            continue
        if fields[key] is None or fields[key] == "":
            entry.pop(key, None)
        else:
            entry[key] = fields[key]
    new_text = tomlkit.dumps(doc)
    cfg = parse(tomllib.loads(new_text), base_dir=str(p.resolve().parent), source=str(p))
    backup = _backup(p, old_text, now if now is not None else time.time())
    _replace(p, new_text)
    return cfg, backup


def _backup(p: Path, text: str, now: float) -> Path:
    folder = p.resolve().parent / BACKUP_DIR
    folder.mkdir(mode=0o700, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(now))
    target = folder / f"{p.stem}-{stamp}Z{p.suffix}"
    n = 1
    while target.exists():
        n += 1
        target = folder / f"{p.stem}-{stamp}Z-{n}{p.suffix}"
    target.write_text(text, encoding="utf-8")
    shutil.copymode(p, target)
    for old in sorted(folder.glob(f"{p.stem}-*{p.suffix}"))[:-KEEP_BACKUPS]:
        old.unlink()
    return target


def _replace(p: Path, text: str) -> None:
    tmp = p.with_name(f".{p.name}.new")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    shutil.copymode(p, tmp)
    os.replace(tmp, p)
    fd = os.open(p.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def backups(path: str | os.PathLike[str]) -> list[Path]:
    """The kept previous versions of a config file, oldest first."""
    p = Path(path)
    return sorted((p.resolve().parent / BACKUP_DIR).glob(f"{p.stem}-*{p.suffix}"))


__all__ = ["ASSIGNABLE", "ConfigError", "assign_device", "backups"]
