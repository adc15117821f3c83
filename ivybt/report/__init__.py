"""Reports: data builders (pandas only) and plotly figures, rendered as offline HTML pages.

Builders such as `backtest_report_data` return plain DataFrames and are tested without
plotly; figure functions only draw them. `import ivybt.report` does not import plotly: the
drawing functions import it when first called.
"""

from __future__ import annotations

from ivybt.report.backtest import (
    backtest_figures,
    backtest_report_html,
    format_metric,
    format_metrics,
)
from ivybt.report.backtest_data import backtest_report_data
from ivybt.report.grid import grid_figures, grid_report_html
from ivybt.report.grid_data import surface_data, top_combinations
from ivybt.report.html import render_html

__all__ = [
    "backtest_figures",
    "backtest_report_data",
    "backtest_report_html",
    "format_metric",
    "format_metrics",
    "grid_figures",
    "grid_report_html",
    "render_html",
    "surface_data",
    "top_combinations",
]
