"""A short description of a loaded series, for `ivybt data show` and notebooks."""

from __future__ import annotations

from typing import Any

import pandas as pd

from ivybt.data.loader import LoadedSeries


def summarize(series: LoadedSeries) -> dict[str, Any]:
    """Range, size, spacing, largest gap, prices and provenance of a loaded series.

    `total_return` is close-to-close over the whole range, a fraction (0.10 = 10 %).
    """
    frame = series.frame
    index = frame.index
    gaps = pd.Series(index[1:] - index[:-1], index=index[1:])
    largest_at = gaps.idxmax() if len(gaps) else None
    close = frame["close"]
    return {
        "symbol": series.symbol,
        "interval": series.interval,
        "source": series.source,
        "prices": "adjusted (OHLC x adj_close/close)" if series.adjusted else "as stored",
        "first": index[0],
        "last": index[-1],
        "rows": len(frame),
        "median_spacing": gaps.median() if len(gaps) else None,
        "largest_gap": gaps.max() if len(gaps) else None,
        "largest_gap_ends": largest_at,
        "first_close": float(close.iloc[0]),
        "last_close": float(close.iloc[-1]),
        "min_low": float(frame["low"].min()),
        "max_high": float(frame["high"].max()),
        "total_return": float(close.iloc[-1] / close.iloc[0] - 1.0),
        "zero_volume_bars": int((frame["volume"] == 0).sum()),
        "columns": list(frame.columns),
        "sha256": series.sha256,
        **{k: v for k, v in series.provenance.items() if v is not None},
    }
