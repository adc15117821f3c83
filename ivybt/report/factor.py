"""The factor view's figures (`ivybt.studies.factor`): the information coefficient of each
period, and the mean forward return of each score quantile."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import plotly.graph_objects as go

    from ivybt.studies.factor import FactorView

IC_HEADING = "Information coefficient per selection"
QUANTILE_HEADING = "Forward return by score quantile"


def factor_sections(view: FactorView) -> list[tuple[str, go.Figure]]:
    """(heading, figure) pairs: the IC per period (bars) with its mean (a line), and the mean
    forward return per score quantile (bars, 1: the lowest scores)."""
    import plotly.graph_objects as go

    ic = view.ic.dropna(subset=["ic"])
    summary = view.summary
    colors = ["#1f77b4" if value > 0 else "#d62728" for value in ic["ic"]]
    bars = go.Figure(go.Bar(x=ic.index, y=ic["ic"], name="IC", marker_color=colors))
    if len(ic):
        label = f"mean {summary['ic_mean']:.3f}, t {summary['ic_t']:.2f}"
        bars.add_hline(y=summary["ic_mean"], line_dash="dash", annotation_text=label)
    bars.update_layout(height=380, yaxis_title="Spearman IC", xaxis_title="selection bar",
                       margin={"t": 30}, showlegend=False)  # fmt: skip
    quantiles = view.quantiles
    groups = go.Figure(go.Bar(x=[str(q) for q in quantiles.index],
                              y=quantiles["mean_forward_return"] * 100.0,
                              text=[f"{int(n):,}" for n in quantiles["observations"]],
                              hovertemplate="quantile %{x}: %{y:.3f}%<br>%{text} "
                              "observations<extra></extra>"))  # fmt: skip
    groups.update_layout(height=380, yaxis_title="mean forward return, %",
                         xaxis_title="score quantile (1: lowest)", margin={"t": 30})  # fmt: skip
    return [(IC_HEADING, bars), (QUANTILE_HEADING, groups)]
