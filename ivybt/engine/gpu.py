"""Where a grid runs (`--device cpu|gpu|auto`) and a built-in strategy's grid on an NVIDIA GPU.

`choose_device` turns the requested device into the one used, with a line saying which and
why; `GpuGrid` is `ivybt.kernels.grid.grid_builtin_nb` on the GPU (same arguments, same
result, `ivybt.kernels.grid_cuda` says how close): the series' arrays are copied to the
device once, each indicator table once (time-major), and only the metrics come back.
Combinations run in launches sized from the device's free memory.

The GPU needs Numba's CUDA target from NVIDIA's numba-cuda package with its CUDA 12 toolkit
wheels, `pip install 'ivybt[gpu]'` (numba-cuda 0.30 works with the Numba 0.61 that
pandas-ta pins; Numba's own built-in CUDA target is deprecated), and an NVIDIA driver. With
`NUMBA_ENABLE_CUDASIM=1` Numba's CUDA simulator stands in for a GPU (how the tests run the
kernel on machines without one): it is correct and very slow.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from ivybt._typing import Float64Array2D, Float64Array3D, Int64Array2D
from ivybt.config import RunConfig
from ivybt.errors import ConfigError
from ivybt.kernels.grid import SIGNAL_CODES, GridPlan
from ivybt.kernels.metrics import N_METRICS
from ivybt.kernels.simulate import TRADE_DTYPE, Execution
from ivybt.strategies import get_strategy
from ivybt.strategies.base import Strategy

DEVICES = ("cpu", "gpu", "auto")
"""What `--device` accepts."""

INSTALL_HINT = "pip install 'ivybt[gpu]'"
FREE_MEMORY_SHARE = 0.8
"""Share of the device's free memory one launch may fill (the rest: the driver, fragments)."""
SIMULATED_MEMORY = 256 * 2**20
"""Bytes the CUDA simulator is taken to have free (it reports infinite memory)."""


@dataclass(frozen=True)
class DeviceChoice:
    """The device a run uses: `used` is "cpu" or "gpu"; `described` says which and, for a
    request it could not follow (`auto`), why."""

    requested: str
    used: Literal["cpu", "gpu"]
    described: str

    def record(self) -> dict[str, str]:
        """The manifest's entry."""
        return {"requested": self.requested, "used": self.used, "described": self.described}


def simulated() -> bool:
    """Whether Numba's CUDA simulator stands in for a GPU (`NUMBA_ENABLE_CUDASIM=1` when Numba
    was imported)."""
    from numba import config

    return bool(config.ENABLE_CUDASIM)


def gpu_problem() -> str | None:
    """Why this process cannot run the GPU kernels, in a few words, or None when it can."""
    if simulated():
        return None
    try:
        from numba import cuda
    except ImportError as err:  # numba-cuda installed without its CUDA bindings, say
        return f"numba.cuda cannot be imported ({err}); {INSTALL_HINT}"
    if getattr(cuda, "implementation", "Built-in") != "NVIDIA":
        return f"numba-cuda is not installed ({INSTALL_HINT})"
    try:
        available = cuda.is_available()
    except Exception as err:  # any driver failure means no usable GPU
        return f"the CUDA driver failed to start ({type(err).__name__}: {err})"
    if not available:
        return "no NVIDIA GPU or CUDA driver was found (numba.cuda.is_available() is False)"
    return None


def gpu_name() -> str:
    """The GPU the kernels run on, e.g. "GPU 0: NVIDIA H200, 139.8 GiB free of 140.4 GiB"."""
    if simulated():
        return "the CUDA simulator (NUMBA_ENABLE_CUDASIM=1)"
    from numba import cuda

    device = cuda.get_current_device()
    free, total = cuda.current_context().get_memory_info()
    name = device.name.decode() if isinstance(device.name, bytes) else str(device.name)
    return f"GPU {device.id}: {name}, {free / 2**30:.1f} GiB free of {total / 2**30:.1f} GiB"


def choose_device(requested: str, *, unsupported: str | None = None) -> DeviceChoice:
    """The device a grid or walk-forward runs on.

    `requested` is "cpu", "gpu" or "auto". `unsupported` names what in the run the GPU
    kernels do not cover (a plug-in strategy, a universe, a Dask cluster, an Optuna search),
    or is None. "gpu" raises ConfigError, in one line naming what is missing, when the GPU
    cannot run it; "auto" then runs on the CPU and says why.
    """
    if requested not in DEVICES:
        raise ConfigError(f"unknown device {requested!r}: give one of {', '.join(DEVICES)}")
    if requested == "cpu":
        return DeviceChoice(requested, "cpu", "CPU")
    problem = unsupported or gpu_problem()
    if problem is None:
        return DeviceChoice(requested, "gpu", gpu_name())
    if requested == "gpu":
        raise gpu_refusal(problem)
    return DeviceChoice(requested, "cpu", f"CPU ({problem})")


def gpu_refusal(problem: str) -> ConfigError:
    """The one-line error of `--device gpu` when `problem` (`gpu_problem`, `not_on_gpu`)
    keeps the GPU from running a study."""
    return ConfigError(f"--device gpu cannot run: {problem}; use --device cpu or auto")


def not_on_gpu(
    strategy: type[Strategy], *, universe: bool, cluster: bool, search: str = "grid"
) -> str | None:
    """What in a study the GPU kernels do not run (for `choose_device`), or None: they run a
    built-in strategy's grid on one symbol, in this process."""
    if universe:
        return "the GPU runs one symbol, not a universe"
    if strategy.signal_kernel not in SIGNAL_CODES:
        return f"the GPU runs the built-in strategies, and {strategy.name} is a plug-in"
    if cluster:
        return "a Dask cluster's tasks run on its workers' CPUs"
    if search != "grid":
        return f"the GPU runs grids, and this walk-forward searches with {search}"
    return None


def study_device(config: RunConfig, *, cluster: bool = False) -> DeviceChoice:
    """The device the grid or walk-forward `config` describes runs on (`choose_device` with
    what the run holds that the GPU does not cover), decided before any data is loaded."""
    study = config.study
    requested = "cpu" if study is None else study.device
    if requested == "cpu" or study is None:
        return choose_device("cpu")
    search = study.search if study.kind == "walkforward" else "grid"
    unsupported = not_on_gpu(get_strategy(config.strategy.name),
                             universe=config.data.symbols is not None, cluster=cluster,
                             search=search)  # fmt: skip
    return choose_device(requested, unsupported=unsupported)


def free_device_bytes() -> int:
    """Bytes free on the current GPU (`SIMULATED_MEMORY` under the simulator)."""
    if simulated():
        return SIMULATED_MEMORY
    from numba import cuda

    free, _ = cuda.current_context().get_memory_info()
    return int(free)


def launch_bytes() -> int:
    """Device bytes one launch's combinations may take (`FREE_MEMORY_SHARE` of the free
    memory, measured after the series and the indicator table are on the device)."""
    return int(free_device_bytes() * FREE_MEMORY_SHARE)


def device_budget(host_budget: int) -> int:
    """The memory budget a grid plans its indicator chunks in on the GPU: the host's, capped by
    the device's free memory (`ivybt.studies.grid` gives a chunk's table half of it)."""
    return min(host_budget, int(free_device_bytes() * FREE_MEMORY_SHARE))


def combination_device_bytes(n_work: int, n_windows: int, n_slots: int, n_params: int) -> int:
    """Device bytes one combination of a launch takes: its target column (`n_work` int8),
    its metrics, and its slot and parameter rows."""
    return n_work + 8 * (n_windows * N_METRICS + n_slots + n_params)


class GpuGrid:
    """`grid_builtin_nb` on the GPU: call it with the same arguments for the same result.

    Made once per `evaluate_windows` call (one series and plan): the first call copies the
    prices, the plan's arrays and the close tables to the device, and every call copies its
    indicator table (time-major) and its combinations' rows. The combinations run in
    launches of as many as fit `FREE_MEMORY_SHARE` of the free memory left after that.
    """

    def __init__(self) -> None:
        self._resident: tuple[Any, ...] | None = None
        self.launches = 0  # kernel launches so far (the tests check chunking with it)

    def __call__(
        self, prices: Float64Array2D, table: Float64Array2D, slots: Int64Array2D,
        params: Float64Array2D, plan: GridPlan, execution: Execution, periods_per_year: float,
    ) -> Float64Array3D:  # fmt: skip
        from numba import cuda

        from ivybt.kernels.grid_cuda import THREADS_PER_BLOCK, grid_builtin_cuda

        if plan.close_sums.shape[0] == 0:
            raise ValueError("GpuGrid needs the plan's close tables (with_close_tables)")
        if self._resident is None:
            self._resident = tuple(
                cuda.to_device(np.ascontiguousarray(array))
                for array in (prices, plan.windows, plan.signal_of, plan.close_sums,
                              plan.close_sparse, plan.close_levels, _settings(
                                  plan, execution, periods_per_year),
                              np.zeros(0, dtype=np.float64), np.zeros(0, dtype=TRADE_DTYPE))
            )  # fmt: skip
        prices_d, windows_d, signal_of_d, sums_d, sparse_d, levels_d, settings_d, *empty = (
            self._resident
        )
        n_combos = params.shape[0]
        n_windows = plan.windows.shape[0]
        out = np.empty((n_combos, n_windows, N_METRICS), dtype=np.float64)
        if n_combos == 0:
            return out
        table_d = cuda.to_device(np.asfortranarray(table))  # time-major
        n_bars = prices.shape[1]
        n_work = n_bars + (table.shape[1] if plan.signal_of.shape[0] > 0 else 0)
        per_combo = combination_device_bytes(n_work, n_windows, slots.shape[1], params.shape[1])
        size = max(1, min(n_combos, launch_bytes() // per_combo))
        for first in range(0, n_combos, size):
            last = min(first + size, n_combos)
            count = last - first
            slots_d = cuda.to_device(np.ascontiguousarray(slots[first:last]))
            params_d = cuda.to_device(np.ascontiguousarray(params[first:last]))
            work_d = cuda.device_array((n_work, count), dtype=np.int8)
            out_d = cuda.device_array((count, n_windows, N_METRICS), dtype=np.float64)
            blocks = -(-count // THREADS_PER_BLOCK)
            grid_builtin_cuda[blocks, THREADS_PER_BLOCK](
                prices_d, table_d, slots_d, params_d, windows_d, signal_of_d, sums_d,
                sparse_d, levels_d, settings_d, *empty, work_d, out_d,
            )  # fmt: skip
            out[first:last] = out_d.copy_to_host()
            self.launches += 1
            del work_d, out_d, slots_d, params_d
        return out


def _settings(plan: GridPlan, execution: Execution, periods_per_year: float) -> np.ndarray:
    """The scalars of `grid_builtin_cuda`, in `ivybt.kernels.grid_cuda.SETTINGS` order."""
    return np.array(
        [*(float(value) for value in execution), float(periods_per_year), plan.code,
         plan.direction, plan.exit_column, float(plan.close_usable)],
        dtype=np.float64,
    )  # fmt: skip
