"""The one place a kernel may take fastmath flags from (STYLE 2.6).

`nnan` and `ninf` are excluded because NaN marks warm-up and missing bars; no kernel uses
fastmath yet, and a test forbids a literal `fastmath=` anywhere else in `ivybt/kernels/`.
"""

from __future__ import annotations

FASTMATH_FLAGS: frozenset[str] = frozenset({"nsz", "arcp", "contract", "afn", "reassoc"})
