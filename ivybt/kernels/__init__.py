"""Pure Numba kernels: `@njit(cache=True)` functions on NumPy arrays (filled from issue #4).

Kernels import only numpy, numba, math and other kernels: no pandas, no objects, no allocation
inside time loops. Money and time conventions, repeated in each kernel's docstring:

- prices, returns and PnL are float64; windows, indices and brick counts int64; masks bool;
  timestamps int64 nanoseconds (UTC for intraday bars);
- returns are simple fractions per bar (0.01 = 1 %); costs are fractions of traded notional per
  side (0.0005 = 5 bp);
- durations are in bars unless suffixed `_ns`; annualising needs an explicit `periods_per_year`;
- a decision made with bar t's data fills at bar t+1's open unless the fill is "close";
- a ratio with zero variance or zero drawdown is NaN.
"""
