"""Stability scores and surfaces of walk-forward runs, on small surface/folds tables built by
hand (3 folds, fast in 5, 10, 15 x slow in 20, 40): every score against values computed by
hand, the figures against plain pandas pivots, and the offline HTML page."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ivybt.errors import ConfigError
from ivybt.kernels.metrics import METRIC_NAMES
from ivybt.report.surface import surface_figures, surface_report_html
from ivybt.studies.stability import (
    fold_labels,
    in_top_decile,
    score_rows,
    scores_by_fold,
    spearman,
    stability_scores,
)

REPO = Path(__file__).resolve().parents[1]
PLOTLY_BANNER = "plotly.js v"
GRID = [(fast, slow) for fast in (5, 10, 15) for slow in (20, 40)]  # combo = row here
RISING = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
START = pd.Timestamp("2015-01-01", tz="UTC")
PARAMS = ["fast", "slow"]


def make_tables(
    is_obj: list[list[float]],
    oos_obj: list[list[float]],
    *,
    chosen: list[int] | None = None,
    invalid: set[tuple[int, str, int]] = frozenset(),  # type: ignore[assignment]
    grid: list[tuple[int, ...]] = GRID,
    names: tuple[str, ...] = ("fast", "slow"),
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(surface, folds) with sharpe = the given objective and every other metric a multiple
    of it; `chosen` defaults to each fold's best IS sharpe (-1: no choice)."""
    rows = []
    for fold in range(len(is_obj)):
        for side, table in (("is", is_obj), ("oos", oos_obj)):
            for combo, values in enumerate(grid):
                value = float(table[fold][combo])
                row = {"fold": fold, "side": side, "combo": combo}
                row |= {f"param_{n}": float(v) for n, v in zip(names, values, strict=True)}
                row |= {m: value * (k + 1) / 4 for k, m in enumerate(METRIC_NAMES)}  # sharpe k=3
                row["valid"] = (fold, side, combo) not in invalid
                rows.append(row)
    surface = pd.DataFrame(rows).astype({"fold": "int64", "combo": "int64"})
    if chosen is None:
        chosen = [int(np.argmax(values)) for values in is_obj]
    folds = []
    for fold, combo in enumerate(chosen):
        oos_first = START + pd.DateOffset(months=12 + 6 * fold)
        row = {
            "fold": fold,
            "is_start": 126 * fold,
            "is_end": 126 * fold + 252,
            "oos_start": 126 * fold + 252,
            "oos_end": 126 * fold + 378,
            "is_first": START + pd.DateOffset(months=6 * fold),
            "is_last": oos_first - pd.Timedelta(days=1),
            "oos_first": oos_first,
            "oos_last": oos_first + pd.DateOffset(months=6) - pd.Timedelta(days=1),
            "combo": combo,
        }
        row |= {
            f"param_{n}": float(v) if combo >= 0 else np.nan
            for n, v in zip(names, grid[combo], strict=True)
        }
        for side in ("is", "oos"):
            match = surface[(surface["fold"] == fold) & (surface["side"] == side)]
            picked = match.loc[match["combo"] == combo]
            row |= {
                f"{side}_{m}": float(picked[m].iloc[0]) if len(picked) else np.nan
                for m in METRIC_NAMES
            }
        row["wfe"] = 0.5
        folds.append(row)
    return surface, pd.DataFrame(folds).astype({"fold": "int64", "combo": "int64"})


def scores_of(surface: pd.DataFrame, folds: pd.DataFrame, **kwargs: object) -> dict:
    return stability_scores(surface, folds, objective="sharpe", params=PARAMS, **kwargs)


# -- rank correlations -------------------------------------------------------------------------


def test_same_reversed_and_constant_oos_rankings() -> None:
    same = [x * 2 - 1 for x in RISING]  # a monotone map keeps the ranking
    reverse = [-x for x in RISING]
    constant = [0.7] * 6
    surface, folds = make_tables([RISING] * 3, [same, reverse, constant])
    corr = scores_of(surface, folds)["is_oos_rank_corr"]
    assert corr["per_fold"][:2] == [1.0, -1.0]
    assert math.isnan(corr["per_fold"][2])
    assert corr["mean"] == 0.0  # NaN folds are left out of the mean


def test_rank_corr_by_hand_with_ties_and_swaps() -> None:
    swaps = [2.0, 1.0, 4.0, 3.0, 6.0, 5.0]  # d = ±1 six times: 1 - 6 * 6 / (6 * 35)
    tied_is = [1.0, 1.0, 2.0, 3.0, 4.0, 5.0]  # average ranks 1.5, 1.5, 3, 4, 5, 6
    surface, folds = make_tables([RISING, tied_is], [swaps, RISING])
    per_fold = scores_of(surface, folds)["is_oos_rank_corr"]["per_fold"]
    assert per_fold[0] == pytest.approx(1 - 36 / 210, abs=1e-15)
    # centred ranks (-2, -2, -.5, .5, 1.5, 2.5) and (-2.5, -1.5, -.5, .5, 1.5, 2.5):
    # 17 / sqrt(17 x 17.5)
    assert per_fold[1] == pytest.approx(17 / math.sqrt(17 * 17.5), abs=1e-15)


def test_invalid_combinations_are_left_out_and_too_few_give_nan() -> None:
    oos = [1.0, 2.0, 3.0, 99.0, 5.0, 6.0]  # combo 3 would break the ranking, but is invalid
    invalid = {(0, "oos", 3)} | {(1, "is", c) for c in (0, 1)} | {(1, "oos", c) for c in (2, 3)}
    surface, folds = make_tables([RISING, RISING], [oos, [-x for x in RISING]], invalid=invalid)
    per_fold = scores_of(surface, folds)["is_oos_rank_corr"]["per_fold"]
    assert per_fold[0] == 1.0
    assert math.isnan(per_fold[1])  # valid on both sides: combos 4 and 5 only
    assert math.isnan(spearman(pd.Series([1.0, 2.0]), pd.Series([2.0, 1.0])))


def test_persistence_of_consecutive_is_surfaces() -> None:
    reverse = RISING[::-1]
    shifted = [x + 10 for x in reverse]
    surface, folds = make_tables([RISING, reverse, shifted, [3.0] * 6], [RISING] * 4)
    scores = scores_of(surface, folds)
    persistence = scores["is_persistence"]
    assert scores["pairs"] == [[0, 1], [1, 2], [2, 3]]
    assert persistence["per_pair"][:2] == [-1.0, 1.0]
    assert math.isnan(persistence["per_pair"][2])  # a flat IS surface has no ranking
    assert persistence["mean"] == 0.0


def test_rank_correlations_ignore_the_direction() -> None:
    surface, folds = make_tables([RISING, RISING], [[2.0, 1.0, 4.0, 3.0, 6.0, 5.0], RISING])
    up, down = scores_of(surface, folds), scores_of(surface, folds, maximize=False)
    assert up["is_oos_rank_corr"] == down["is_oos_rank_corr"]
    assert up["is_persistence"] == down["is_persistence"]


# -- top decile ----------------------------------------------------------------------------------


def test_top_decile_rate_and_stays_by_hand() -> None:
    # six valid combinations: the top decile is ceil(6 / 10) = 1 combination, the best
    oos = [RISING, RISING[::-1], RISING]
    is_ = [RISING, [1.0, 2.0, 3.0, 4.0, 6.0, 5.0], RISING[::-1]]
    surface, folds = make_tables(is_, oos, chosen=[5, 4, -1])
    scores = scores_of(surface, folds)
    assert scores["top_decile_per_fold"] == [True, False, None]  # fold 2 chose nothing
    assert scores["top_decile_rate"] == 0.5
    # fold 0's pick (5) is not fold 1's IS best (4); fold 1's pick (4) vs fold 2's IS best (0)
    assert scores["stays_top_decile_per_pair"] == [False, False]
    assert scores["chosen_stays_top_decile"] == 0.0
    lower = scores_of(surface, folds, maximize=False)  # lower is better: combo 0 is the best
    assert lower["top_decile_per_fold"] == [False, False, None]
    surface, folds = make_tables(is_, oos, chosen=[0, 5, 4])
    lower = scores_of(surface, folds, maximize=False)
    assert lower["top_decile_per_fold"] == [True, True, False]
    assert lower["stays_top_decile_per_pair"] == [True, True]
    assert lower["top_decile_rate"] == pytest.approx(2 / 3)


def test_top_decile_threshold_ties_and_invalid_choice() -> None:
    values = pd.Series(np.arange(1.0, 31.0))  # 30 values: ceil(3.0) = 3, not 4 (0.1 * 30 > 3)
    assert in_top_decile(values, 27, True) and not in_top_decile(values, 26, True)
    assert in_top_decile(values, 2, False) and not in_top_decile(values, 3, False)
    tied = pd.Series([5.0, 5.0, 1.0, 2.0])
    assert in_top_decile(tied, 0, True) and in_top_decile(tied, 1, True)  # ties at the top
    holes = pd.Series([1.0, np.nan, 3.0, 4.0])
    assert in_top_decile(holes, 1, True) is False  # chosen, but not valid there
    assert in_top_decile(holes.iloc[:3], 0, True) is None  # only 2 valid
    assert in_top_decile(values, -1, True) is None


# -- drift ---------------------------------------------------------------------------------------


def test_drift_of_the_chosen_parameters() -> None:
    surface, folds = make_tables([RISING] * 3, [RISING] * 3, chosen=[0, 5, 3])
    drift = scores_of(surface, folds)["drift"]
    # fast 5, 15, 10: |10| and |5| over the range 15 - 5; slow 20, 40, 40
    assert drift["fast"] == {
        "chosen": [5.0, 15.0, 10.0],
        "mean_abs_change": 7.5,
        "range": 10.0,
        "relative_change": 0.75,
        "n_distinct": 3,
    }
    assert drift["slow"]["chosen"] == [20.0, 40.0, 40.0]
    assert drift["slow"]["relative_change"] == 0.5 and drift["slow"]["n_distinct"] == 2
    surface, folds = make_tables([RISING] * 3, [RISING] * 3, chosen=[0, -1, 3])
    fast = scores_of(surface, folds)["drift"]["fast"]
    assert fast["chosen"][0] == 5.0 and math.isnan(fast["chosen"][1])
    assert math.isnan(fast["relative_change"]) and fast["n_distinct"] == 2  # no adjacent pair


def test_scores_are_plain_python_and_read_back_from_json() -> None:
    surface, folds = make_tables([RISING] * 3, [RISING, [1.0] * 6, RISING], chosen=[5, -1, 5])
    scores = scores_of(surface, folds)
    text = json.dumps(scores)  # NaN is written as NaN; callers turn it into null
    back = json.loads(text.replace("NaN", "null"))
    table = scores_by_fold(back)
    assert list(table["fold"]) == [0, 1, 2]
    assert table["stays_top_decile_next"].tolist() == [True, None, None]
    rows = dict(score_rows(back))
    assert rows["IS→OOS rank correlation, mean"] == "1.000"
    assert rows["Chosen in the OOS top decile"] == "100% (2 of 2 folds)"
    assert rows["Drift of fast"] == "n/a of its range a fold; 1 distinct value"  # no pair


def test_fold_labels_use_months_then_days() -> None:
    _, folds = make_tables([RISING] * 3, [RISING] * 3)
    assert fold_labels(folds, "oos", [0, 1, 2]) == [
        "2016-01..2016-06",
        "2016-07..2016-12",
        "2017-01..2017-06",
    ]
    assert fold_labels(folds, "is", [0])[0] == "2015-01..2015-12"
    short = folds.assign(oos_last=folds["oos_first"] + pd.Timedelta(days=9))
    assert fold_labels(short, "oos", [0])[0] == "2016-01-01..2016-01-10"
    assert fold_labels(folds.drop(columns=["oos_first"]), "oos", [0, 1]) == ["fold 0", "fold 1"]


def test_unknown_names_raise_one_line_with_a_hint() -> None:
    surface, folds = make_tables([RISING] * 2, [RISING] * 2)
    cases = [
        ({"param": "fsat"}, "did you mean 'fast'"),
        ({"metric": "sharp"}, "did you mean 'sharpe'"),
        ({"metric": "fold"}, "unknown metric 'fold'"),
        ({"side": "os"}, "did you mean 'oos'"),
        ({"reduce": "maxi"}, "did you mean 'max'"),
    ]
    for change, message in cases:
        kwargs = {"param": "fast", "metric": "sharpe", "params": PARAMS} | change
        with pytest.raises(ConfigError, match=message) as caught:
            surface_figures(surface, folds, **kwargs)  # type: ignore[arg-type]
        assert "\n" not in str(caught.value)
    with pytest.raises(ConfigError, match="did you mean 'slow'"):
        stability_scores(surface, folds, objective="sharpe", params=["fast", "slwo"])
    with pytest.raises(ConfigError, match="did you mean 'calmar'"):
        stability_scores(surface, folds, objective="kalmar", params=PARAMS)


# -- figures -------------------------------------------------------------------------------------


def _figure_tables() -> tuple[pd.DataFrame, pd.DataFrame]:
    is_ = [RISING, RISING[::-1], [3.0, 1.0, 6.0, 2.0, 5.0, 4.0]]
    oos = [[0.5, 0.1, 0.9, -0.2, 0.3, 0.4], [1.0, 2.0, 0.5, 0.7, -1.0, 0.0], RISING]
    invalid = {(1, "oos", 2), (1, "oos", 3), (2, "oos", 0)}  # fold 1, fast 10: an empty cell
    return make_tables(is_, oos, invalid=invalid)


def test_3d_surface_is_the_max_pivot_with_the_chosen_path() -> None:
    surface, folds = _figure_tables()
    sections = surface_figures(surface, folds, param="fast", metric="sharpe", params=PARAMS)
    assert len(sections) == 3
    (heading, fig), _, _ = sections
    assert "max over slow" in heading
    assert [t.type for t in fig.data] == ["surface", "scatter3d"] * 2
    rows = surface.loc[(surface["side"] == "oos") & surface["valid"]]
    for k, how in enumerate(("max", "median")):
        pivot = rows.pivot_table(index="param_fast", columns="fold", values="sharpe", aggfunc=how)
        np.testing.assert_array_equal(fig.data[2 * k].z, pivot.to_numpy())
        assert fig.data[2 * k].visible is (how == "max")
    assert np.isnan(fig.data[0].z[1][1])  # fast 10 in fold 1: no valid combination
    assert list(fig.data[0].x) == [0, 1, 2] and list(fig.data[0].y) == [5.0, 10.0, 15.0]
    path = fig.data[1]  # chosen = best IS: combos 5, 0, 2 -> fast 15, 5, 10
    assert list(path.x) == [0, 1, 2] and list(path.y) == [15.0, 5.0, 10.0]
    np.testing.assert_array_equal(path.z, [0.4, 2.0, 4.0])  # the max cell at each chosen fast
    assert list(fig.layout.scene.xaxis.ticktext) == [
        "2016-01..2016-06",
        "2016-07..2016-12",
        "2017-01..2017-06",
    ]
    buttons = fig.layout.updatemenus[0].buttons
    assert [b.label for b in buttons] == ["max over slow", "median over slow"]
    assert buttons[1].args[0]["visible"] == [False, False, True, True]


def test_median_first_and_the_is_side() -> None:
    surface, folds = _figure_tables()
    (_, fig), *_ = surface_figures(
        surface, folds, param="slow", metric="cagr", side="is", reduce="median", params=PARAMS
    )
    rows = surface.loc[surface["side"] == "is"]
    pivot = rows.pivot_table(index="param_slow", columns="fold", values="cagr", aggfunc="median")
    np.testing.assert_allclose(fig.data[2].z, pivot.to_numpy(), rtol=1e-15)
    assert fig.data[2].visible and not fig.data[0].visible
    assert fig.layout.updatemenus[0].active == 1
    assert fig.layout.scene.xaxis.ticktext[0] == "2015-01..2015-12"  # IS window dates


def test_fold_heatmaps_slider_and_chosen_marks() -> None:
    surface, folds = _figure_tables()
    _, (_, heat), (_, drift) = surface_figures(
        surface, folds, param="fast", metric="sharpe", params=PARAMS
    )
    steps = heat.layout.sliders[0].steps
    assert len(steps) == 3 and [s.label for s in steps] == ["0", "1", "2"]
    assert steps[1].args[0]["visible"] == [False, False, True, True, False, False]
    assert [t.type for t in heat.data] == ["heatmap", "scatter"] * 3
    rows = surface.loc[(surface["side"] == "oos") & surface["valid"]]
    for k in range(3):
        pivot = rows[rows["fold"] == k].pivot(
            index="param_slow", columns="param_fast", values="sharpe"
        )
        pivot = pivot.reindex(index=[20.0, 40.0], columns=[5.0, 10.0, 15.0])
        np.testing.assert_array_equal(heat.data[2 * k].z, pivot.to_numpy())
        assert heat.data[2 * k].zmin == -1.0 and heat.data[2 * k].zmax == 6.0  # one range
    assert (list(heat.data[1].x), list(heat.data[1].y)) == ([15.0], [40.0])  # combo 5
    assert (list(heat.data[5].x), list(heat.data[5].y)) == ([10.0], [20.0])  # combo 2
    assert [list(t.y) for t in drift.data] == [[15.0, 5.0, 10.0], [40.0, 20.0, 20.0]]


def test_three_parameters_pick_the_axis_with_most_values() -> None:
    grid = [(f, s, g) for f in (5, 10, 15) for s in (20, 40) for g in (1, 2)]
    values = [[float(v) for v in range(12)]] * 2
    surface, folds = make_tables(values, values, grid=grid, names=("fast", "slow", "sig"))
    sections = surface_figures(
        surface, folds, param="slow", metric="sharpe", params=["fast", "slow", "sig"]
    )
    heading, heat = sections[1]
    assert "fast × slow" in heading and "max over sig" in heading  # x: first in params
    assert list(heat.data[0].x) == [5.0, 10.0, 15.0] and list(heat.data[0].y) == [20.0, 40.0]
    rows = surface.loc[(surface["side"] == "oos") & (surface["fold"] == 0)]
    pivot = rows.pivot_table(
        index="param_slow", columns="param_fast", values="sharpe", aggfunc="max"
    )
    np.testing.assert_array_equal(heat.data[0].z, pivot.to_numpy())


def test_fold_heatmaps_have_the_grid_reports_axes() -> None:
    """#13 point 26: the README's walk-forward draws slow (19 values) by default; its fold
    heatmaps put fast across and slow up, as the grid report of the same space does."""
    from ivybt.report.grid import grid_figures

    grid = [(f, s) for f in (5, 10) for s in (20, 40, 60)]
    values = [[float(v) for v in range(6)]] * 2
    surface, folds = make_tables(values, values, grid=grid)
    _, (heading, heat), _ = surface_figures(surface, folds, param="slow", metric="sharpe",
                                            params=PARAMS)  # fmt: skip
    table = surface[(surface["fold"] == 0) & (surface["side"] == "is")]
    (_, grid_heat), _ = grid_figures(table, param_names=PARAMS, metrics=["sharpe"],
                                     objective="sharpe")  # fmt: skip
    for fig in (heat, grid_heat):
        assert (fig.layout.xaxis.title.text, fig.layout.yaxis.title.text) == ("fast", "slow")
        assert list(fig.data[0].x) == [5.0, 10.0] and list(fig.data[0].y) == [20.0, 40.0, 60.0]
    assert "by fast × slow" in heading


def test_one_folds_outlier_does_not_wash_out_the_fold_heatmaps() -> None:
    """#13 point 26: the fold heatmaps share one colour range, clipped like the grid's
    (`robust_range`), and the colour bar says so; without an outlier nothing is clipped."""
    grid = [(f, s) for f in (5, 10) for s in (20, 40, 60)]
    calm = [[0.1, 0.2, 0.3, 0.4, 0.5, 0.6]] * 2
    wild = [calm[0], [0.1, 0.2, 0.3, 0.4, 0.5, -40.0]]
    for oos, clipped in ((calm, False), (wild, True)):
        surface, folds = make_tables(calm, oos, grid=grid)
        _, (_, heat), _ = surface_figures(surface, folds, param="slow", metric="sharpe",
                                          params=PARAMS)  # fmt: skip
        cells = [t for t in heat.data if t.type == "heatmap"]
        assert len(cells) == 2 and len({(t.zmin, t.zmax) for t in cells}) == 1
        assert cells[0].zmax == 0.6
        assert cells[0].zmin == 0.1 if not clipped else -40.0 < cells[0].zmin < 0.1
        assert ("clipped" in cells[0].colorbar.title.text) is clipped


def test_one_parameter() -> None:
    grid = [(5,), (10,), (15,)]
    surface, folds = make_tables([[1.0, 3.0, 2.0]] * 2, [[2.0, 1.0, 3.0]] * 2, grid=grid,
                                 names=("fast",))  # fmt: skip
    sections = surface_figures(surface, folds, param="fast", metric="sharpe", params=["fast"])
    assert [h for h, _ in sections] == [
        "Stability surface: sharpe (OOS) by fold × fast",
        "Chosen parameters per fold",
    ]
    fig = sections[0][1]
    assert [t.type for t in fig.data] == ["surface", "scatter3d"]
    assert not fig.layout.updatemenus
    np.testing.assert_array_equal(fig.data[0].z, [[2.0, 2.0], [1.0, 1.0], [3.0, 3.0]])
    assert list(fig.data[1].y) == [10.0, 10.0] and list(fig.data[1].z) == [1.0, 1.0]


# -- page ----------------------------------------------------------------------------------------


def test_html_page_is_complete_and_carries_plotly_once(tmp_path: Path) -> None:
    surface, folds = _figure_tables()
    scores = scores_of(surface, folds)
    page = surface_report_html(
        surface, folds, title="sma_cross <walk-forward>", param="fast", metric="sharpe",
        side="oos", params=PARAMS, scores=scores,
    )  # fmt: skip
    path = tmp_path / "surface.html"
    path.write_text(page, encoding="utf-8")
    text = path.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>") and text.rstrip().endswith("</html>")
    assert text.count(PLOTLY_BANNER) == 1 and "<script src" not in text
    assert text.count('class="plotly-graph-div"') == 4  # 3D, heatmaps, drift, score table
    assert "sma_cross &lt;walk-forward&gt;" in text
    assert "<th>IS→OOS rank correlation, mean</th>" in text
    assert "<th>Drift of fast</th>" in text
    assert "3 of 36 (fold, side, combination) rows are not valid" in text
    assert "docs/stability.md" in text


def test_stability_does_not_import_plotly() -> None:
    code = (
        "import sys; import ivybt.studies.stability as s; "
        "assert 'plotly' not in sys.modules, 'plotly imported'"
    )
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True, timeout=60)


def test_many_folds_label_every_nth_fold() -> None:
    surface, folds = make_tables([RISING] * 13, [RISING] * 13)
    (_, fig), _, (_, drift) = surface_figures(
        surface, folds, param="fast", metric="sharpe", params=PARAMS
    )
    ticks = fig.layout.scene.xaxis
    assert list(ticks.tickvals) == [0, 2, 4, 6, 8, 10, 12]  # 13 folds > 12: every 2nd
    assert list(ticks.ticktext) == fold_labels(folds, "oos", list(range(13)))[::2]
    assert list(drift.layout.xaxis2.tickvals) == list(ticks.tickvals)
    assert len(fig.data[0].x) == 13  # every fold is still drawn
