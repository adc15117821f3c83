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
from ivybt.report.html import render_html, write_html_atomic

__all__ = [
    "backtest_figures",
    "backtest_report_data",
    "backtest_report_html",
    "format_metric",
    "format_metrics",
    "render_html",
    "write_html_atomic",
]
