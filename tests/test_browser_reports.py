"""The HTML reports open offline in headless Chromium with no script error and every plot
drawn; first, the harness (`tests.browser`) is shown to catch what it must: an uncaught
exception, a console.error, a plot that needs the network, WebGL that is not there."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import pytest
from click.testing import CliRunner

import ivybt
import ivybt.report.backtest as backtest_report
import tests.browser as browser
from ivybt.cli import cli
from tests.browser import CLIPPED_TABLE_TEXT_JS, Chromium, open_in_chromium, require_chromium

FIGURE_SECTION = '<section class="figure">'  # one per figure in ivybt.report.html
GREY_PLOTS_JS = """[...document.querySelectorAll('.js-plotly-plot rect.bg')]
  .filter(r => getComputedStyle(r).fill === 'rgb(229, 236, 246)').length"""
"""Plot areas drawn on plotly's default grey (#E5ECF6) instead of the reports' white."""
CHECKS = {"clipped": CLIPPED_TABLE_TEXT_JS, "grey": GREY_PLOTS_JS}


@pytest.fixture(scope="module")
def _browsers() -> Iterator[list[Chromium]]:
    browsers: list[Chromium] = []
    yield browsers
    for started in browsers:
        started.close()


@pytest.fixture
def chromium(_browsers: list[Chromium]) -> Chromium:
    """One headless Chromium for the module (each page gets a fresh browser context), started
    again if a test left it dead."""
    require_chromium()
    if not _browsers or not _browsers[-1].alive:
        _browsers.append(Chromium())
    return _browsers[-1]


def page(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "page.html"
    path.write_text(f"<!DOCTYPE html><html><head></head><body>{body}</body></html>")
    return path


def figure_page(tmp_path: Path, figure: go.Figure, include_plotlyjs: bool | str = True) -> Path:
    path = tmp_path / "figure.html"
    figure.write_html(path, include_plotlyjs=include_plotlyjs, full_html=True)
    return path


def assert_drew_offline(result: browser.PageResult, plots: int) -> None:
    assert result.errors == []
    assert result.external_requests == []
    assert result.graphs == result.plots == plots


# -- the harness -----------------------------------------------------------------------------


def test_an_uncaught_exception_is_an_error(tmp_path, chromium):
    path = page(tmp_path, '<p id="before">ok</p><script>throw new Error("boom")</script>')
    result = chromium.open(path)
    assert len(result.errors) == 1
    assert result.errors[0].startswith("Uncaught Error: boom")
    assert path.as_uri() in result.errors[0]  # where it happened
    assert '<p id="before">ok</p>' in result.dom


def test_console_error_is_an_error_and_the_dom_is_the_scripts_result(tmp_path, chromium):
    script = """<script>
      document.body.insertAdjacentHTML('beforeend', '<p id="added">added by a script</p>');
      console.warn("careful"); console.error("bad", 42);
    </script>"""
    result = chromium.open(page(tmp_path, script))
    assert len(result.errors) == 1 and result.errors[0].startswith("console.error: bad 42")
    assert any("careful" in line for line in result.warnings)  # warnings are not errors
    assert '<p id="added">added by a script</p>' in result.dom
    assert result.plots == result.graphs == result.webgl_plots == 0


def test_a_plotly_figure_draws_with_no_error(tmp_path, chromium):
    figure = go.Figure(go.Scatter(x=[1, 2, 3], y=[3, 1, 2]))
    result = chromium.open(figure_page(tmp_path, figure))
    assert_drew_offline(result, plots=1)
    assert result.webgl_plots == 0
    assert 'class="main-svg"' in result.dom


def test_a_3d_surface_draws_with_webgl(tmp_path, chromium):
    x = np.linspace(-2, 2, 25)
    surface = go.Surface(z=np.exp(-(x[:, None] ** 2 + x[None, :] ** 2)), x=x, y=x)
    figure = go.Figure(surface, layout={"width": 600, "height": 450})  # small: SwiftShader
    result = chromium.open(figure_page(tmp_path, figure))
    assert_drew_offline(result, plots=1)
    assert result.webgl_plots == 1
    assert "gl-container" in result.dom


def test_without_webgl_a_3d_surface_is_an_error(tmp_path):
    require_chromium()
    figure = go.Figure(go.Surface(z=[[0, 1], [1, 0]]), layout={"width": 600, "height": 450})
    result = open_in_chromium(figure_page(tmp_path, figure), extra_flags=["--disable-webgl"])
    assert result.webgl_plots == 0
    assert result.errors == ["plotly: WebGL is not available (1 graph(s) show .no-webgl)"]


def test_a_page_that_needs_the_network_fails_and_says_so(tmp_path, chromium):
    # plotly.js from its CDN: the request is seen, refused (every host is NOTFOUND), and the
    # figure never draws
    figure = go.Figure(go.Scatter(y=[1, 2]))
    result = chromium.open(figure_page(tmp_path, figure, include_plotlyjs="cdn"))
    (cdn,) = result.external_requests
    assert cdn.startswith("https://cdn.plot.ly/")
    assert any("ERR_NAME_NOT_RESOLVED" in error for error in result.errors)
    assert any("Plotly is not defined" in error for error in result.errors)
    assert (result.graphs, result.plots) == (1, 0)


def test_without_chromium_ci_fails_and_elsewhere_skips(monkeypatch):
    monkeypatch.setattr(browser, "find_chromium", lambda: None)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI is set"):
        require_chromium()
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match="apt-get install chromium"):
        require_chromium()


# -- the reports -----------------------------------------------------------------------------


def invoke(*args: str) -> None:
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 0, result.output


def test_backtest_report(tmp_path, chromium):
    # README command (a)'s run
    out = tmp_path / "run"
    invoke(
        *("backtest", "sma_cross", "--symbol", "SPY", "--source", "sample"),
        *("-p", "fast=10", "-p", "slow=50", "--out", str(out)),
    )
    report = out / "report.html"
    assert report.read_text().count(FIGURE_SECTION) == len(backtest_report.SECTION_HEADINGS)
    result = chromium.open(report, checks=CHECKS)
    assert result.values == {"clipped": [], "grey": 0}
    assert_drew_offline(result, plots=len(backtest_report.SECTION_HEADINGS))
    assert result.webgl_plots == 0  # 5,241 bars: SVG traces


def test_backtest_report_with_webgl_traces(tmp_path, monkeypatch, chromium):
    # Series longer than GL_THRESHOLD are drawn with Scattergl: lowered here so that a short
    # run takes that path (a page of 20,000 points takes ~6 s to open)
    monkeypatch.setattr(backtest_report, "GL_THRESHOLD", 500)
    result = ivybt.backtest("sma_cross", symbol="SPY", source="sample", start="2017-01-01")
    report = result.write(tmp_path / "run") / "report.html"
    opened = chromium.open(report)
    assert_drew_offline(opened, plots=len(backtest_report.SECTION_HEADINGS))
    assert opened.webgl_plots == 3  # price, equity, drawdown; the PnL histogram is SVG


def test_grid_report(tmp_path, chromium):
    # three varying parameters: the metric surface, the sliced objective, the top table,
    # then the PBO logit histogram
    out = tmp_path / "run"
    invoke(
        *("grid", "macd_cross", "--symbol", "SPY", "--source", "sample"),
        *("-p", "fast=5:15:5", "-p", "slow=20:40:10", "-p", "signal=5,9", "--out", str(out)),
    )
    report = out / "report.html"
    assert report.read_text().count(FIGURE_SECTION) == 4
    result = chromium.open(report, checks=CHECKS)
    assert_drew_offline(result, plots=4)
    assert "Probability of backtest overfitting (CSCV)" in result.dom
    assert "Metric surface: fast × slow" in result.dom
    assert result.values["clipped"] == []  # every header and cell of the top table fits
    assert "★ best by sharpe" in result.dom


def test_grid_table_headers_fit_their_columns(tmp_path, chromium):
    # issue #13: "total_returr", "ax_drawdov": plotly clipped the headers of the best
    # combinations at their (evenly split) column edges
    out = tmp_path / "run"
    invoke(
        *("grid", "sma_cross", "--symbol", "SPY", "--source", "sample", "--no-evidence"),
        *("-p", "fast=5:50:5", "-p", "slow=20:200:10", "--out", str(out)),
    )
    result = chromium.open(out / "report.html", checks=CHECKS)
    assert result.errors == []
    assert result.values["clipped"] == []
    text = (out / "report.html").read_text()
    for escaped, plain in (("\\u003c", "<"), ("\\u003e", ">"), ("\\u002f", "/")):
        text = text.replace(escaped, plain)  # plotly's JSON escapes of the figure's text
    for header in ("total</b><br><b>return", "max</b><br><b>drawdown"):
        assert header in text  # long headers are broken at their underscores


def test_search_report(tmp_path, chromium):
    # the search page: the best trial's metrics (no dict repr), Optuna's importance, slice and
    # contour plots in the reports' light style, the best trials, the PBO histogram
    out = tmp_path / "run"
    invoke(
        *("optimize", "sma_cross", "--symbol", "SPY", "--source", "sample", "--seed", "3"),
        *("-p", "fast=2:60", "-p", "slow=20:200", "--trials", "64", "--out", str(out)),
    )  # the study goes to the default journal, ./results/optuna.journal in the test's folder
    page = out / "report.html"
    text = page.read_text()
    sections = text.count(FIGURE_SECTION)
    assert sections == 6  # history, importances, slice, contour, best trials, PBO
    result = chromium.open(page, checks=CHECKS)
    assert_drew_offline(result, plots=sections)
    for heading in ("Parameter importances (PED-ANOVA)", "Slice plot (sharpe)",
                    "Contour plot: ", "Best 20 trials by sharpe"):  # fmt: skip
        assert heading in result.dom, heading
    assert "{'fast'" not in text and "{&#x27;fast" not in text  # no Python dict repr
    assert "<th>Best trial</th><td>#" in text and "<th>total_return</th><td>" in text
    assert result.values == {"clipped": [], "grey": 0}  # fits; white, not plotly's grey


def test_montecarlo_page(tmp_path, chromium):
    out = tmp_path / "run"
    invoke(*("backtest", "sma_cross", "--symbol", "SPY", "--source", "sample"),
           *("--start", "2012-01-01", "--out", str(out)))  # fmt: skip
    invoke("montecarlo", str(out), "--n", "500", "--seed", "1")
    page = out / "montecarlo-trades-n500-seed1.html"
    result = chromium.open(page, checks=CHECKS)
    assert_drew_offline(result, plots=4)  # the fan and three histograms
    assert result.values == {"clipped": [], "grey": 0}


def test_walkforward_report_and_stability_page(tmp_path, chromium):
    # README command (a)'s kind of run, shorter: every figure draws, the 3D surface in WebGL
    out = tmp_path / "run"
    invoke(
        *("walkforward", "sma_cross", "--symbol", "SPY", "--source", "sample"),
        *("-p", "fast=5:30:5", "-p", "slow=20:120:20", "--is", "3y", "--oos", "1y"),
        *("--start", "2008-01-01", "--out", str(out)),
    )
    report = out / "report.html"
    sections = report.read_text().count(FIGURE_SECTION)
    assert sections == 6  # folds, equity, WFE, 3D surface, per-fold heatmaps, drift
    result = chromium.open(report, checks=CHECKS)
    assert_drew_offline(result, plots=sections)
    assert result.webgl_plots == 1  # the 3D stability surface
    assert result.values["clipped"] == []  # the fold table's headers and cells fit
    assert "Stitched out-of-sample equity vs buy-and-hold" in result.dom
    (page,) = out.glob("surface-oos-*.html")
    stability = chromium.open(page, checks=CHECKS)
    assert_drew_offline(stability, plots=page.read_text().count(FIGURE_SECTION))
    assert stability.webgl_plots == 1
    assert stability.values["clipped"] == []
