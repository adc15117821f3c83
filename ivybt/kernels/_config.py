"""The one place a kernel may take fastmath flags and other compiler options from (STYLE 2.6).

`nnan` and `ninf` are excluded because NaN marks warm-up and missing bars; no kernel uses
fastmath yet, and a test forbids a literal `fastmath=` anywhere else in `ivybt/kernels/`.
"""

from __future__ import annotations

FASTMATH_FLAGS: frozenset[str] = frozenset({"nsz", "arcp", "contract", "afn", "reassoc"})

NO_REFCOUNTS: dict[str, bool] = {"_nrt": False}
"""Numba options of kernels that allocate nothing and are handed every array they touch
(the portfolio account, `ivybt.kernels.portfolio`): no reference counting of those arrays.
Numba otherwise increments and decrements, through a call and an atomic operation each, the
count of every array a function is passed or reads from a tuple, around every rebalance and
trade; W3's accounts spent 17 % of their time there (benchmarks/README.md). `_nrt` is
Numba's own switch of its runtime (`numba.core.options`); a kernel compiled without it cannot
allocate (`np.empty` fails to compile), so a slip shows at once. The arrays stay alive
because their caller holds them."""
