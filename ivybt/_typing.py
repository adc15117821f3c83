"""NumPy array aliases that carry dtype and number of dimensions, for kernels and wrappers.

Only numpy is imported here, so kernels may use these aliases (STYLE 2.1). The ndim is part of the
name because numpy's typing cannot express it; the dtype is checked by mypy.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

type Float64Array1D = npt.NDArray[np.float64]
type Float64Array2D = npt.NDArray[np.float64]
type Float64Array3D = npt.NDArray[np.float64]
type Int64Array1D = npt.NDArray[np.int64]
type Int64Array2D = npt.NDArray[np.int64]
type Int8Array1D = npt.NDArray[np.int8]
type Int8Array2D = npt.NDArray[np.int8]
type BoolArray1D = npt.NDArray[np.bool_]
type RecordArray1D = npt.NDArray[np.void]
type RecordArray2D = npt.NDArray[np.void]

__all__ = [
    "BoolArray1D",
    "Float64Array1D",
    "Float64Array2D",
    "Float64Array3D",
    "Int8Array1D",
    "Int8Array2D",
    "Int64Array1D",
    "Int64Array2D",
    "RecordArray1D",
    "RecordArray2D",
]
