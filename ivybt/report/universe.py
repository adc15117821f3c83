"""The universe-selection figure of a walk-forward report (`--select-universe`): which symbols
each fold chose, over each symbol's in-sample ranking metric."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ivybt.report.html import LIGHT_TEMPLATE

if TYPE_CHECKING:
    import plotly.graph_objects as go

UNIVERSE_HEADING = "Universe chosen per fold"
CHOSEN_MARK = "●"


def universe_symbols(folds: pd.DataFrame) -> list[str]:
    """The universe's symbols, in order, from folds.parquet's `universe_<SYMBOL>` columns."""
    return [c.removeprefix("universe_") for c in folds.columns
            if c.startswith("universe_") and folds[c].dtype == bool]  # fmt: skip


def universe_sections(folds: pd.DataFrame, by: str) -> list[tuple[str, go.Figure]]:
    """(heading, figure): a fold x symbol heatmap of each symbol's in-sample `by` (colour),
    the chosen symbols marked; empty when the study chose no universe."""
    import plotly.graph_objects as go

    symbols = universe_symbols(folds)
    if not symbols:
        return []
    scores = np.column_stack([folds[f"universe_score_{s}"].to_numpy(np.float64) for s in symbols])
    chosen = np.column_stack([folds[f"universe_{s}"].to_numpy(bool) for s in symbols])
    labels = [f"fold {k}: {a:%Y-%m-%d}..{b:%Y-%m-%d}" for k, a, b in
              zip(folds["fold"], folds["oos_first"], folds["oos_last"], strict=True)]  # fmt: skip
    status = np.where(chosen, "chosen", "not chosen")
    fig = go.Figure(go.Heatmap(
        z=scores, x=symbols, y=labels, text=np.where(chosen, CHOSEN_MARK, ""),
        texttemplate="%{text}", textfont={"size": 16}, customdata=status,
        colorscale="RdYlGn", zmid=0.0 if np.nanmin(scores, initial=0.0) < 0 else None,
        hoverongaps=False, xgap=1, ygap=1, colorbar={"title": {"text": f"in-sample {by}"}},
        hovertemplate="%{y}<br>%{x}: in-sample " + by + " %{z:.3f}<br>%{customdata}"
        "<extra></extra>",
    ))  # fmt: skip
    fig.update_layout(template=LIGHT_TEMPLATE, height=min(900, 120 + 28 * len(labels)),
                      margin={"l": 220, "r": 20, "t": 20, "b": 40})  # fmt: skip
    fig.update_yaxes(type="category", autorange="reversed", showgrid=False)
    fig.update_xaxes(type="category", showgrid=False, side="top")
    return [(UNIVERSE_HEADING, fig)]


def universe_summary(selection: dict[str, Any] | None) -> list[tuple[str, str]]:
    """Summary rows: the rule, and the OOS result of trading every symbol instead."""
    if not selection:
        return []
    every = selection.get("oos_all_symbols") or {}
    worth = selection.get("worth") or {}

    def shown(value: Any, fmt: str) -> str:
        return "n/a" if value is None else format(value, fmt)

    return [
        ("Universe selection", str(selection["described"])),
        ("OOS with every symbol: total_return, sharpe",
         f"{shown(every.get('total_return'), '.2%')}, {shown(every.get('sharpe'), '.2f')}"),
        ("Worth of the choice (chosen - every symbol): sharpe, CAGR",
         f"{shown(worth.get('sharpe'), '+.2f')}, {shown(worth.get('cagr'), '+.2%')}"),
    ]  # fmt: skip
