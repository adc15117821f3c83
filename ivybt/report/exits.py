"""Exits by reason (docs/stops.md): how the trades closed, from the trade table."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ivybt.kernels.stops import EXIT_REASONS
from ivybt.report.table import table_figure

if TYPE_CHECKING:
    import plotly.graph_objects as go

EXITS_HEADING = "Exits by reason"


def exits_table(trades: pd.DataFrame) -> pd.DataFrame:
    """One row per exit reason (`EXIT_REASONS` order, closed trades only): trades, share of
    closed trades, win rate, mean trade return, net PnL, mean bars held."""
    closed = trades[~trades["is_open"].astype(bool)]
    rows = []
    for reason in EXIT_REASONS:
        part = closed[closed["exit_reason"] == reason]
        n = len(part)
        rows.append({
            "reason": reason, "trades": n,
            "share": n / len(closed) if len(closed) else np.nan,
            "win_rate": float((part["net_pnl"] > 0).mean()) if n else np.nan,
            "avg_return": float(part["return"].mean()) if n else np.nan,
            "net_pnl": float(part["net_pnl"].sum()),
            "avg_bars_held": float(part["bars_held"].mean()) if n else np.nan,
        })  # fmt: skip
    return pd.DataFrame(rows)


def exits_record(trades: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """`exits_table` for metrics.json: {reason: {trades, share, ...}}, NaN as null."""
    table = exits_table(trades).set_index("reason")
    return {
        reason: {k: (None if isinstance(v, float) and not np.isfinite(v) else v)
                 for k, v in row.items()}
        for reason, row in table.to_dict("index").items()
    }  # fmt: skip


def exits_section(trades: pd.DataFrame) -> tuple[str, go.Figure]:
    """(heading, table figure) of `exits_table`."""
    table = exits_table(trades)

    def shown(value: float, fmt: str) -> str:
        return "n/a" if not np.isfinite(value) else format(value, fmt)

    columns = [
        list(table["reason"]),
        [f"{n:,}" for n in table["trades"]],
        [shown(v, ".1%") for v in table["share"]],
        [shown(v, ".1%") for v in table["win_rate"]],
        [shown(v, ".2%") for v in table["avg_return"]],
        [f"{v:,.2f}" for v in table["net_pnl"]],
        [shown(v, ".1f") for v in table["avg_bars_held"]],
    ]
    header = ["reason", "trades", "share", "win rate", "mean return", "net PnL",
              "mean bars held"]  # fmt: skip
    return EXITS_HEADING, table_figure(header, columns, align=["left", *["right"] * 6])
