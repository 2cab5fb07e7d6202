"""Chart geometry for server-drawn SVG: each value's share of the largest, and a day-by-day series."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    share: float  # 0..1 of the largest value, the bar's length


def bars(items: list[tuple[str, float]]) -> list[Bar]:
    """One bar per (label, value); the largest value fills the width."""
    top = max((float(value) for _, value in items), default=0) or 1
    return [Bar(label, value, float(value) / top) for label, value in items]


def daily(rows: list[dict], key: str, days: int, today: date | None = None) -> list[Bar]:
    """A bar per day for the last ``days`` days (days without jobs are zero), from overview's ``by_day`` rows."""
    today = today or date.today()
    values = {row["key"]: row[key] for row in rows}
    series = [
        (day.isoformat(), values.get(day.isoformat(), 0))
        for day in (today - timedelta(days=offset) for offset in range(days - 1, -1, -1))
    ]
    return bars(series)
