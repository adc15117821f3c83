"""Notebook use (issue #13 point 27): every result object has `.plot()`, returning the same
plotly figures as its report page, and a short one-line `repr`."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import plotly.graph_objects as go
import pytest

import ivybt
from ivybt.report.figures import ReportFigures
from ivybt.runs.montecarlo import monte_carlo

COMMON = {"symbol": "SPY", "source": "sample"}
SPACE = {"fast": "5:20:5", "slow": "30:60:10"}


def page_figures(html: str) -> list[tuple[str, dict[str, Any]]]:
    """(heading, {"data", "layout"}) of every figure of a report page, as plotly.js gets
    them (`Plotly.newPlot(id, data, layout, config)`)."""
    decoder = json.JSONDecoder()
    out = []
    for section in html.split('<section class="figure">')[1:]:
        heading = re.search(r"<h2>(.*?)</h2>", section).group(1)  # type: ignore[union-attr]
        call = section.index("Plotly.newPlot(")
        start = section.index("[", call)
        data, end = decoder.raw_decode(section, start)
        layout, _ = decoder.raw_decode(section, section.index("{", end))
        out.append((heading, {"data": data, "layout": layout}))
    return out


def _plain(figure: go.Figure) -> dict[str, Any]:
    return json.loads(figure.to_json())


def assert_same_figures(figures: ReportFigures, page: Path) -> None:
    import html as html_module

    drawn = page_figures(page.read_text(encoding="utf-8"))
    assert [html_module.unescape(h) for h, _ in drawn] == figures.headings
    for (heading, want), figure in zip(drawn, figures, strict=True):
        got = _plain(figure)
        assert got["data"] == want["data"], heading
        for key in ("title", "xaxis", "yaxis", "height", "updatemenus", "sliders", "shapes"):
            assert got["layout"].get(key) == want["layout"].get(key), (heading, key)


def assert_short_repr(result: object, *parts: str) -> None:
    text = repr(result)
    assert text.startswith(f"<{type(result).__name__} ") and text.endswith(">")
    assert "\n" not in text and len(text) < 400, text
    for part in parts:
        assert part in text, (part, text)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("results")


def test_backtest_result(folder: Path) -> None:
    result = ivybt.backtest("sma_cross", **COMMON, params={"fast": 10, "slow": 50})
    page = result.write(folder / "bt") / "report.html"
    figures = result.plot()
    assert isinstance(figures, ReportFigures) and all(isinstance(f, go.Figure) for f in figures)
    assert_same_figures(figures, page)
    assert figures["Drawdown"] is figures[2]
    assert_short_repr(result, "sma_cross fast=10 slow=50 on SPY 1d", "total_return 37.27%",
                      "n_trades 69", "(5,241 bars)")  # fmt: skip


def test_grid_result(folder: Path) -> None:
    result = ivybt.grid("sma_cross", **COMMON, params=SPACE, start="2015-01-01")
    page = result.write(folder / "grid") / "report.html"
    figures = result.plot()
    assert len(figures) == 3  # heatmap, best combinations, PBO
    assert_same_figures(figures, page)
    best = result.best_params()
    assert_short_repr(result, "16 combinations of fast, slow",
                      f"best by sharpe: fast={best['fast']}, slow={best['slow']}")  # fmt: skip


def test_search_result(folder: Path) -> None:
    space = {"fast": "2:40", "slow": "30:90"}
    result = ivybt.optimize("sma_cross", **COMMON, params=space, trials=24, seed=1,
                            results_dir=folder, start="2015-01-01")  # fmt: skip
    from ivybt.runs.optimize import write_search

    page = write_search(result, folder / "search") / "report.html"
    figures = result.plot()
    assert "Parameter importances (PED-ANOVA)" in figures.headings
    assert_same_figures(figures, page)
    best = result.best_trials()[0]
    assert_short_repr(result, f"study {result.study.study_name!r}",
                      f"best #{best.number}: fast={best.params['fast']}")  # fmt: skip
    assert "{'fast'" not in repr(result)


def test_walk_forward_result(folder: Path) -> None:
    result = ivybt.walk_forward("sma_cross", **COMMON, params=SPACE, in_sample="3y",
                                out_of_sample="1y", start="2010-01-01",
                                out=folder / "wf")  # fmt: skip
    figures = result.plot()
    assert_same_figures(figures, result.folder / "report.html")
    assert_short_repr(result, "sma_cross on SPY", f"{len(result.folds)} folds")


def test_monte_carlo_result(folder: Path) -> None:
    ivybt.backtest("sma_cross", **COMMON, start="2012-01-01", out=folder / "mc")
    result = monte_carlo(folder / "mc", n=300, seed=2)
    figures = result.plot()
    assert_same_figures(figures, result.files[1])
    assert_short_repr(result, "trades bootstrap of backtest", "300 paths, seed 2", "the run")


def test_figures_by_heading_and_a_wrong_heading() -> None:
    figures = ReportFigures([("Drawdown", go.Figure()), ("Equity vs buy-and-hold", go.Figure())])
    assert figures.headings == ["Drawdown", "Equity vs buy-and-hold"]
    assert isinstance(figures[0:1], ReportFigures) and len(figures[0:1]) == 1
    with pytest.raises(KeyError, match="did you mean 'Drawdown'"):
        figures["drawdown"]
    assert repr(figures) == "<ReportFigures: 2 figure(s): 'Drawdown', 'Equity vs buy-and-hold'>"
