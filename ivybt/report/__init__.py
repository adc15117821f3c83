"""Reports: data builders (pandas only) and plotly figures, rendered as offline HTML pages.

Builders such as `backtest_report_data` return plain DataFrames and are tested without
plotly; figure functions only draw them. Each report's figures come from one function
(`backtest_sections`, `grid_sections`, `ivybt.report.search.search_sections`,
`ivybt.report.walkforward.walkforward_sections`,
`ivybt.report.montecarlo.montecarlo_sections`), which both its HTML page and its result's
`.plot()` (a `ReportFigures`) call. `import ivybt.report` does not import plotly: the
drawing functions import it when first called.
"""

from __future__ import annotations

from ivybt.report.backtest import (
    backtest_figures,
    backtest_report_html,
    backtest_sections,
    format_metric,
    format_metrics,
)
from ivybt.report.backtest_data import backtest_report_data
from ivybt.report.figures import ReportFigures
from ivybt.report.grid import grid_figures, grid_report_html, grid_sections
from ivybt.report.grid_data import surface_data, top_combinations
from ivybt.report.html import render_html

__all__ = [
    "ReportFigures",
    "backtest_figures",
    "backtest_report_data",
    "backtest_report_html",
    "backtest_sections",
    "format_metric",
    "format_metrics",
    "grid_figures",
    "grid_report_html",
    "grid_sections",
    "render_html",
    "surface_data",
    "top_combinations",
]
