"""The overfitting evidence's figure: the histogram of CSCV logits (ivybt.stats.pbo).

Bars left of zero are splits where the in-sample best ranked at or below the out-of-sample
median (they make the PBO); the title carries PBO and the deflated Sharpe ratio.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any

from ivybt.report.html import LIGHT_TEMPLATE


def evidence_figures(evidence: Mapping[str, Any] | None) -> list[tuple[str, Any]]:
    """[(heading, figure)] for a report; empty without a PBO."""
    pbo = (evidence or {}).get("pbo")
    if not pbo or not pbo.get("histogram"):
        return []
    import plotly.graph_objects as go

    counts = pbo["histogram"]["counts"]
    edges = pbo["histogram"]["edges"]
    pairs = list(itertools.pairwise(edges))
    centres = [(a + b) / 2 for a, b in pairs]
    colours = ["#d62728" if c <= 0 else "#1f77b4" for c in centres]
    fig = go.Figure(go.Bar(
        x=centres, y=counts, width=[b - a for a, b in pairs], marker={"color": colours},
        hovertemplate="logit %{x:.2f}<br>%{y} splits<extra></extra>",
    ))  # fmt: skip
    dsr = ((evidence or {}).get("dsr") or {}).get("dsr")
    title = f"PBO {pbo['pbo']:.2f} over {pbo['n_splits']:,} splits" + (
        f"; deflated Sharpe ratio {dsr:.2f}" if dsr is not None else ""
    )  # fmt: skip
    fig.update_layout(template=LIGHT_TEMPLATE, height=380, bargap=0.02,
                      title={"text": title, "x": 0, "xanchor": "left", "font": {"size": 14}},
                      xaxis_title="logit of the in-sample best's out-of-sample rank "
                      "(<= 0: below the median)", yaxis_title="splits",
                      margin={"l": 70, "r": 20, "t": 60, "b": 60})  # fmt: skip
    fig.add_vline(x=0, line={"color": "#52606d", "dash": "dot"})
    return [("Probability of backtest overfitting (CSCV)", fig)]
