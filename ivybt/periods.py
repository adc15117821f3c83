"""Bars per year, used to annualise returns (`periods_per_year`).

Inferred from the interval and the calendar the bars follow, and always overridable
(`--periods-per-year`):

- daily bars: 252 when the series has no weekend sessions (exchange calendars), 365 when more
  than 1 % of its bars fall on a Saturday or Sunday (crypto trades every day);
- weekly 52, monthly 12;
- intraday: the bars' own density, bars per 365.25 days over the span they cover, rounded to a
  whole number (1h EURUSD, 24 x 5 a week: about 6,250; 1h crypto: 8,766); spans shorter than
  28 days are too short to measure, so pass --periods-per-year.
"""

from __future__ import annotations

import pandas as pd

from ivybt.data.intervals import parse_interval
from ivybt.errors import ConfigError

TRADING_DAYS = 252
CALENDAR_DAYS = 365
_WEEKEND_SHARE = 0.01
_MIN_SPAN_DAYS = 28


def infer_periods_per_year(index: pd.DatetimeIndex, interval: str) -> tuple[float, str]:
    """(periods_per_year, how it was decided) for bars stamped with `index` at `interval`."""
    iv = parse_interval(interval)
    if iv.name == "1wk":
        return 52.0, "weekly bars"
    if iv.name == "1mo":
        return 12.0, "monthly bars"
    if len(index) == 0:
        raise ConfigError("cannot infer periods_per_year from no bars; pass --periods-per-year")
    if not iv.intraday:
        if float((index.day_of_week >= 5).mean()) > _WEEKEND_SHARE:
            return float(CALENDAR_DAYS), "daily bars with weekend sessions"
        return float(TRADING_DAYS), "daily bars on weekdays only"
    span_days = (index[-1] - index[0] + iv.step) / pd.Timedelta(days=1)
    if span_days < _MIN_SPAN_DAYS:
        raise ConfigError(
            f"{len(index)} {iv.name} bars span {span_days:.1f} days, too short to infer "
            "periods_per_year; pass --periods-per-year (e.g. 6240 for 1h FX)"
        )
    density = round(len(index) / span_days * 365.25)
    return float(density), f"{iv.name} bars, {density} a year measured over {span_days:.0f} days"
