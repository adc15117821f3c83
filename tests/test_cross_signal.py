"""The crossover kernel (`cross_signal_nb`, sma_cross and ema_cross) against the bar-by-bar
rule, on lines full of the cases its vectorised passes treat apart: exact ties (sign 0,
which carry the side), NaN warm-up and gaps, no crossover at all, a crossover on the first
bars."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from ivybt.kernels.signals import cross_signal_nb
from tests.reference_signals import _follow_crosses

ROWS = np.array([0, 1], dtype=np.int64)
NO_PARAMS = np.empty(0)

# small whole numbers and NaN: ties (equal values) on a good share of the bars
values = st.one_of(st.integers(-2, 2).map(float), st.just(float("nan")))


def sides(fast: np.ndarray, slow: np.ndarray) -> np.ndarray:
    out = np.full(len(fast), 7, dtype=np.int8)  # 7: a bar the kernel left unwritten
    cross_signal_nb(np.ascontiguousarray(np.stack([fast, slow])), ROWS, NO_PARAMS, out)
    return out


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(values, values), min_size=0, max_size=60))
def test_crossover_sides_equal_the_bar_by_bar_rule(pairs):
    fast = np.array([p[0] for p in pairs], dtype=np.float64)
    slow = np.array([p[1] for p in pairs], dtype=np.float64)
    np.testing.assert_array_equal(sides(fast, slow), _follow_crosses(fast, slow))


def test_ties_after_the_first_crossover_carry_the_side():
    fast = np.array([np.nan, 1.0, 3.0, 2.0, 2.0, np.nan, 1.0, 1.0, 0.0])
    slow = np.array([np.nan, 2.0, 2.0, 2.0, 2.0, 2.0, 1.0, 2.0, 0.0])
    #               warm-up  below cross tie  tie  NaN  tie  cross tie
    np.testing.assert_array_equal(sides(fast, slow), [0, 0, 1, 1, 1, 1, 1, -1, -1])


def test_no_crossover_stays_flat():
    fast = np.array([np.nan, 3.0, 3.0, 2.0, 4.0])
    slow = np.array([np.nan, 2.0, 3.0, 1.0, 2.0])
    np.testing.assert_array_equal(sides(fast, slow), [0, 0, 0, 0, 0])
