"""Service statistics for 民政 reporting: alerts by type, outcome, period and district, and
response times (received -> accepted -> resolved, median and p90). Pure functions over the
rows `ConsoleStore.between` returns; tests and drills are not counted.

Times are the centre's own clock (received_at, accepted_at, resolved_at): a gateway's clock
can be wrong, the centre's response is what is reported.
"""

from __future__ import annotations

import csv
import io
import math
import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from alerts.wire import RESOLUTION_OUTCOMES, title

PERIODS = ("day", "week", "month")
MAX_RANGE_DAYS = 3700


class RangeError(ValueError):
    """A statistics query that cannot be answered; str() says why."""


def parse_range(start: str | None, end: str | None, today: date) -> tuple[date, date]:
    """Inclusive dates from `YYYY-MM-DD` strings; default the last 30 days up to today."""
    try:
        last = date.fromisoformat(end) if end else today
        first = date.fromisoformat(start) if start else last - timedelta(days=29)
    except ValueError:
        raise RangeError("from and to are dates like 2026-11-23") from None
    if first > last:
        raise RangeError(f"from ({first}) is after to ({last})")
    if (last - first).days > MAX_RANGE_DAYS:
        raise RangeError(f"the range is over {MAX_RANGE_DAYS} days")
    return first, last


def bounds(first: date, last: date, tz: ZoneInfo) -> tuple[float, float]:
    """Unix seconds from the start of `first` to the end of `last`, local time."""
    start = datetime(first.year, first.month, first.day, tzinfo=tz)
    end = datetime(last.year, last.month, last.day, tzinfo=tz) + timedelta(days=1)
    return start.timestamp(), end.timestamp()


def period_key(ts: float, period: str, tz: ZoneInfo) -> str:
    """The day (2026-11-23), ISO week (2026-W48) or month (2026-11) a time falls in."""
    d = datetime.fromtimestamp(ts, tz).date()
    if period == "week":
        year, week, _ = d.isocalendar()
        return f"{year}-W{week:02d}"
    return d.strftime("%Y-%m") if period == "month" else d.isoformat()


def p90(values: list[float]) -> float | None:
    """The 90th percentile (nearest rank), None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)]


@dataclass
class Group:
    """Counts and response times of one slice (a period, a district, a type or everything)."""

    alerts: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    to_accept: list[float] = field(default_factory=list)
    to_resolve: list[float] = field(default_factory=list)

    def add(self, r: dict[str, Any]) -> None:
        """Count one alert row."""
        self.alerts += 1
        self.outcomes[r["outcome"] if r["state"] == "resolved" else "open"] += 1
        if r["accepted_at"] is not None:
            self.to_accept.append(r["accepted_at"] - r["received_at"])
            if r["resolved_at"] is not None:
                self.to_resolve.append(r["resolved_at"] - r["accepted_at"])

    def figures(self) -> dict[str, Any]:
        """The slice as plain numbers (seconds, rounded)."""
        return {"alerts": self.alerts, "outcomes": dict(self.outcomes),
                "accept_median_s": _r(statistics.median(self.to_accept)
                                      if self.to_accept else None),
                "accept_p90_s": _r(p90(self.to_accept)),
                "resolve_median_s": _r(statistics.median(self.to_resolve)
                                       if self.to_resolve else None),
                "resolve_p90_s": _r(p90(self.to_resolve))}


def _r(v: float | None) -> float | None:
    return None if v is None else round(v, 1)


def compute(rows: list[dict[str, Any]], period: str, tz: ZoneInfo) -> dict[str, Any]:
    """Totals and breakdowns by type, outcome ("open" for not yet resolved), period and
    district."""
    if period not in PERIODS:
        raise RangeError(f"period is one of {', '.join(PERIODS)}")
    total = Group()
    by: dict[str, dict[str, Group]] = {k: defaultdict(Group)
                                       for k in ("type", "outcome", "period", "district")}
    for r in rows:
        total.add(r)
        by["type"][r["event"]].add(r)
        by["outcome"][r["outcome"] if r["state"] == "resolved" else "open"].add(r)
        by["period"][period_key(r["received_at"], period, tz)].add(r)
        by["district"][r["district"] or ""].add(r)
    return {"total": total.figures(),
            **{f"by_{k}": {key: g.figures() for key, g in sorted(v.items())}
               for k, v in by.items()}}


CSV_OUTCOMES = (*RESOLUTION_OUTCOMES, "restored", "open")


def to_csv(rows: list[dict[str, Any]], period: str, tz: ZoneInfo) -> str:
    """One line per period x district x alert type, with outcomes and response times.

    Starts with a UTF-8 byte order mark: Excel, which 民政 offices open it in, needs it to
    read Chinese.
    """
    groups: dict[tuple[str, str, str], Group] = defaultdict(Group)
    for r in rows:
        groups[(period_key(r["received_at"], period, tz), r["district"] or "",
                r["event"])].add(r)
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\r\n")
    w.writerow(["period", "district", "event", "event_zh", "alerts", *CSV_OUTCOMES,
                "accept_median_s", "accept_p90_s", "resolve_median_s", "resolve_p90_s"])
    for (key, district, event), g in sorted(groups.items()):
        f = g.figures()
        w.writerow([key, district, event, title(event)["zh"], f["alerts"],
                    *(f["outcomes"].get(o, 0) for o in CSV_OUTCOMES),
                    *("" if f[k] is None else f[k] for k in (
                        "accept_median_s", "accept_p90_s", "resolve_median_s",
                        "resolve_p90_s"))])
    return "\ufeff" + out.getvalue()
