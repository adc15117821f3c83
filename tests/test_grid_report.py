"""The grid-search report: surfaces and top combinations checked against plain pandas on real
grid tables (the engine run on SPY bars), the figures for 1, 2 and 3 parameters, the offline
HTML page, and the promise that the data builders leave plotly unloaded."""

from __future__ import annotations

import json
import subprocess
import sys
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ivybt.config import ExecutionConfig
from ivybt.data.sample import load_sample
from ivybt.engine.tables import bar_columns
from ivybt.kernels.metrics import METRIC_NAMES
from ivybt.report.grid import TOP_N, grid_figures, grid_report_html
from ivybt.report.grid_data import REDUCERS, surface_data, surfaces_data, top_combinations
from ivybt.strategies import BUILTIN
from ivybt.studies.grid import evaluate_space
from ivybt.studies.space import build_space

REPO = Path(__file__).resolve().parents[1]
PLOTLY_BANNER = "plotly.js v"  # first line of the inlined plotly.js bundle
MACD = ("macd_cross", (("fast", "5:15:5"), ("slow", "20:40:10"), ("signal", "5,9")))
SMA = ("sma_cross", (("fast", "5:50:5"), ("slow", "20:60:10")))
SMA_LINE = ("sma_cross", (("fast", "5:20"), ("slow", "50")))  # slow fixed: one axis
SHOWN = ["sharpe", "cagr", "max_drawdown", "n_trades"]


@cache
def _grid(strategy: str, specs: tuple[tuple[str, str], ...]) -> tuple[pd.DataFrame, tuple]:
    frame, _ = load_sample("SPY", "1d")
    columns = bar_columns(frame.iloc[-1500:])
    space = build_space(BUILTIN[strategy], dict(specs))
    metrics = evaluate_space(columns, space, ExecutionConfig(), periods_per_year=252.0)
    table = pd.DataFrame(space.combos, columns=[f"param_{n}" for n in space.names]).join(
        pd.DataFrame(metrics, columns=METRIC_NAMES)
    )
    table["valid"] = table["n_trades"] >= 1
    return table, space.names


def grid_table(case: tuple[str, tuple[tuple[str, str], ...]]) -> tuple[pd.DataFrame, tuple]:
    """A fresh copy of the real grid table of `case` and its parameter names."""
    table, names = _grid(*case)
    return table.copy(), names


def with_invalid(table: pd.DataFrame, rows: list[int]) -> pd.DataFrame:
    out = table.copy()
    out.loc[rows, "valid"] = False
    return out


# -- surface_data ----------------------------------------------------------------------------


@pytest.mark.parametrize("reduce", REDUCERS)
def test_pivot_matches_pandas_groupby(reduce: str) -> None:
    table, _ = grid_table(MACD)
    table = with_invalid(table, [0, 7])
    pivot = surface_data(table, x="fast", y="slow", metric="sharpe", reduce=reduce)
    valid = table.loc[table["valid"]]
    expected = valid.groupby(["param_slow", "param_fast"])["sharpe"].agg(reduce).unstack()
    assert pivot.shape == (3, 3)
    assert pivot.index.name == "slow" and pivot.columns.name == "fast"
    assert list(pivot.index) == [20.0, 30.0, 40.0]
    assert list(pivot.columns) == [5.0, 10.0, 15.0]
    np.testing.assert_allclose(pivot.to_numpy(), expected.to_numpy(), rtol=0, atol=0)
    assert pivot.notna().all().all()


def _slow_surface(table, x, y, metric, reduce, fixed):  # type: ignore[no-untyped-def]
    """The obvious reference: cell by cell, the valid rows' values reduced by numpy."""
    keep = table["valid"].to_numpy().copy()
    for name, value in fixed.items():
        keep &= table[f"param_{name}"].to_numpy() == value
    reducer = {"max": np.nanmax, "min": np.nanmin, "mean": np.nanmean, "median": np.nanmedian}
    xs = np.unique(table[f"param_{x}"])
    ys = [None] if y is None else np.unique(table[f"param_{y}"])
    out = np.full((len(ys), len(xs)), np.nan)
    for i, y_value in enumerate(ys):
        for j, x_value in enumerate(xs):
            rows = table[f"param_{x}"].to_numpy() == x_value
            if y is not None:
                rows &= table[f"param_{y}"].to_numpy() == y_value
            values = np.where(keep[rows], table.loc[rows, metric].to_numpy(float), np.nan)
            if not np.isnan(values).all():  # else an empty cell: no valid row with a value
                out[i, j] = reducer[reduce](values)
    return out if y is not None else out[0]


@pytest.mark.parametrize("reduce", REDUCERS)
@pytest.mark.parametrize(
    ("x", "y", "fixed"),
    [("fast", "slow", {}), ("fast", "slow", {"signal": 9}), ("slow", None, {}),
     ("signal", "fast", {"slow": 30})],
)  # fmt: skip
def test_every_metric_at_once_equals_one_at_a_time_and_the_slow_reference(
    reduce: str, x: str, y: str | None, fixed: dict[str, float]
) -> None:
    """`surfaces_data` (the report's one grouping for every metric) gives each metric's frame
    exactly as `surface_data` does, and both agree with a cell-by-cell numpy reference."""
    table, _ = grid_table(MACD)
    table = with_invalid(table, [0, 7, 11])
    table.loc[3, "sharpe"] = np.nan
    together = surfaces_data(table, x=x, y=y, metrics=METRIC_NAMES, reduce=reduce, fixed=fixed)
    assert list(together) == list(METRIC_NAMES)
    for metric in METRIC_NAMES:
        alone = surface_data(table, x=x, y=y, metric=metric, reduce=reduce, fixed=fixed)
        pd.testing.assert_frame_equal(together[metric], alone, check_exact=True)
        got = alone.to_numpy() if y is not None else alone[metric].to_numpy()
        expected = _slow_surface(table, x, y, metric, reduce, fixed)
        exact = reduce in ("max", "min")
        np.testing.assert_allclose(got, expected, rtol=0 if exact else 1e-12, atol=0)


def test_fixed_cuts_one_slice_and_max_is_the_best_slice() -> None:
    table, _ = grid_table(MACD)
    slices = {}
    for signal in (5, 9):
        pivot = surface_data(table, x="fast", y="slow", metric="cagr", fixed={"signal": signal})
        rows = table.loc[table["param_signal"] == signal]
        expected = rows.pivot(index="param_slow", columns="param_fast", values="cagr")
        np.testing.assert_array_equal(pivot.to_numpy(), expected.to_numpy())
        slices[signal] = pivot.to_numpy()
    best = surface_data(table, x="fast", y="slow", metric="cagr", reduce="max")
    worst = surface_data(table, x="fast", y="slow", metric="cagr", reduce="min")
    np.testing.assert_array_equal(best.to_numpy(), np.fmax(slices[5], slices[9]))
    np.testing.assert_array_equal(worst.to_numpy(), np.fmin(slices[5], slices[9]))
    assert not np.array_equal(slices[5], slices[9])


def test_fixed_and_reduce_combine_with_one_axis() -> None:
    table, _ = grid_table(MACD)
    curve = surface_data(table, x="slow", metric="sharpe", reduce="mean", fixed={"fast": 10})
    rows = table.loc[table["param_fast"] == 10]
    expected = rows.groupby("param_slow")["sharpe"].mean()
    assert list(curve.columns) == ["slow", "sharpe"]
    np.testing.assert_array_equal(curve["slow"], expected.index)
    np.testing.assert_allclose(curve["sharpe"], expected.to_numpy(), rtol=1e-15)


def test_invalid_rows_are_excluded() -> None:
    table, _ = grid_table(MACD)
    cell = table.index[(table["param_fast"] == 10) & (table["param_slow"] == 30)]
    half = table.index[(table["param_fast"] == 5) & (table["param_slow"] == 20)]
    table.loc[half[0], "sharpe"] = 99.0  # would win the max if it counted
    table = with_invalid(table, [*cell, half[0]])
    pivot = surface_data(table, x="fast", y="slow", metric="sharpe")
    assert np.isnan(pivot.loc[30.0, 10.0])
    assert pivot.loc[20.0, 5.0] == table.loc[half[1], "sharpe"]
    assert pivot.notna().sum().sum() == 8
    none_valid = table.assign(valid=False)
    assert surface_data(none_valid, x="fast", y="slow", metric="sharpe").isna().all().all()


def test_combinations_removed_by_a_constraint_are_nan_cells() -> None:
    table, _ = grid_table(SMA)
    pivot = surface_data(table, x="fast", y="slow", metric="total_return")
    fast = pivot.columns.to_numpy()[None, :]
    slow = pivot.index.to_numpy()[:, None]
    assert pivot.shape == (5, 10)
    np.testing.assert_array_equal(pivot.isna().to_numpy(), np.broadcast_to(fast >= slow, (5, 10)))
    expected = table.pivot(index="param_slow", columns="param_fast", values="total_return")
    np.testing.assert_array_equal(pivot.to_numpy(), expected.to_numpy())


def test_one_parameter_curve() -> None:
    table, _ = grid_table(SMA_LINE)
    curve = surface_data(table, x="fast", metric="sharpe")
    assert list(curve.columns) == ["fast", "sharpe"]
    assert curve["fast"].tolist() == [float(v) for v in range(5, 21)]
    np.testing.assert_array_equal(
        curve["sharpe"], table.sort_values("param_fast")["sharpe"].to_numpy()
    )
    assert curve["sharpe"].dtype == np.float64


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"x": "fats", "y": "slow", "metric": "sharpe"}, "did you mean 'fast'"),
        ({"x": "fast", "y": "slwo", "metric": "sharpe"}, "did you mean 'slow'"),
        ({"x": "fast", "metric": "sharp"}, "did you mean 'sharpe'"),
        ({"x": "fast", "metric": "sharpe", "reduce": "maximum"}, "did you mean 'max'"),
        ({"x": "fast", "metric": "sharpe", "fixed": {"signl": 9}}, "did you mean 'signal'"),
        ({"x": "fast", "metric": "sharpe", "fixed": {"signal": 7}}, "signal takes 5, 9"),
        ({"x": "fast", "metric": "sharpe", "fixed": {"fast": 5}}, "cannot also be fixed"),
        ({"x": "fast", "y": "fast", "metric": "sharpe"}, "two different parameters"),
    ],
)
def test_bad_names_raise_with_a_hint(kwargs: dict, message: str) -> None:
    table, _ = grid_table(MACD)
    with pytest.raises(ValueError, match=message):
        surface_data(table, **kwargs)


def test_prefixed_names_are_accepted() -> None:
    table, _ = grid_table(MACD)
    bare = surface_data(table, x="fast", y="slow", metric="sharpe", fixed={"signal": 9})
    prefixed = surface_data(
        table, x="param_fast", y="param_slow", metric="sharpe", fixed={"param_signal": 9}
    )
    pd.testing.assert_frame_equal(bare, prefixed)


def test_input_table_is_not_modified() -> None:
    table, _ = grid_table(MACD)
    before = table.copy()
    surface_data(table, x="fast", y="slow", metric="sharpe", fixed={"signal": 5})
    top_combinations(table, objective="sharpe")
    pd.testing.assert_frame_equal(table, before)


# -- top_combinations --------------------------------------------------------------------------


def test_top_combinations_order() -> None:
    table, _ = grid_table(SMA)
    table = with_invalid(table, [int(table["sharpe"].idxmax())])
    top = top_combinations(table, objective="sharpe", n=5)
    valid = table.loc[table["valid"]]
    expected = valid["sharpe"].sort_values(ascending=False).head(5)
    assert list(top.index) == list(expected.index)
    assert top["valid"].all() and list(top.columns) == list(table.columns)
    assert top["sharpe"].is_monotonic_decreasing
    low = top_combinations(table, objective="max_drawdown", n=3, maximize=False)
    assert list(low.index) == list(valid["max_drawdown"].nsmallest(3, keep="first").index)


def test_top_combinations_nan_last_and_short_tables() -> None:
    table, _ = grid_table(MACD)
    best = int(table["calmar"].idxmax())
    table.loc[best, "calmar"] = np.nan
    top = top_combinations(table, objective="calmar", n=100)
    assert len(top) == len(table) and top.index[-1] == best
    assert top["calmar"].iloc[:-1].is_monotonic_decreasing
    assert top_combinations(table, objective="calmar", n=0).empty
    with pytest.raises(ValueError, match="did you mean 'calmar'"):
        top_combinations(table, objective="kalmar")


# -- figures -----------------------------------------------------------------------------------


def _dropdown_labels(fig: object) -> list[str]:
    return [button.label for button in fig.layout.updatemenus[0].buttons]  # type: ignore[attr-defined]


def test_figures_one_parameter() -> None:
    table, names = grid_table(SMA_LINE)
    sections = grid_figures(table, param_names=names, metrics=SHOWN, objective="calmar")
    (_, line), (_, top) = sections
    assert [t.type for t in line.data] == ["scatter"] * 5
    assert _dropdown_labels(line) == ["calmar", *SHOWN]
    assert [t.visible for t in line.data] == [True, False, False, False, False]
    expected = surface_data(table, x="fast", metric="cagr")
    np.testing.assert_array_equal(line.data[2].y, expected["cagr"])
    assert top.data[0].type == "table"


def test_figures_two_parameters() -> None:
    table, names = grid_table(SMA)
    sections = grid_figures(table, param_names=names, metrics=SHOWN, objective="sharpe")
    assert len(sections) == 2
    (heading, heat), (_, top) = sections
    assert "fast × slow" in heading and "max over" not in heading
    assert [t.type for t in heat.data] == ["heatmap"] * len(SHOWN) + ["scatter"]  # + the star
    assert _dropdown_labels(heat) == SHOWN
    pivot = surface_data(table, x="fast", y="slow", metric="max_drawdown")
    np.testing.assert_array_equal(heat.data[2].z, pivot.to_numpy())
    cells = top.data[0].cells.values
    assert len(cells[0]) == TOP_N
    best = top_combinations(table, objective="sharpe", n=1)
    assert cells[2][0] == f"{int(best['param_fast'].iloc[0])}"  # rank, row, fast, slow, ...


def test_figures_three_parameters() -> None:
    table, names = grid_table(MACD)
    sections = grid_figures(table, param_names=names, metrics=SHOWN, objective="sharpe")
    assert len(sections) == 3
    (heading, heat), (_, sliced), (_, top) = sections
    assert "max over signal" in heading and "max over signal" in heat.layout.title.text
    assert heat.data[0].x.tolist() == [5.0, 10.0, 15.0]  # the two axes with most values
    steps = sliced.layout.sliders[0].steps
    assert [s.label for s in steps] == ["5", "9"]
    best_signal = top_combinations(table, objective="sharpe", n=1)["param_signal"].iloc[0]
    stars = [[bool(signal == best_signal)] for signal in (5, 9)]  # the star on its slice only
    assert [s.args[0]["visible"] for s in steps] == [[True, False, *stars[0]],
                                                    [False, True, *stars[1]]]  # fmt: skip
    for k, signal in enumerate((5, 9)):
        pivot = surface_data(table, x="fast", y="slow", metric="sharpe", fixed={"signal": signal})
        np.testing.assert_array_equal(sliced.data[k].z, pivot.to_numpy())
    assert sliced.data[0].zmin == sliced.data[1].zmin  # one colour range for every slice
    assert len(top.data[0].cells.values[0]) == len(table)  # 18 rows < TOP_N


def _heatmaps(sections: list) -> list:
    return [fig for _, fig in sections if any(t.type == "heatmap" for t in fig.data)]


def _star(fig: object) -> object:
    (star,) = [t for t in fig.data if t.type == "scatter"]  # type: ignore[attr-defined]
    return star


@pytest.mark.parametrize(("case", "objective"), [(SMA, "sharpe"), (MACD, "calmar")])
def test_the_best_combination_is_starred_on_its_cell(case: tuple, objective: str) -> None:
    table, names = grid_table(case)
    best = top_combinations(table, objective=objective, n=1).iloc[0]
    sections = grid_figures(table, param_names=names, metrics=SHOWN, objective=objective)
    heatmaps = _heatmaps(sections)
    assert len(heatmaps) == (2 if case is MACD else 1)
    for fig in heatmaps:
        star = _star(fig)
        assert (star.x[0], star.y[0]) == (best["param_fast"], best["param_slow"])
        assert (fig.layout.xaxis.title.text, fig.layout.yaxis.title.text) == ("fast", "slow")
        if case is MACD and fig is heatmaps[1]:  # the sliced heatmap: the best's slice
            k = [5.0, 9.0].index(best["param_signal"])
            assert star.visible == (k == 0)
        else:
            k = 0  # the objective's surface, shown first
        heat = fig.data[k]
        cell = np.asarray(heat.z)[list(heat.y).index(star.y[0]), list(heat.x).index(star.x[0])]
        assert cell == best[objective] == np.nanmax(np.asarray(heat.z, dtype=float))
        assert f"best by {objective}" in star.hovertemplate


def test_the_best_combination_is_marked_on_a_curve() -> None:
    table, names = grid_table(SMA_LINE)
    best = top_combinations(table, objective="sharpe", n=1).iloc[0]
    (_, line), _ = grid_figures(table, param_names=names, metrics=SHOWN, objective="sharpe")
    (mark,) = line.layout.shapes
    assert mark.x0 == mark.x1 == best["param_fast"]


def _fences(cells: np.ndarray) -> tuple[float, float]:
    """Tukey's far-out fences clamped to the data: the expected colour range."""
    finite = cells[np.isfinite(cells)]
    q1, q3 = np.percentile(finite, [25, 75])
    return max(finite.min(), q1 - 3 * (q3 - q1)), min(finite.max(), q3 + 3 * (q3 - q1))


@pytest.mark.parametrize("outlier", [-40.0, 40.0])
def test_one_outlier_does_not_wash_the_colours_out(outlier: float) -> None:
    # the EURUSD case: one combination's metric far from the rest made every other cell one
    # colour; colours now stop at the fences, and the colour bar says it is clipped
    table, names = grid_table(SMA)
    table.loc[table["sharpe"].idxmin(), "sharpe"] = outlier
    sections = grid_figures(table, param_names=names, metrics=["sharpe"], objective="sharpe")
    heat = _heatmaps(sections)[0].data[0]
    cells = np.asarray(heat.z, dtype=float)
    assert (heat.zmin, heat.zmax) == _fences(cells)
    assert heat.zmin > -40.0 and heat.zmax < 40.0
    assert "clipped to quartiles<br>± 3 IQR" in heat.colorbar.title.text
    finite = cells[np.isfinite(cells) & (cells != outlier)]
    position = np.clip((finite - heat.zmin) / (heat.zmax - heat.zmin), 0, 1)
    assert np.ptp(position) > 0.5  # the other cells spread over the scale, not one end


def test_without_outliers_colours_span_every_cell_unclipped() -> None:
    table, names = grid_table(SMA)
    sections = grid_figures(table, param_names=names, metrics=["sharpe"], objective="sharpe")
    heat = _heatmaps(sections)[0].data[0]
    cells = np.asarray(heat.z, dtype=float)
    assert (heat.zmin, heat.zmax) == (np.nanmin(cells), np.nanmax(cells))
    assert heat.colorbar.title.text == "sharpe"


def test_slices_share_one_colour_range() -> None:
    table, names = grid_table(MACD)
    table.loc[table["sharpe"].idxmax(), "sharpe"] = 25.0
    sections = grid_figures(table, param_names=names, metrics=SHOWN, objective="sharpe")
    sliced = _heatmaps(sections)[1]
    heats = [t for t in sliced.data if t.type == "heatmap"]
    cells = np.concatenate([np.asarray(t.z, dtype=float).ravel() for t in heats])
    assert all((t.zmin, t.zmax) == _fences(cells) for t in heats)
    assert all("clipped" in t.colorbar.title.text for t in heats)


def test_heatmap_axes_follow_the_strategy_order_not_the_value_counts() -> None:
    # slow has more values than fast here; x is still fast, the first of sma_cross's params
    table, names = grid_table(("sma_cross", (("fast", "5:15:5"), ("slow", "20:200:10"))))
    assert table["param_slow"].nunique() > table["param_fast"].nunique()
    (heading, heat), _ = grid_figures(table, param_names=names, metrics=SHOWN, objective="sharpe")
    assert heading.startswith("Metric surface: fast × slow")
    assert heat.layout.xaxis.title.text == "fast" and heat.data[0].x.tolist() == [5, 10, 15]


def test_grid_report_summary_formats_metrics_like_its_tables() -> None:
    from click.testing import CliRunner

    from ivybt.cli import cli
    from ivybt.report.backtest import format_metric

    args = ["grid", "sma_cross", "-s", "SPY", "--source", "sample", "-p", "fast=5:20:5",
            "-p", "slow=30:60:10", "--start", "2015-01-01", "--out", "run"]  # fmt: skip
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    page = Path("run/report.html").read_text(encoding="utf-8")
    best = json.loads(Path("run/metrics.json").read_text(encoding="utf-8"))["best"]["metrics"]
    for name in ("total_return", "sharpe", "max_drawdown", "n_trades"):
        shown = format_metric(name, best[name])
        assert f"<th>{name}</th><td>{shown}</td>" in page, name
    assert "%" in format_metric("total_return", best["total_return"])


def test_figures_reject_unknown_names() -> None:
    table, names = grid_table(SMA)
    with pytest.raises(ValueError, match="did you mean 'fast'"):
        grid_figures(table, param_names=["fsat", "slow"], metrics=SHOWN, objective="sharpe")
    with pytest.raises(ValueError, match="did you mean 'sortino'"):
        grid_figures(table, param_names=names, metrics=["sortin"], objective="sharpe")


# -- page --------------------------------------------------------------------------------------


def test_html_page_is_offline_and_carries_plotly_once() -> None:
    table, names = grid_table(MACD)
    table = with_invalid(table, [3])
    page = grid_report_html(
        title="macd_cross on SPY <grid>",
        table=table,
        param_names=names,
        metrics=SHOWN,
        objective="sharpe",
        summary={"Strategy": "macd_cross", "cagr": 0.0512, "Best sharpe": 0.61234},
        notes=["A note."],
    )
    assert page.count(PLOTLY_BANNER) == 1
    assert "<script src" not in page
    assert len(page.encode()) < 6 * 1024 * 1024
    for metric in SHOWN:
        assert f'"label":"{metric}"' in page
    assert "macd_cross on SPY &lt;grid&gt;" in page
    assert "<td>macd_cross</td>" in page  # strings as given, numbers via format_metric
    assert "<td>5.12%</td>" in page and "<td>0.6123</td>" in page
    assert "1 of 18 combinations are not valid" in page and "A note." in page


def test_grid_data_does_not_import_plotly() -> None:
    code = (
        "import sys, pandas as pd; "
        "from ivybt.report.grid_data import surface_data, top_combinations; "
        "import ivybt.report.grid; "
        "t = pd.DataFrame({'param_a': [1., 1., 2.], 'param_b': [3., 4., 3.], "
        "'sharpe': [0.1, 0.2, 0.3], 'valid': [True, True, False]}); "
        "p = surface_data(t, x='a', y='b', metric='sharpe'); "
        "assert p.shape == (2, 2) and p.notna().sum().sum() == 2, p; "
        "top_combinations(t, objective='sharpe'); "
        "assert 'plotly' not in sys.modules, 'plotly imported'"
    )
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True, timeout=60)
