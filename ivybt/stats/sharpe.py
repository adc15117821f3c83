"""Probabilistic and deflated Sharpe ratios, and the minimum track record length (issue #8).

Units. Every formula here works in PER-PERIOD Sharpe ratios, as the papers do: mean / std
(ddof = 1) of the per-bar simple returns, not annualised (IvyBT's `sharpe` metric is this
times sqrt(periods_per_year), see `ivybt.kernels.metrics`). De-annualise before use:

    sharpe_period = sharpe_ann / sqrt(periods_per_year)      # 2.5 a year, daily: 0.1581
    variance_period = variance_ann / periods_per_year        # V[SR] 0.5 a year: 0.002

Lengths (`n`, MinTRL) count returns (bars). Skewness is the third standardised moment, kurtosis
the RAW fourth one (a normal gives 3, not 0).

References
----------
Bailey, D. H. and López de Prado, M. (2012). "The Sharpe Ratio Efficient Frontier". Journal of
Risk 15(2): the probabilistic Sharpe ratio PSR(SR*) and the minimum track record length.
Bailey, D. H. and López de Prado, M. (2014). "The Deflated Sharpe Ratio: Correcting for
Selection Bias, Backtest Overfitting and Non-Normality". Journal of Portfolio Management 40(5):
the expected maximum Sharpe ratio of N unskilled trials and the DSR (their example: 0.9004).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from statistics import NormalDist
from typing import Literal

import numpy as np
import numpy.typing as npt

from ivybt.errors import ConfigError

__all__ = [
    "DSRResult",
    "SharpeMoments",
    "deflated_sharpe",
    "deflated_sharpe_of_trials",
    "effective_trials",
    "expected_max_sharpe",
    "min_track_record_length",
    "probabilistic_sharpe",
    "sharpe_moments",
]

EULER_MASCHERONI = 0.5772156649015329
_NORMAL = NormalDist()
_PEARSON_SLACK = 1e-9  # rounding allowance on kurtosis >= 1 + skewness^2


def _require(holds: bool, message: str) -> None:
    if not holds:
        raise ConfigError(message)


@dataclass(frozen=True)
class SharpeMoments:
    """n finite returns; their per-period Sharpe ratio (mean / std ddof=1, not annualised);
    skewness m3 / m2**1.5 (Fisher-Pearson g1 from the biased moments m_k = mean((r -
    mean)**k)); RAW kurtosis m4 / m2**2 (normal = 3). The last three are NaN if constant."""

    n: int
    sharpe: float
    skewness: float
    kurtosis: float


def sharpe_moments(returns: npt.ArrayLike) -> SharpeMoments:
    """The inputs of PSR, DSR and MinTRL from per-period simple returns.

    Parameters
    ----------
    returns : float, shape (n_bars,)
        Per-bar simple returns (0.01 = 1%), e.g. `BacktestResult.equity["returns"]`; a numpy
        array or a pandas Series. NaNs are dropped (missing bars); the rest must be finite.

    Returns
    -------
    SharpeMoments
        `sharpe * sqrt(periods_per_year)` is IvyBT's `sharpe` metric (rf = 0). Skewness and
        kurtosis are the biased sample moments used by Bailey and López de Prado (scipy's
        `skew(bias=True)` and `kurtosis(fisher=False, bias=True)`).

    Examples
    --------
    >>> m = sharpe_moments([0.01, -0.02, 0.03, 0.01, float("nan")])
    >>> m.n, round(m.sharpe, 4), round(m.skewness, 4), round(m.kurtosis, 4)
    (4, 0.3638, -0.4118, 2.0381)
    """
    values = np.asarray(returns, dtype=np.float64)
    _require(values.ndim == 1, f"`returns` must be 1-D, got shape {values.shape}; pass a column")
    values = values[~np.isnan(values)]
    bad = int(np.sum(~np.isfinite(values)))
    _require(bad == 0, f"`returns` must be finite, got {bad} inf; check the equity for <= 0")
    n = int(values.size)
    _require(n >= 2, f"`returns` needs >= 2 non-NaN values, got {n}; pass a longer series")
    deviations = values - values.mean()
    squares = deviations * deviations
    m2 = float(squares.mean())
    if m2 == 0.0:
        return SharpeMoments(n, math.nan, math.nan, math.nan)
    m3 = float((squares * deviations).mean())
    m4 = float((squares * squares).mean())
    std = math.sqrt(float(squares.sum()) / (n - 1))
    return SharpeMoments(n, float(values.mean()) / std, m3 / m2**1.5, m4 / (m2 * m2))


def _variance_factor(sharpe: float, skewness: float, kurtosis: float) -> float:
    """1 - skew SR + (kurt - 1) / 4 SR^2, i.e. (n - 1) x the variance of the estimated SR."""
    _require(
        kurtosis >= (1.0 + skewness * skewness) * (1.0 - _PEARSON_SLACK),
        f"kurtosis >= 1 + skewness^2 must hold (Pearson), got kurtosis={kurtosis!r}, "
        f"skewness={skewness!r}; pass the RAW kurtosis (normal = 3): excess kurtosis + 3",
    )
    return 1.0 - skewness * sharpe + (kurtosis - 1.0) / 4.0 * sharpe * sharpe


def probabilistic_sharpe(
    sharpe: float, benchmark: float, n: float, skewness: float, kurtosis: float
) -> float:
    """Probability that the true Sharpe ratio exceeds `benchmark` (PSR, Bailey and López de
    Prado 2012): Phi((SR - SR*) sqrt(n - 1) / sqrt(1 - skew SR + (kurt - 1) / 4 SR^2)).

    Parameters
    ----------
    sharpe, benchmark : float
        Observed SR and the threshold SR*, both PER PERIOD (annual / sqrt(periods_per_year)).
    n : float
        Number of returns the SR was measured on, > 1.
    skewness, kurtosis : float
        Of those returns; kurtosis is raw (normal = 3) and must be >= 1 + skewness^2.

    Returns
    -------
    float
        In [0, 1], 0.5 when sharpe == benchmark; NaN if an input is NaN or the variance
        factor is 0 (a two-point distribution).

    Examples
    --------
    >>> round(probabilistic_sharpe(0.1, 0.0, 250, 0.0, 3.0), 4)
    0.9423
    """
    _require(n > 1 and math.isfinite(n), f"n > 1 must hold, got n={n!r}; pass the return count")
    if math.isnan(sharpe) or math.isnan(benchmark) or math.isnan(skewness + kurtosis):
        return math.nan
    factor = _variance_factor(sharpe, skewness, kurtosis)
    if factor <= 0.0:
        return math.nan
    return _NORMAL.cdf((sharpe - benchmark) * math.sqrt(n - 1.0) / math.sqrt(factor))


def expected_max_sharpe(n_trials: float, sharpe_variance: float) -> float:
    """Expected maximum Sharpe ratio of `n_trials` unskilled trials (Bailey and López de Prado
    2014): sqrt(V) ((1 - g) Phi^-1(1 - 1/N) + g Phi^-1(1 - 1/(N e))), g = Euler-Mascheroni.

    Parameters
    ----------
    n_trials : float
        Number of (effective) independent trials N >= 1; may be fractional (`effective_trials`).
    sharpe_variance : float
        Variance V of the trials' Sharpe ratios, PER PERIOD (annual variance / periods_per_year).

    Returns
    -------
    float
        Per period; 0 for one trial (the null's mean). Floored at 0: the approximation dips
        below 0 for N < ~1.3, where the true expected maximum of N >= 1 trials is >= 0.

    Examples
    --------
    >>> round(expected_max_sharpe(100, 0.5 / 250) * 250**0.5, 4)  # annualised
    1.7894
    """
    message = f"n_trials >= 1 must hold, got {n_trials!r}; pass how many trials were run"
    _require(1 <= n_trials < math.inf, message)
    message = f"sharpe_variance >= 0 must hold, got {sharpe_variance!r}; pass V of the trials' SR"
    _require(sharpe_variance >= 0 and math.isfinite(sharpe_variance), message)
    if n_trials == 1:
        return 0.0
    gamma = EULER_MASCHERONI
    z_max = (1.0 - gamma) * _NORMAL.inv_cdf(1.0 - 1.0 / n_trials)
    z_max += gamma * _NORMAL.inv_cdf(1.0 - 1.0 / (n_trials * math.e))
    return max(math.sqrt(sharpe_variance) * z_max, 0.0)


def deflated_sharpe(
    sharpe: float,
    n: float,
    skewness: float,
    kurtosis: float,
    *,
    n_trials: float,
    sharpe_variance: float,
) -> float:
    """Deflated Sharpe ratio (Bailey and López de Prado 2014): `probabilistic_sharpe` against
    SR* = `expected_max_sharpe(n_trials, sharpe_variance)`, every input PER PERIOD.

    Examples
    --------
    The 2014 paper's example: SR 2.5 a year over 1,250 daily returns, skew -3, kurtosis 10,
    100 trials whose annual Sharpe ratios have variance 0.5:

    >>> round(deflated_sharpe(2.5 / 250**0.5, 1250, -3.0, 10.0, n_trials=100,
    ...                       sharpe_variance=0.5 / 250), 4)
    0.9004
    """
    benchmark = expected_max_sharpe(n_trials, sharpe_variance)
    return probabilistic_sharpe(sharpe, benchmark, n, skewness, kurtosis)


def effective_trials(correlation_mean: float, n_trials: float) -> float:
    """Effective number of independent trials: N_eff = rho + (1 - rho) N.

    rho is the mean pairwise correlation of the trials' per-period returns, in [-1, 1]: N
    independent trials at rho = 0, a single one at rho = 1. A common heuristic (a linear
    interpolation used after López de Prado's work on counting independent trials, who
    prefers clustering them), not a result of the DSR paper; IvyBT's default is the plain N,
    which errs towards deflating more.

    Examples
    --------
    >>> effective_trials(0.5, 101)
    51.0
    """
    message = f"-1 <= correlation_mean <= 1 must hold, got {correlation_mean!r}; pass a mean"
    _require(-1.0 <= correlation_mean <= 1.0, message + " pairwise correlation of the returns")
    message = f"n_trials >= 1 must hold, got {n_trials!r}; pass how many trials were run"
    _require(1 <= n_trials < math.inf, message)
    return correlation_mean + (1.0 - correlation_mean) * n_trials


def min_track_record_length(
    sharpe: float, benchmark: float, skewness: float, kurtosis: float, probability: float = 0.95
) -> float:
    """Fewest returns for the observed SR to beat `benchmark` with `probability` (MinTRL,
    Bailey and López de Prado 2012):

    MinTRL = 1 + (1 - skew SR + (kurt - 1) / 4 SR^2) (Phi^-1(probability) / (SR - SR*))^2,

    the n at which `probabilistic_sharpe(sharpe, benchmark, n, ...)` equals `probability`.
    `sharpe` and `benchmark` are PER PERIOD and the result is in those periods (bars),
    possibly fractional; inf when sharpe <= benchmark (no record is long enough), NaN if an
    input is NaN. Kurtosis is raw (normal = 3); 0 < probability < 1.

    Examples
    --------
    >>> round(min_track_record_length(0.1, 0.0, 0.0, 3.0), 1)  # daily, 1.58 a year
    272.9
    """
    _require(0 < probability < 1, f"0 < probability < 1 must hold, got {probability!r}; e.g. 0.95")
    if math.isnan(sharpe) or math.isnan(benchmark) or math.isnan(skewness + kurtosis):
        return math.nan
    factor = _variance_factor(sharpe, skewness, kurtosis)
    if sharpe <= benchmark:
        return math.inf
    return 1.0 + factor * (_NORMAL.inv_cdf(probability) / (sharpe - benchmark)) ** 2


@dataclass(frozen=True)
class DSRResult:
    """DSR of a selected combination and its inputs; Sharpe ratios and V PER PERIOD, lengths in
    returns (bars). dsr: PSR against `expected_max_sharpe`; psr: against 0. n_trials: the N
    used (effective if asked); n_trials_tried: trials with a finite Sharpe (a NaN one, never
    traded, could not be selected). min_track_record_length: MinTRL vs 0 at 95% (inf: SR <= 0)."""

    dsr: float
    psr: float
    sharpe: float
    expected_max_sharpe: float
    n_trials: float
    n_trials_tried: int
    sharpe_variance: float
    skewness: float
    kurtosis: float
    min_track_record_length: float
    n_observations: int
    periods_per_year: float | None = None
    correlation_mean: float | None = None

    def reading(self) -> str:
        """One plain line, e.g. "after 15,247 trials the best Sharpe has a 12% probability of
        beating the best of that many unskilled trials (DSR 0.12)"."""
        trials = f"{self.n_trials_tried:,} trials"
        if self.correlation_mean is not None:
            trials += f" (about {self.n_trials:,.0f} independent)"
        if math.isnan(self.dsr):
            return f"after {trials} the DSR is undefined: the selected returns have no variance"
        chance = "<1%" if self.dsr < 0.005 else ">99%" if self.dsr > 0.995 else f"{self.dsr:.0%}"
        article = "an" if chance.startswith(("8", "11%", "18%")) else "a"  # eighty, eleven
        return (
            f"after {trials} the best Sharpe has {article} {chance} probability of beating the "
            f"best of that many unskilled trials (DSR {self.dsr:.2f})"
        )

    def to_json(self) -> dict[str, float | int | str | None]:
        """A JSON-safe dict for metrics.json: NaN and inf become None, keys carry units
        (`_bars`; `_ann` = x sqrt(periods_per_year), if known), plus the reading."""
        out: dict[str, float | int | str | None] = {}
        for key, value in asdict(self).items():
            key = "min_track_record_length_bars" if key == "min_track_record_length" else key
            out[key] = None if isinstance(value, float) and not math.isfinite(value) else value
        if self.periods_per_year is not None:
            for key in ("sharpe", "expected_max_sharpe"):
                value = getattr(self, key) * math.sqrt(self.periods_per_year)
                out[f"{key}_ann"] = value if math.isfinite(value) else None
        out["reading"] = self.reading()
        return out


def _mean_correlation(correlation: float | npt.ArrayLike) -> float:
    matrix = np.asarray(correlation, dtype=np.float64)
    square = matrix.ndim == 2 and matrix.shape[0] == matrix.shape[1] and matrix.shape[0] > 1
    _require(
        matrix.ndim == 0 or square,
        f"trials_returns_corr must be a number or a square matrix, got shape {matrix.shape}; "
        "pass the trials' returns.corr() or its mean off-diagonal value",
    )
    return float(np.nanmean(matrix[~np.eye(len(matrix), dtype=bool)] if square else matrix))


def deflated_sharpe_of_trials(
    selected_returns: npt.ArrayLike,
    trial_sharpes: npt.ArrayLike,
    *,
    trial_sharpe_unit: Literal["period", "annual"] = "period",
    periods_per_year: float | None = None,
    effective: bool = False,
    trials_returns_corr: float | npt.ArrayLike | None = None,
) -> DSRResult:
    """DSR of the combination a grid or search selected, given the Sharpe of every trial.

    Parameters
    ----------
    selected_returns : float, shape (n_bars,)
        Per-bar simple returns of the selected combination (NaNs dropped).
    trial_sharpes : float, shape (n_trials,)
        Sharpe ratio of every trial tried, the selected one included, in `trial_sharpe_unit`:
        "period" (per bar) or "annual" (IvyBT's `sharpe` metric, divided here by
        sqrt(periods_per_year)). NaNs (no variance) are left out of N and V.
    periods_per_year : float, optional
        Bars per year: required with "annual"; adds the `_ann` figures to `to_json()`.
    effective : bool
        Use N_eff = `effective_trials(rho, N)`; then `trials_returns_corr` (used only then)
        gives rho: a mean pairwise correlation, or a correlation matrix of (a sample of) the
        trials' returns whose mean off-diagonal entry is taken.

    Returns
    -------
    DSRResult
        V is the sample variance (ddof = 1) of the finite per-period trial Sharpe ratios; one
        trial gives V = 0 and an expected maximum of 0, so its DSR is PSR(0).
    """
    unit, per_year = trial_sharpe_unit, periods_per_year
    _require(
        (per_year is None or 0 < per_year < math.inf)
        and (unit == "period" or (unit == "annual" and per_year is not None)),
        f"trial_sharpe_unit 'period', or 'annual' with periods_per_year > 0, must hold, got "
        f"{unit!r} with periods_per_year={per_year!r}; e.g. 'annual' and 252 for daily bars",
    )
    _require(
        effective == (trials_returns_corr is not None),
        f"effective=True needs trials_returns_corr and only it uses it, got effective="
        f"{effective}, trials_returns_corr={'None' if effective else 'given'}; pass both",
    )
    moments = sharpe_moments(selected_returns)
    sharpes = np.asarray(trial_sharpes, dtype=np.float64).ravel()
    sharpes = sharpes[~np.isnan(sharpes)]
    _require(
        sharpes.size > 0 and bool(np.all(np.isfinite(sharpes))),
        f"trial_sharpes must hold finite values, got {sharpes.size} non-NaN of which "
        f"{int(np.sum(np.isinf(sharpes)))} infinite; pass every trial's Sharpe ratio",
    )
    if unit == "annual":
        sharpes = sharpes / math.sqrt(per_year)  # type: ignore[arg-type]
    variance = float(sharpes.var(ddof=1)) if sharpes.size > 1 else 0.0
    n_trials = float(sharpes.size)
    correlation = None
    if trials_returns_corr is not None:
        correlation = _mean_correlation(trials_returns_corr)
        n_trials = effective_trials(correlation, n_trials)
    benchmark = expected_max_sharpe(n_trials, variance)
    sharpe, skewness, kurtosis = moments.sharpe, moments.skewness, moments.kurtosis
    return DSRResult(
        dsr=probabilistic_sharpe(sharpe, benchmark, moments.n, skewness, kurtosis),
        psr=probabilistic_sharpe(sharpe, 0.0, moments.n, skewness, kurtosis),
        sharpe=sharpe,
        expected_max_sharpe=benchmark,
        n_trials=n_trials,
        n_trials_tried=int(sharpes.size),
        sharpe_variance=variance,
        skewness=skewness,
        kurtosis=kurtosis,
        min_track_record_length=min_track_record_length(sharpe, 0.0, skewness, kurtosis),
        n_observations=moments.n,
        periods_per_year=periods_per_year,
        correlation_mean=correlation,
    )
