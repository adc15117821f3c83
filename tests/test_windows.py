"""Walk-forward windows (`ivybt.studies.windows`): expectations written by hand, as literal
(is_start, is_end, oos_start, oos_end) tuples or as calendar dates read off the bundled data,
plus Hypothesis properties over random sizes, lengths, gaps and steps."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ivybt.data.sample import load_sample
from ivybt.engine.splits import train_test_split
from ivybt.errors import ConfigError
from ivybt.studies.windows import (
    HALF_OPEN_NOTE,
    Fold,
    folds_frame,
    make_folds,
    parse_length,
    train_test_fold,
)

DAYS_20 = pd.date_range("2020-01-01", periods=20, freq="D")  # every calendar day, bars 0..19
_SPY, _ = load_sample("SPY", "1d")
_EURUSD, _ = load_sample("EURUSD", "1h")
_PROPERTY_SETTINGS = settings(
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def bounds(folds: list[Fold]) -> list[tuple[int, int, int, int]]:
    """(is_start, is_end, oos_start, oos_end) of each fold, after checking the numbering."""
    assert [fold.number for fold in folds] == list(range(len(folds)))
    return [(f.is_start, f.is_end, f.oos_start, f.oos_end) for f in folds]


def dates(folds: list[Fold], index: pd.DatetimeIndex) -> list[tuple[str, str, str, str]]:
    """(is_first, is_last, oos_first, oos_last) of each fold as 'YYYY-MM-DD[ HH:MM]' text."""
    frame = folds_frame(folds, index)
    columns = ["is_first", "is_last", "oos_first", "oos_last"]
    fmt = "%Y-%m-%d %H:%M" if index.tz is not None else "%Y-%m-%d"
    return [tuple(frame[c].iloc[i].strftime(fmt) for c in columns) for i in range(len(frame))]


# -- lengths ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("500", 500),
        (500, 500),
        (np.int64(7), 7),
        (" 12 ", 12),
        ("2y", pd.DateOffset(years=2)),
        ("2Y", pd.DateOffset(years=2)),
        ("6M", pd.DateOffset(months=6)),
        ("6mo", pd.DateOffset(months=6)),
        ("3w", pd.DateOffset(weeks=3)),
        ("90d", pd.DateOffset(days=90)),
        ("90D", pd.DateOffset(days=90)),
        ("12h", pd.DateOffset(hours=12)),
        ("30min", pd.DateOffset(minutes=30)),
    ],
)
def test_parse_length(text, want):
    got = parse_length(text)
    assert type(got) is type(want)
    assert got == want


FORMS = (
    "a number of bars (e.g. 500) or a whole number with a unit: y (years), M or mo (months), "
    "w (weeks), d (days), h (hours), min (minutes), e.g. 2y or 6M"
)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("2x", f"--is must be {FORMS}; got '2x'"),
        ("", f"--is must be {FORMS}; got ''"),
        ("-5", f"--is must be {FORMS}; got '-5'"),
        (-5, f"--is must be {FORMS}; got -5"),
        (2.5, f"--is must be {FORMS}; got 2.5"),
        ("1.5y", f"--is must be {FORMS}; got '1.5y'"),
        (True, f"--is must be {FORMS}; got True"),
        (
            "6m",
            f"--is must be {FORMS}; got '6m'; a bare m is ambiguous: write 6M or 6mo for months, "
            "30min for minutes",
        ),
        ("0d", "--is must be a positive duration, got '0d'; e.g. 90d or 6M"),
    ],
)
def test_parse_length_refuses(text, message):
    with pytest.raises(ConfigError) as err:
        parse_length(text, name="--is")
    assert str(err.value) == message


# -- rolling, anchored, gap, last window, step (bars) ------------------------------------------


def test_rolling():
    folds = make_folds(DAYS_20, in_sample=8, out_of_sample=4)
    assert bounds(folds) == [(0, 8, 8, 12), (4, 12, 12, 16), (8, 16, 16, 20)]
    assert folds[1].is_slice == slice(4, 12) and folds[1].oos_slice == slice(12, 16)


def test_anchored():
    folds = make_folds(DAYS_20, in_sample=8, out_of_sample=4, anchored=True)
    assert bounds(folds) == [(0, 8, 8, 12), (0, 12, 12, 16), (0, 16, 16, 20)]


def test_lengths_as_text_are_bars():
    folds = make_folds(DAYS_20, in_sample="8", out_of_sample="4", step="4")
    assert bounds(folds) == [(0, 8, 8, 12), (4, 12, 12, 16), (8, 16, 16, 20)]


def test_gap_drops_the_partial_last_window():
    folds = make_folds(DAYS_20, in_sample=8, out_of_sample=4, gap=2)
    assert bounds(folds) == [(0, 8, 10, 14), (4, 12, 14, 18)]


def test_gap_keeps_the_partial_last_window():
    folds = make_folds(DAYS_20, in_sample=8, out_of_sample=4, gap=2, last_window="keep")
    assert bounds(folds) == [(0, 8, 10, 14), (4, 12, 14, 18), (8, 16, 18, 20)]
    anchored = make_folds(
        DAYS_20, in_sample=8, out_of_sample=4, gap=2, anchored=True, last_window="keep"
    )
    assert bounds(anchored) == [(0, 8, 10, 14), (0, 12, 14, 18), (0, 16, 18, 20)]


def test_partial_last_window_dropped_and_kept():
    dropped = make_folds(DAYS_20, in_sample=6, out_of_sample=5)
    assert bounds(dropped) == [(0, 6, 6, 11), (5, 11, 11, 16)]
    kept = make_folds(DAYS_20, in_sample=6, out_of_sample=5, last_window="keep")
    assert bounds(kept) == [(0, 6, 6, 11), (5, 11, 11, 16), (10, 16, 16, 20)]


def test_keep_never_makes_an_empty_window():
    # the third fold's OOS would start at bar 20, the end: nothing to keep
    kept = make_folds(DAYS_20, in_sample=10, out_of_sample=5, last_window="keep")
    assert bounds(kept) == [(0, 10, 10, 15), (5, 15, 15, 20)]


def test_step_smaller_than_oos_overlaps_oos_windows():
    folds = make_folds(DAYS_20, in_sample=8, out_of_sample=4, step=2)
    want = [(0, 8, 8, 12), (2, 10, 10, 14), (4, 12, 12, 16), (6, 14, 14, 18), (8, 16, 16, 20)]
    assert bounds(folds) == want
    kept = make_folds(DAYS_20, in_sample=8, out_of_sample=4, step=2, last_window="keep")
    assert bounds(kept) == [*want, (10, 18, 18, 20)]  # only the first partial fold


def test_step_larger_than_oos_skips_bars():
    folds = make_folds(DAYS_20, in_sample=8, out_of_sample=3, step=5)
    assert bounds(folds) == [(0, 8, 8, 11), (5, 13, 13, 16)]
    kept = make_folds(DAYS_20, in_sample=8, out_of_sample=3, step=5, last_window="keep")
    assert bounds(kept) == [(0, 8, 8, 11), (5, 13, 13, 16), (10, 18, 18, 20)]


def test_anchored_with_a_step():
    folds = make_folds(DAYS_20, in_sample=8, out_of_sample=4, step=3, anchored=True)
    assert bounds(folds) == [(0, 8, 8, 12), (0, 11, 11, 15), (0, 14, 14, 18)]


# -- a number of folds ---------------------------------------------------------------------------


def test_folds_cut_the_rest_into_equal_oos_windows():
    folds = make_folds(DAYS_20, in_sample=8, folds=3)
    assert bounds(folds) == [(0, 8, 8, 12), (4, 12, 12, 16), (8, 16, 16, 20)]


def test_folds_with_a_gap_leave_the_remainder_at_the_end():
    days_22 = pd.date_range("2020-01-01", periods=22, freq="D")
    # 22 - 8 - 1 = 13 bars -> 3 OOS windows of 4; bar 21 is left over
    folds = make_folds(days_22, in_sample=8, folds=3, gap=1)
    assert bounds(folds) == [(0, 8, 9, 13), (4, 12, 13, 17), (8, 16, 17, 21)]
    anchored = make_folds(days_22, in_sample=8, folds=3, gap=1, anchored=True)
    assert bounds(anchored) == [(0, 8, 9, 13), (0, 12, 13, 17), (0, 16, 17, 21)]


def test_folds_with_a_duration_in_sample():
    folds = make_folds(_SPY.index, in_sample="2y", folds=4)
    assert len(folds) == 4
    # the first IS window is the 2 years from 1999-11-01; later ones keep its bar count
    assert dates(folds, _SPY.index)[0][:3] == ("1999-11-01", "2001-10-31", "2001-11-01")
    assert len({f.is_end - f.is_start for f in folds}) == 1
    assert len({f.oos_end - f.oos_start for f in folds}) == 1
    assert 0 <= len(_SPY) - folds[-1].oos_end < 4


# -- durations -----------------------------------------------------------------------------------


def test_spy_two_years_then_six_months():
    folds = make_folds(_SPY.index, in_sample="2y", out_of_sample="6M")
    got = dates(folds, _SPY.index)
    assert len(folds) == 37  # OOS ends 2002-05-01, 2002-11-01, ... 2020-05-01 (the 37th)
    assert got[0] == ("1999-11-01", "2001-10-31", "2001-11-01", "2002-04-30")
    assert got[1] == ("2000-05-01", "2002-04-30", "2002-05-01", "2002-10-31")
    assert got[2] == ("2000-11-01", "2002-10-31", "2002-11-01", "2003-04-30")
    assert got[36] == ("2017-11-01", "2019-10-31", "2019-11-01", "2020-04-30")
    # six-month steps: the OOS windows tile the bars exactly
    assert all(a.oos_end == b.oos_start for a, b in itertools.pairwise(folds))


def test_spy_partial_last_window_kept():
    folds = make_folds(_SPY.index, in_sample="2y", out_of_sample="6M", last_window="keep")
    assert len(folds) == 38
    last = ("2018-05-01", "2020-04-30", "2020-05-01", "2020-08-28")  # the data ends 2020-08-28
    assert dates(folds, _SPY.index)[37] == last
    assert folds[37].oos_end == len(_SPY)


def test_spy_anchored_durations():
    folds = make_folds(_SPY.index, in_sample="2y", out_of_sample="1y", anchored=True)
    got = dates(folds, _SPY.index)
    assert got[0] == ("1999-11-01", "2001-10-31", "2001-11-01", "2002-10-31")
    assert got[1] == ("1999-11-01", "2002-10-31", "2002-11-01", "2003-10-31")
    assert got[-1] == ("1999-11-01", "2018-10-31", "2018-11-01", "2019-10-31")
    assert len(folds) == 18


def test_eurusd_hourly_30_days():
    index = _EURUSD.index
    folds = make_folds(index, in_sample="30d", out_of_sample="30d")
    # the series starts Monday 2007-01-01 21:00 UTC; Fridays end at 21:00 (20:00 from March),
    # and the 2007-04-01 (Sunday) 21:00 bar reopens the week
    assert dates(folds, index)[:3] == [
        ("2007-01-01 21:00", "2007-01-31 20:00", "2007-01-31 21:00", "2007-03-02 20:00"),
        ("2007-01-31 21:00", "2007-03-02 20:00", "2007-03-02 21:00", "2007-03-30 20:00"),
        ("2007-03-02 21:00", "2007-03-30 20:00", "2007-04-01 21:00", "2007-05-01 20:00"),
    ]
    assert str(folds_frame(folds, index)["oos_first"].dt.tz) == "UTC"


def test_eurusd_boundary_on_a_weekend_moves_to_the_next_bar():
    index = _EURUSD.index
    folds = make_folds(index, in_sample="33d", out_of_sample="7d")
    # 2007-02-03 21:00 is a Saturday: the OOS starts at the Sunday 22:00 open
    assert dates(folds, index)[:2] == [
        ("2007-01-01 21:00", "2007-02-02 21:00", "2007-02-04 22:00", "2007-02-09 21:00"),
        ("2007-01-08 21:00", "2007-02-09 21:00", "2007-02-11 22:00", "2007-02-16 21:00"),
    ]


def test_months_do_not_drift_at_month_ends():
    index = pd.date_range("2021-01-31", "2021-06-30", freq="D")
    folds = make_folds(index, in_sample="1M", out_of_sample="1M")
    # boundaries t0 + k months: Feb 28, Mar 31, Apr 30, May 31, Jun 30 (not Mar 28, Apr 28...)
    assert [got[2:] for got in dates(folds, index)] == [
        ("2021-02-28", "2021-03-30"),
        ("2021-03-31", "2021-04-29"),
        ("2021-04-30", "2021-05-30"),
        ("2021-05-31", "2021-06-29"),
    ]


def test_duration_gap_moves_the_oos_window():
    days_40 = pd.date_range("2020-01-01", periods=40, freq="D")
    folds = make_folds(days_40, in_sample="10d", out_of_sample="7d", gap=2)
    assert bounds(folds) == [(0, 10, 12, 19), (7, 17, 19, 26), (14, 24, 26, 33), (21, 31, 33, 40)]


def test_anchored_durations_drop_and_keep():
    days_30 = pd.date_range("2020-01-01", periods=30, freq="D")
    folds = make_folds(days_30, in_sample="10d", out_of_sample="7d", anchored=True)
    assert bounds(folds) == [(0, 10, 10, 17), (0, 17, 17, 24)]
    kept = make_folds(
        days_30, in_sample="10d", out_of_sample="7d", anchored=True, last_window="keep"
    )
    assert bounds(kept) == [(0, 10, 10, 17), (0, 17, 17, 24), (0, 24, 24, 30)]


def test_mixed_units_bars_then_a_duration():
    days_40 = pd.date_range("2020-01-01", periods=40, freq="D")
    # IS 10 bars; OOS one week from the first OOS bar; the step defaults to one week from t0
    folds = make_folds(days_40, in_sample=10, out_of_sample="1w")
    assert bounds(folds) == [(0, 10, 10, 17), (7, 17, 17, 24), (14, 24, 24, 31), (21, 31, 31, 38)]


def test_steps_landing_on_the_same_bars_are_skipped():
    weekdays = pd.bdate_range("2020-01-06", periods=15)  # Monday, then weekdays only
    folds = make_folds(weekdays, in_sample=3, out_of_sample=2, step="1d")
    # Saturday and Sunday steps land on Monday's bar, like Monday's own step: one fold
    assert bounds(folds) == [
        (0, 3, 3, 5),
        (1, 4, 4, 6),
        (2, 5, 5, 7),
        (3, 6, 6, 8),
        (4, 7, 7, 9),
        (5, 8, 8, 10),
        (6, 9, 9, 11),
        (7, 10, 10, 12),
        (8, 11, 11, 13),
        (9, 12, 12, 14),
        (10, 13, 13, 15),
    ]


# -- errors ---------------------------------------------------------------------------------------

NO_FIT = "shorten --is/--oos or load more history"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"in_sample": 8, "out_of_sample": 4, "folds": 3},
            "walk-forward windows need either --oos or --folds, got both; give one, e.g. "
            "--oos 6M or --folds 5",
        ),
        (
            {"in_sample": 8},
            "walk-forward windows need either --oos or --folds, got neither; give one, e.g. "
            "--oos 6M or --folds 5",
        ),
        (
            {"in_sample": 8, "out_of_sample": 4, "gap": -1},
            "--gap must be a whole number of bars >= 0, got -1; e.g. --gap 5 (0: no gap)",
        ),
        (
            {"in_sample": 8, "out_of_sample": 4, "step": 0},
            "--step must be at least 1 bar (the folds would not move), got 0; give a positive "
            "--step or leave it out to step by the OOS length",
        ),
        (
            {"in_sample": 8, "out_of_sample": 4, "step": 0, "anchored": True},
            "--step must be at least 1 bar (the in-sample window would never grow), got 0; give "
            "a positive --step or leave it out to step by the OOS length",
        ),
        (
            {"in_sample": 8, "out_of_sample": 4, "last_window": "kep"},
            "--last-window must be 'drop' or 'keep', got 'kep'; use --last-window keep to keep "
            "a partial last OOS window",
        ),
        (
            {"in_sample": 1, "out_of_sample": 4},
            "--is must be at least 2 bars, got 1; e.g. --is 500",
        ),
        (
            {"in_sample": 8, "out_of_sample": 0},
            "--oos must be at least 1 bar, got 0; e.g. --oos 250",
        ),
        (
            {"in_sample": 8, "folds": 0},
            "--folds must be a whole number >= 1, got 0; e.g. --folds 5",
        ),
        (
            {"in_sample": 8, "folds": 13},
            "--folds 13 cuts the 12 bars after the first in-sample window and the gap into OOS "
            "windows of 0 bars; each needs at least 1: use fewer --folds, a shorter --is or more "
            "history",
        ),
        (
            {"in_sample": 15, "out_of_sample": 6},
            "no walk-forward fold fits: the first needs --is 15 + --oos 6 = 21 bars, but the "
            f"series has 20 bars (2020-01-01..2020-01-20); {NO_FIT}",
        ),
        (
            {"in_sample": 15, "out_of_sample": 4, "gap": 2},
            "no walk-forward fold fits: the first needs --is 15 + --gap 2 + --oos 4 = 21 bars, "
            f"but the series has 20 bars (2020-01-01..2020-01-20); {NO_FIT}",
        ),
        (
            {"in_sample": 20, "folds": 2},
            "no walk-forward fold fits: the first needs --is 20 + --folds 2 (at least 1 bar each)"
            f" = 22 bars, but the series has 20 bars (2020-01-01..2020-01-20); {NO_FIT}",
        ),
        (
            {"in_sample": "2y", "out_of_sample": "6M"},
            "no walk-forward fold fits: the first needs --is 2y + --oos 6M (bars from 2020-01-01 "
            "to before 2022-07-01), but the series has 20 bars (2020-01-01..2020-01-20); "
            f"{NO_FIT}",
        ),
        (
            {"in_sample": "2w", "out_of_sample": "1w", "gap": 3},
            "no walk-forward fold fits: the first needs --is 2w + --gap 3 + --oos 1w (bars from "
            "2020-01-01 to before 2020-01-22 and 3 bars more), but the series has 20 bars "
            f"(2020-01-01..2020-01-20); {NO_FIT}",
        ),
        (
            {"in_sample": "1d", "out_of_sample": 4},
            "every in-sample window needs at least 2 bars, but fold 0's (--is 1d from "
            "2020-01-01) holds 1; lengthen --is or fill the hole in the data",
        ),
    ],
)
def test_config_errors(kwargs, message):
    with pytest.raises(ConfigError) as err:
        make_folds(DAYS_20, **kwargs)
    assert str(err.value) == message


def test_oos_window_without_bars_is_refused():
    weekdays = pd.bdate_range("2020-01-06", periods=15)  # Monday, then weekdays only
    # IS: Monday 00:00 to Saturday 00:00; the OOS day, Saturday, holds no bar
    with pytest.raises(ConfigError) as err:
        make_folds(weekdays, in_sample="5d", out_of_sample="1d")
    assert str(err.value) == (
        "every OOS window needs at least 1 bar, but fold 0's (--oos 1d from 2020-01-13) holds "
        "none; lengthen --oos or fill the hole in the data"
    )


def test_empty_series_fits_no_fold():
    with pytest.raises(ConfigError) as err:
        make_folds(DAYS_20[:0], in_sample=8, out_of_sample=4)
    assert str(err.value) == (
        "no walk-forward fold fits: the first needs --is 8 + --oos 4 = 12 bars, but the series "
        f"has 0 bars (-..-); {NO_FIT}"
    )


def test_a_step_shorter_than_the_bars_is_refused():
    with pytest.raises(ConfigError) as err:
        make_folds(DAYS_20, in_sample=4, out_of_sample=2, step="1min")
    assert str(err.value) == (
        "a step must move the windows by at least a bar, but 1,001 steps from 2020-01-02 landed "
        "on the same bars; use a longer --step (or --oos, which it defaults to)"
    )


def test_index_errors():
    with pytest.raises(ConfigError) as err:
        make_folds(DAYS_20[::-1], in_sample=8, out_of_sample=4)
    assert str(err.value) == (
        "walk-forward windows need the bars oldest first, got an unsorted index; sort the bars "
        "(frame.sort_index())"
    )
    with pytest.raises(ConfigError) as err:
        make_folds(pd.RangeIndex(20), in_sample=8, out_of_sample=4)  # type: ignore[arg-type]
    assert str(err.value) == (
        "walk-forward windows need a DatetimeIndex, got RangeIndex; pass the bars' index "
        "(frame.index)"
    )


# -- folds_frame ---------------------------------------------------------------------------------


def test_folds_frame_columns_dtypes_and_half_open_ranges():
    folds = make_folds(DAYS_20, in_sample=8, out_of_sample=4, gap=1)
    frame = folds_frame(folds, DAYS_20)
    assert list(frame.columns) == [
        "fold",
        "is_start",
        "is_end",
        "oos_start",
        "oos_end",
        "is_first",
        "is_last",
        "oos_first",
        "oos_last",
    ]
    assert all(frame[c].dtype == np.int64 for c in frame.columns[:5])
    assert all(frame[c].dtype == DAYS_20.dtype for c in frame.columns[5:])
    # fold 0: IS bars 0..7 (2020-01-01..01-08), bar 8 is the gap, OOS bars 9..12 (01-10..01-13)
    assert frame.iloc[0].tolist() == [
        0,
        0,
        8,
        9,
        13,
        pd.Timestamp("2020-01-01"),
        pd.Timestamp("2020-01-08"),
        pd.Timestamp("2020-01-10"),
        pd.Timestamp("2020-01-13"),
    ]
    assert frame.attrs["windows"] == HALF_OPEN_NOTE


def test_folds_frame_keeps_the_timezone_and_round_trips_parquet(tmp_path):
    index = _EURUSD.index[:200]
    frame = folds_frame(make_folds(index, in_sample=100, out_of_sample=50), index)
    assert all(frame[c].dtype == index.dtype for c in ("is_first", "is_last", "oos_last"))
    assert frame["is_last"].iloc[0] == index[99]
    frame.to_parquet(tmp_path / "folds.parquet")
    back = pd.read_parquet(tmp_path / "folds.parquet")
    pd.testing.assert_frame_equal(back, frame)
    assert back.attrs["windows"] == HALF_OPEN_NOTE


def test_folds_frame_of_no_folds():
    frame = folds_frame([], DAYS_20)
    assert len(frame) == 0
    assert frame["is_end"].dtype == np.int64 and frame["oos_last"].dtype == DAYS_20.dtype


# -- train/test split ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n_bars", "fraction", "split"),
    [(10, 0.7, 7), (101, 0.5, 50), (100, 0.29, 28), (5241, 0.7, 3668), (4, 0.5, 2)],
)
def test_train_test_fold_is_the_split(n_bars, fraction, split):
    # 100 x 0.29 = 28.999999999999996 in floats: floored to 28, as the split always did
    fold = train_test_fold(n_bars, fraction)
    assert fold == Fold(0, 0, split, split, n_bars)
    assert train_test_split(n_bars, fraction).split == split == math.floor(n_bars * fraction)
    assert fold.is_slice == train_test_split(n_bars, fraction).train
    assert fold.oos_slice == train_test_split(n_bars, fraction).test


@pytest.mark.parametrize(
    ("n_bars", "fraction", "message"),
    [
        (100, 1.0, "train fraction must be in (0, 1), got 1.0; e.g. --train-split 0.7"),
        (100, 0.0, "train fraction must be in (0, 1), got 0.0; e.g. --train-split 0.7"),
        (
            10,
            0.9,
            "a train split of 0.9 of 10 bars leaves 9 train and 1 test bars; each part needs at "
            "least 2: use more data or another --train-split",
        ),
    ],
)
def test_train_test_fold_errors(n_bars, fraction, message):
    for split in (train_test_fold, train_test_split):
        with pytest.raises(ConfigError) as err:
            split(n_bars, fraction)
        assert str(err.value) == message


# -- properties ----------------------------------------------------------------------------------


@_PROPERTY_SETTINGS
@given(
    n_bars=st.integers(0, 200),
    in_sample=st.integers(2, 60),
    out_of_sample=st.integers(1, 40),
    gap=st.integers(0, 10),
    step=st.none() | st.integers(1, 50),
    anchored=st.booleans(),
    keep=st.booleans(),
)
def test_fold_properties_in_bars(n_bars, in_sample, out_of_sample, gap, step, anchored, keep):
    index = pd.date_range("2000-01-03", periods=n_bars, freq="D")
    last_window = "keep" if keep else "drop"
    kwargs = {"in_sample": in_sample, "out_of_sample": out_of_sample, "gap": gap, "step": step}
    fits = in_sample + gap < n_bars if keep else in_sample + gap + out_of_sample <= n_bars
    if not fits:
        with pytest.raises(ConfigError, match=r"^no walk-forward fold fits"):
            make_folds(index, **kwargs, anchored=anchored, last_window=last_window)
        return
    folds = make_folds(index, **kwargs, anchored=anchored, last_window=last_window)
    step_bars = out_of_sample if step is None else step
    assert [f.number for f in folds] == list(range(len(folds)))
    for k, fold in enumerate(folds):
        assert 0 <= fold.is_start < fold.is_end <= fold.oos_start < fold.oos_end <= n_bars
        assert fold.oos_start == fold.is_end + gap
        assert fold.oos_start == in_sample + gap + k * step_bars  # moves by exactly the step
        if anchored:
            assert fold.is_start == 0
        else:
            assert fold.is_start == k * step_bars
            assert fold.is_end - fold.is_start == in_sample
        whole = fold.oos_end - fold.oos_start == out_of_sample
        assert whole or (keep and fold is folds[-1] and fold.oos_end == n_bars)
    # as many folds as fit: the next one would not
    next_oos_start = folds[-1].oos_start + step_bars
    if folds[-1].oos_end - folds[-1].oos_start == out_of_sample:
        assert next_oos_start + out_of_sample > n_bars
        assert not keep or next_oos_start >= n_bars


@st.composite
def calendars(draw: st.DrawFn) -> pd.DatetimeIndex:
    """Daily bars over 60..400 days with random days missing (at most 1 in 4)."""
    days = pd.date_range("2001-01-01", periods=draw(st.integers(60, 400)), freq="D")
    seed = draw(st.integers(0, 2**32 - 1))
    keep = np.random.default_rng(seed).random(len(days)) >= draw(st.floats(0.0, 0.25))
    keep[0] = True
    return days[keep]


def reference_day_folds(
    index: pd.DatetimeIndex, is_days: int, oos_days: int, gap: int, anchored: bool
) -> list[tuple[int, int, int, int]] | None:
    """The folds of day-long windows, by counting the bars before each boundary time; None
    when `make_folds` must refuse (no fold fits, or a window without enough bars)."""
    t0, day, n_bars = index[0], pd.Timedelta(days=1), len(index)
    made: list[tuple[int, int, int, int]] = []
    for k in range(10_000):
        is_from = t0 if anchored else t0 + k * oos_days * day
        is_to = t0 + (is_days + k * oos_days) * day if anchored else is_from + is_days * day
        oos_to = is_to + oos_days * day
        start, end, stop = (int((index < time).sum()) for time in (is_from, is_to, oos_to))
        if end + gap >= n_bars:
            break
        if end - start < 2 or stop - end < 1:
            return None
        if oos_to > index[-1] or stop + gap > n_bars:
            break
        fold = (start, end, end + gap, stop + gap)
        if not made or made[-1] != fold:
            made.append(fold)
    return made or None


@_PROPERTY_SETTINGS
@given(
    index=calendars(),
    is_days=st.integers(10, 120),
    oos_days=st.integers(3, 60),
    gap=st.integers(0, 5),
    anchored=st.booleans(),
)
def test_fold_properties_in_durations(index, is_days, oos_days, gap, anchored):
    want = reference_day_folds(index, is_days, oos_days, gap, anchored)
    kwargs = {"in_sample": f"{is_days}d", "out_of_sample": f"{oos_days}d", "gap": gap}
    if want is None:
        with pytest.raises(ConfigError):
            make_folds(index, **kwargs, anchored=anchored)
        return
    folds = make_folds(index, **kwargs, anchored=anchored)
    assert bounds(folds) == want
    for fold in folds:
        assert 0 <= fold.is_start < fold.is_end <= fold.oos_start < fold.oos_end <= len(index)
    # the step is the OOS duration: the OOS windows tile the bars
    assert all(a.oos_end == b.oos_start for a, b in itertools.pairwise(folds))
