"""PSR, DSR and MinTRL (ivybt.stats.sharpe, issue #8 section 2).

The papers' examples are reproduced with their stated inputs; the normal CDF and its inverse
used for the expected values come from `math.erf` (bisection for the inverse), not from the
`statistics.NormalDist` the module uses, so the arithmetic is checked independently.
"""

from __future__ import annotations

import json
import math
from fractions import Fraction

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ivybt
from ivybt.errors import ConfigError
from ivybt.stats.sharpe import (
    DSRResult,
    deflated_sharpe,
    deflated_sharpe_of_trials,
    effective_trials,
    expected_max_sharpe,
    min_track_record_length,
    probabilistic_sharpe,
    sharpe_moments,
)
from tests.tolerances import RTOL_BACKTEST

ATOL_PAPER_4DP = 5e-5
"""A figure the papers print to 4 decimals: half a unit in the last place."""

ATOL_HAND_7DP = 5e-8
"""An intermediate value written out to 7 decimals in a worked example."""

RTOL_FORMULA = 1e-12
"""The same closed form evaluated twice (NormalDist vs erf + bisection, two summation orders,
x sqrt(P) then / sqrt(P)); seen ~1e-15."""

RTOL_EXPECTED_MAX_APPROX = 0.03
"""E[max of N normals] approximation vs the exact integral: 2.3% off at N = 10, 0.9% at 100."""

SIGMAS = 6.0
"""Bound for sample skewness / kurtosis of normal draws, in standard errors sqrt(6/n),
sqrt(24/n): a failure by chance has probability ~2e-9."""

_SETTINGS = settings(max_examples=60, deadline=None)


def _phi(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


def _phi_inv(p: float) -> float:
    low, high = -40.0, 40.0
    for _ in range(200):
        mid = 0.5 * (low + high)
        low, high = (mid, high) if _phi(mid) < p else (low, mid)
    return 0.5 * (low + high)


# The papers' examples --------------------------------------------------------------------------


def test_dsr_reproduces_the_2014_paper_example():
    """Bailey and López de Prado (2014), numerical example: SR 2.5 a year over T = 1,250 daily
    returns (250 a year), skewness -3, kurtosis 10, N = 100 trials whose annualised Sharpe
    ratios have variance 0.5. Per day: SR = 2.5 / sqrt(250) = 0.1581, V = 0.5 / 250 = 0.002.
    The paper reports E[max SR] = 0.1132 (per day, 1.79 a year) and DSR = 0.9004."""
    sharpe, variance, gamma = 2.5 / math.sqrt(250), 0.5 / 250, 0.5772156649015329
    z_max = (1 - gamma) * _phi_inv(1 - 1 / 100) + gamma * _phi_inv(1 - 1 / (100 * math.e))
    expected_max = math.sqrt(variance) * z_max
    assert expected_max == pytest.approx(0.1132, abs=ATOL_PAPER_4DP)
    assert expected_max_sharpe(100, variance) == pytest.approx(expected_max, rel=RTOL_FORMULA)
    assert expected_max_sharpe(100, variance) * math.sqrt(250) == pytest.approx(
        1.7894, abs=ATOL_PAPER_4DP
    )

    factor = 1 - (-3) * sharpe + (10 - 1) / 4 * sharpe**2  # 1.5306
    want = _phi((sharpe - expected_max) * math.sqrt(1250 - 1) / math.sqrt(factor))
    got = deflated_sharpe(sharpe, 1250, -3.0, 10.0, n_trials=100, sharpe_variance=variance)
    assert got == pytest.approx(want, rel=RTOL_FORMULA)
    assert got == pytest.approx(0.9004, abs=ATOL_PAPER_4DP)
    benchmark = expected_max_sharpe(100, variance)
    assert probabilistic_sharpe(sharpe, benchmark, 1250, -3.0, 10.0) == got


# Inputs of the 2012 paper's hedge-fund illustration: 24 monthly returns, SR 1.59 a year
# (0.458 a month), skewness -2.448, kurtosis 10.164. Its printed results could not be checked
# offline, so the expected values are worked from the paper's equations, step by step.
HEDGE_FUND = {"sharpe": 0.458, "skewness": -2.448, "kurtosis": 10.164}
Z_95 = 1.6448536269514722  # Phi^-1(0.95)


def test_psr_2012_hedge_fund_inputs_worked_by_hand():
    sharpe, skewness, kurtosis = HEDGE_FUND.values()
    factor = 1 - skewness * sharpe + (kurtosis - 1) / 4 * sharpe**2
    assert factor == pytest.approx(2.6017533, abs=ATOL_HAND_7DP)  # 1 + 1.121184 + 0.480569
    z = sharpe * math.sqrt(24 - 1) / math.sqrt(factor)
    assert z == pytest.approx(1.3617467, abs=ATOL_HAND_7DP)
    psr = probabilistic_sharpe(sharpe, 0.0, 24, skewness, kurtosis)
    assert psr == pytest.approx(_phi(z), rel=RTOL_FORMULA)
    assert psr == pytest.approx(0.9134, abs=ATOL_PAPER_4DP)
    # the same SR from normal returns (skew 0, kurtosis 3) would look more certain
    assert probabilistic_sharpe(sharpe, 0.0, 24, 0.0, 3.0) == pytest.approx(
        0.9817, abs=ATOL_PAPER_4DP
    )
    # against SR* = 1 a year (1 / sqrt(12) a month)
    psr_1 = probabilistic_sharpe(sharpe, 1 / math.sqrt(12), 24, skewness, kurtosis)
    assert psr_1 == pytest.approx(0.6927, abs=ATOL_PAPER_4DP)


def test_min_track_record_2012_hedge_fund_inputs_worked_by_hand():
    sharpe, skewness, kurtosis = HEDGE_FUND.values()
    assert _phi_inv(0.95) == pytest.approx(Z_95, rel=RTOL_FORMULA)
    # 1 + 2.601753 x (1.644854 / 0.458)^2 = 1 + 2.601753 x 12.8983 months
    got = min_track_record_length(sharpe, 0.0, skewness, kurtosis, probability=0.95)
    assert got == pytest.approx(34.5575, abs=ATOL_PAPER_4DP)
    assert min_track_record_length(sharpe, 0.0, 0.0, 3.0) == pytest.approx(
        15.2508, abs=ATOL_PAPER_4DP
    )
    # 24 months are enough for normal returns, not for these fat-tailed, skewed ones
    assert min_track_record_length(sharpe, 0.0, 0.0, 3.0) < 24 < got


@pytest.mark.parametrize(
    ("sharpe", "benchmark", "skewness", "kurtosis", "probability"),
    [(0.458, 0.0, -2.448, 10.164, 0.95), (0.1, 0.05, 0.5, 4.0, 0.99), (0.05, -0.02, 0, 3, 0.6)],
)
def test_psr_at_min_track_record_length_equals_the_probability(
    sharpe, benchmark, skewness, kurtosis, probability
):
    n = min_track_record_length(sharpe, benchmark, skewness, kurtosis, probability)
    psr = probabilistic_sharpe(sharpe, benchmark, n, skewness, kurtosis)
    assert psr == pytest.approx(probability, rel=RTOL_FORMULA)


@pytest.mark.parametrize("n_trials", [10, 100, 1000])
def test_expected_max_approximation_is_close_to_the_exact_expected_maximum(n_trials):
    """E[max of N standard normals] = integral of x N phi(x) Phi(x)^(N-1) dx (2.5076 at 100)."""
    x = np.linspace(-10.0, 10.0, 200_001)
    cdf = 0.5 * (1.0 + np.vectorize(math.erf)(x / math.sqrt(2.0)))
    density = np.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)
    exact = float(np.trapezoid(x * n_trials * density * cdf ** (n_trials - 1), x))
    assert expected_max_sharpe(n_trials, 1.0) == pytest.approx(exact, rel=RTOL_EXPECTED_MAX_APPROX)


# Properties ------------------------------------------------------------------------------------

sharpes = st.floats(-0.5, 0.5)
shapes = st.tuples(st.floats(-3.0, 3.0), st.floats(0.0, 20.0)).map(
    lambda pair: (pair[0], 1.0 + pair[0] ** 2 + pair[1])  # (skewness, raw kurtosis)
)


@_SETTINGS
@given(sharpe=sharpes, benchmark=sharpes, shape=shapes, n=st.integers(2, 5_000))
def test_psr_moves_with_n_towards_the_side_of_the_benchmark(sharpe, benchmark, shape, n):
    shorter = probabilistic_sharpe(sharpe, benchmark, n, *shape)
    longer = probabilistic_sharpe(sharpe, benchmark, 2 * n, *shape)
    if sharpe > benchmark:
        assert longer >= shorter >= 0.5
    elif sharpe < benchmark:
        assert longer <= shorter <= 0.5
    else:
        assert shorter == longer == 0.5


@_SETTINGS
@given(sharpe=sharpes, shape=shapes, n=st.integers(2, 100_000))
def test_psr_is_one_half_when_the_sharpe_equals_the_benchmark(sharpe, shape, n):
    assert probabilistic_sharpe(sharpe, sharpe, n, *shape) == 0.5


@_SETTINGS
@given(
    sharpe=sharpes, shape=shapes, n=st.integers(2, 5_000),
    n_trials=st.floats(1.0, 1e6, exclude_min=True), variance=st.floats(0.0, 0.1),
)  # fmt: skip
def test_dsr_never_exceeds_psr_against_zero(sharpe, shape, n, n_trials, variance):
    dsr = deflated_sharpe(sharpe, n, *shape, n_trials=n_trials, sharpe_variance=variance)
    assert dsr <= probabilistic_sharpe(sharpe, 0.0, n, *shape)


def test_expected_max_grows_with_the_number_of_trials_and_is_zero_for_one():
    values = [expected_max_sharpe(n, 0.01) for n in (1, 1.01, 1.5, 2, 10, 100, 10_000)]
    assert values[0] == values[1] == 0.0  # floored where the approximation dips below 0
    assert values == sorted(values)
    assert expected_max_sharpe(100, 0.0) == 0.0


def test_normal_returns_have_skewness_near_0_and_kurtosis_near_3():
    n = 400_000
    moments = sharpe_moments(np.random.default_rng(8).normal(0.0005, 0.01, n))
    assert moments.n == n
    assert abs(moments.skewness) < SIGMAS * math.sqrt(6 / n)
    assert abs(moments.kurtosis - 3.0) < SIGMAS * math.sqrt(24 / n)
    assert moments.sharpe == pytest.approx(0.05, abs=SIGMAS / math.sqrt(n))


# sharpe_moments --------------------------------------------------------------------------------


def test_sharpe_moments_match_exact_moments():
    returns = [0.01, -0.02, 0.03, 0.01, 0.0, -0.005]
    exact = [Fraction(r) for r in returns]
    mean = sum(exact) / len(exact)
    m2, m3, m4 = (sum((r - mean) ** k for r in exact) / len(exact) for k in (2, 3, 4))
    sample_var = m2 * len(exact) / (len(exact) - 1)
    got = sharpe_moments(np.array(returns))
    assert got.n == 6
    assert got.sharpe == pytest.approx(float(mean) / math.sqrt(sample_var), rel=RTOL_FORMULA)
    assert got.skewness == pytest.approx(float(m3) / float(m2) ** 1.5, rel=RTOL_FORMULA)
    assert got.kurtosis == pytest.approx(float(m4 / m2**2), rel=RTOL_FORMULA)


def test_sharpe_moments_drop_nans_and_accept_a_series():
    returns = np.array([0.01, np.nan, -0.02, 0.03, np.nan, 0.01])
    assert sharpe_moments(returns) == sharpe_moments(returns[~np.isnan(returns)])
    assert sharpe_moments(pd.Series(returns)) == sharpe_moments(returns)


def test_constant_returns_give_nan_and_an_undefined_reading():
    moments = sharpe_moments(np.full(50, 0.001))
    assert math.isnan(moments.sharpe) and math.isnan(moments.kurtosis)
    result = deflated_sharpe_of_trials(np.zeros(50), [0.1, 0.2, np.nan])
    assert math.isnan(result.dsr) and result.n_trials_tried == 2
    assert result.reading() == (
        "after 2 trials the DSR is undefined: the selected returns have no variance"
    )
    assert json.dumps(result.to_json(), allow_nan=False)


def test_per_period_sharpe_matches_the_backtest_sharpe():
    result = ivybt.backtest("sma_cross", symbol="SPY", source="sample", start="2015-01-01")
    moments = sharpe_moments(result.equity["returns"])
    assert moments.n == len(result.equity)
    annual = moments.sharpe * math.sqrt(result.periods_per_year)
    assert annual == pytest.approx(result.metrics["sharpe"], rel=RTOL_BACKTEST)


# deflated_sharpe_of_trials ---------------------------------------------------------------------


def _grid(seed: int, edge: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """T x N daily returns of unskilled trials, the last with a mean of `edge` per day."""
    returns = np.random.default_rng(seed).normal(0.0, 0.01, (2_000, 200))
    returns[:, -1] += edge
    return returns, returns.mean(axis=0) / returns.std(axis=0, ddof=1)


def test_dsr_of_trials_is_the_formula_on_its_inputs():
    returns, trial_sharpes = _grid(1)
    best = int(np.argmax(trial_sharpes))
    result = deflated_sharpe_of_trials(returns[:, best], trial_sharpes, periods_per_year=252)
    moments = sharpe_moments(returns[:, best])
    variance = float(np.var(trial_sharpes, ddof=1))
    assert result.sharpe == moments.sharpe == pytest.approx(trial_sharpes[best], rel=RTOL_FORMULA)
    assert (result.n_trials, result.n_trials_tried, result.n_observations) == (200, 200, 2_000)
    assert result.sharpe_variance == pytest.approx(variance, rel=RTOL_FORMULA)
    assert result.dsr == deflated_sharpe(
        moments.sharpe, 2_000, moments.skewness, moments.kurtosis,
        n_trials=200, sharpe_variance=result.sharpe_variance,
    )  # fmt: skip
    assert result.psr == probabilistic_sharpe(
        moments.sharpe, 0.0, 2_000, moments.skewness, moments.kurtosis
    )
    assert result.dsr < result.psr
    annual = deflated_sharpe_of_trials(
        returns[:, best], trial_sharpes * math.sqrt(252), trial_sharpe_unit="annual",
        periods_per_year=252,
    )  # fmt: skip
    assert annual.dsr == pytest.approx(result.dsr, rel=RTOL_FORMULA)
    assert annual.expected_max_sharpe == pytest.approx(
        result.expected_max_sharpe, rel=RTOL_FORMULA
    )


def test_a_planted_edge_survives_deflation():
    returns, trial_sharpes = _grid(2, edge=0.002)  # ~3.2 a year against noise
    result = deflated_sharpe_of_trials(returns[:, -1], trial_sharpes)
    assert result.dsr > 0.999
    assert result.reading().startswith("after 200 trials the best Sharpe has a >99% probability")


def test_effective_trials_formula_and_its_use():
    assert effective_trials(0.0, 100) == 100
    assert effective_trials(1.0, 100) == 1
    assert effective_trials(0.5, 101) == 51
    returns, trial_sharpes = _grid(3)
    best = returns[:, int(np.argmax(trial_sharpes))]
    corr = np.corrcoef(returns[:, :20], rowvar=False)
    result = deflated_sharpe_of_trials(
        best, trial_sharpes, effective=True, trials_returns_corr=corr
    )
    mean_offdiag = (corr.sum() - 20) / (20 * 19)
    assert result.correlation_mean == pytest.approx(mean_offdiag, rel=RTOL_FORMULA)
    assert result.n_trials == pytest.approx(effective_trials(mean_offdiag, 200), rel=RTOL_FORMULA)
    assert "after 200 trials (about " in result.reading()
    # perfectly correlated trials count as one: the DSR is then PSR(0)
    one = deflated_sharpe_of_trials(best, trial_sharpes, effective=True, trials_returns_corr=1.0)
    assert (one.n_trials, one.expected_max_sharpe, one.dsr) == (1.0, 0.0, one.psr)


def test_reading_and_json():
    result = DSRResult(
        dsr=0.12, psr=0.97, sharpe=0.08, expected_max_sharpe=0.1, n_trials=15_247,
        n_trials_tried=15_247, sharpe_variance=0.0004, skewness=-0.4, kurtosis=6.0,
        min_track_record_length=math.inf, n_observations=2_500, periods_per_year=252.0,
    )  # fmt: skip
    assert result.reading() == (
        "after 15,247 trials the best Sharpe has a 12% probability of beating the best of that "
        "many unskilled trials (DSR 0.12)"
    )
    out = json.loads(json.dumps(result.to_json(), allow_nan=False))
    assert out["min_track_record_length_bars"] is None
    assert out["sharpe_ann"] == pytest.approx(0.08 * math.sqrt(252))
    assert out["reading"] == result.reading()
    eighty = DSRResult(**{**result.__dict__, "dsr": 0.8})
    assert "has an 80% probability" in eighty.reading()


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: sharpe_moments(np.zeros((3, 2))), "must be 1-D"),
        (lambda: sharpe_moments([0.01, np.nan]), ">= 2 non-NaN"),
        (lambda: sharpe_moments([0.01, np.inf, 0.0]), "must be finite"),
        (lambda: probabilistic_sharpe(0.1, 0.0, 100, 0.0, 0.0), "RAW kurtosis"),
        (lambda: probabilistic_sharpe(0.1, 0.0, 1, 0.0, 3.0), "n > 1"),
        (lambda: min_track_record_length(0.1, 0.0, 0.0, 3.0, probability=1.0), "probability"),
        (lambda: expected_max_sharpe(0.5, 0.01), "n_trials >= 1"),
        (lambda: expected_max_sharpe(10, -0.01), "sharpe_variance >= 0"),
        (lambda: effective_trials(1.5, 10), "correlation_mean"),
        (lambda: deflated_sharpe_of_trials([0.01, 0.02, 0.0], [1.0], trial_sharpe_unit="annual"),
         "periods_per_year"),
        (lambda: deflated_sharpe_of_trials([0.01, 0.02, 0.0], [1.0], effective=True),
         "trials_returns_corr"),
        (lambda: deflated_sharpe_of_trials([0.01, 0.02, 0.0], [1.0], trials_returns_corr=0.3),
         "trials_returns_corr"),
        (lambda: deflated_sharpe_of_trials([0.01, 0.02, 0.0], [np.nan]), "trial_sharpes"),
        (lambda: deflated_sharpe_of_trials([0.01, 0.02, 0.0], [1.0], effective=True,
                                           trials_returns_corr=np.ones((2, 3))), "square"),
    ],
)  # fmt: skip
def test_bad_inputs_say_the_rule_the_value_and_the_fix(call, match):
    with pytest.raises(ConfigError, match=match):
        call()


def test_sharpe_at_or_below_the_benchmark_never_gets_a_track_record():
    assert min_track_record_length(0.05, 0.05, 0.0, 3.0) == math.inf
    assert min_track_record_length(-0.05, 0.0, 0.0, 3.0) == math.inf
    assert math.isnan(min_track_record_length(math.nan, 0.0, 0.0, 3.0))
