"""The factor view of a cross-sectional strategy (issue #15, section 4): the information
coefficient against a twin, a perfect and a useless score, the run folder and the report."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import ivybt
import ivybt.report.portfolio as portfolio_report
from ivybt.studies.factor import QUANTILES, factor_view
from tests.browser import Chromium, require_chromium

DEMO = ["SPY", "MSFT", "AAPL", "GOOG", "IBM"]


def _ranks(values: np.ndarray) -> np.ndarray:
    return pd.Series(values).rank(method="average").to_numpy()


def test_ic_is_spearmans_rank_correlation_of_scores_and_forward_returns():
    rng = np.random.default_rng(0)
    close = 50.0 * np.exp(np.cumsum(rng.normal(0, 0.02, (120, 8)), axis=0))
    close[:30, 7] = np.nan  # listed late: left out of the early periods
    scores = rng.normal(size=close.shape)
    scores[40:50, 2] = np.nan
    scores[60, :] = np.round(scores[60, :])  # ties
    at = np.zeros(120, np.int8)
    at[::10] = 1
    view = factor_view(scores, close, at, pd.RangeIndex(120))
    bars = np.flatnonzero(at)
    for t, u in itertools.pairwise(bars):
        forward = close[u] / close[t] - 1.0
        keep = np.isfinite(scores[t]) & np.isfinite(forward)
        want = np.corrcoef(_ranks(scores[t][keep]), _ranks(forward[keep]))[0, 1]
        assert view.ic.loc[t, "ic"] == pytest.approx(want, rel=1e-12)
        assert view.ic.loc[t, "n_symbols"] == keep.sum() and view.ic.loc[t, "end"] == u
    ics = view.ic["ic"].to_numpy()
    assert view.summary["ic_mean"] == pytest.approx(ics.mean())
    assert view.summary["ic_t"] == pytest.approx(ics.mean() / (ics.std(ddof=1) / np.sqrt(11)))
    assert view.quantiles["observations"].sum() == sum(view.ic["n_symbols"])


def test_a_perfect_score_has_an_ic_of_1_and_rising_quantiles():
    rng = np.random.default_rng(1)
    close = 50.0 * np.exp(np.cumsum(rng.normal(0, 0.02, (200, 10)), axis=0))
    at = np.zeros(200, np.int8)
    at[::20] = 1
    scores = np.full(close.shape, np.nan)
    bars = np.flatnonzero(at)
    for t, u in itertools.pairwise(bars):
        scores[t] = close[u] / close[t]  # peeks: the test's oracle, not a strategy
    view = factor_view(scores, close, at, pd.RangeIndex(200))
    np.testing.assert_allclose(view.ic["ic"], 1.0)
    means = view.quantiles["mean_forward_return"].to_numpy()
    assert len(means) == QUANTILES and (np.diff(means) > 0).all() and view.summary["spread"] > 0
    reverse = factor_view(-scores, close, at, pd.RangeIndex(200))
    np.testing.assert_allclose(reverse.ic["ic"], -1.0)


@pytest.fixture(scope="module")
def momentum_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    result = ivybt.backtest("momentum_rotation", symbols=DEMO, source="sample",
                            params={"lookback": 63, "skip": 5, "k": 2})  # fmt: skip
    return result.write(tmp_path_factory.mktemp("factor") / "run")


def test_the_run_folder_has_the_factor_view(momentum_run: Path):
    factor = json.loads((momentum_run / "metrics.json").read_text())["factor"]
    assert factor["n_periods"] > 100 and -1 < factor["ic_mean"] < 1
    assert set(factor["quantiles"]) == {str(q) for q in range(1, QUANTILES + 1)}
    ic = pd.read_parquet(momentum_run / "factor.parquet")
    assert list(ic.columns) == ["ic", "n_symbols", "end"] and len(ic) >= factor["n_periods"]
    single = ivybt.backtest("sma_cross", symbols=DEMO, source="sample")
    assert single.factor is None and "factor" not in single.headline()


def test_the_factor_report_opens_in_chromium_with_every_plot_drawn(momentum_run: Path):
    require_chromium()
    with Chromium() as browser:
        result = browser.open(momentum_run / "report.html")
    assert result.errors == [] and result.external_requests == []
    figures = len(portfolio_report.SECTION_HEADINGS) - 1 + 2  # + the IC and the quantiles
    assert result.graphs == result.plots == figures
    text = (momentum_run / "report.html").read_text()
    assert "Information coefficient per selection" in text and "score quantile" in text


def test_plot_draws_the_factor_sections_before_the_trades() -> None:
    result = ivybt.backtest("momentum_rotation", symbols=DEMO, source="sample",
                            params={"lookback": 63, "skip": 5, "k": 2})  # fmt: skip
    headings = result.plot().headings
    assert headings[-3:-1] == ["Information coefficient per selection",
                               "Forward return by score quantile"]  # fmt: skip
