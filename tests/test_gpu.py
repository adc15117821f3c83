"""The GPU grid (`--device gpu`, issue #20) against the CPU grid, on a machine without a GPU.

The CUDA kernel (`ivybt.kernels.grid_cuda`) runs under Numba's CUDA simulator
(tests/conftest.py sets `NUMBA_ENABLE_CUDASIM=1` before Numba is imported): every built-in
single-symbol strategy, fills, directions, costs, stops fixed and varied, Renko signal bars,
walk-forward windows and launches cut by the device's memory, compared with the CPU grid.
The simulator runs the kernels' compiled CPU code, so there the two agree bit for bit; with
`IVYBT_TEST_GPU=1` on a machine with a GPU the same tests check the documented 1e-12. A second
test compiles the kernel for a Hopper GPU (PTX, through NVVM from the `ivybt[gpu]` wheels)
without a GPU, so code the GPU target cannot compile fails here too.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import ivybt
from ivybt.cli import cli
from ivybt.config import ExecutionConfig
from ivybt.engine import gpu
from ivybt.errors import ConfigError
from ivybt.kernels.metrics import METRIC_NAMES
from ivybt.strategies import BUILTIN
from ivybt.strategies.cross_sectional import is_cross_sectional
from ivybt.studies.grid import evaluate_space, evaluate_windows
from ivybt.studies.space import build_space, with_exits
from tests.test_grid import SPACES as GRID_SPACES

ON_GPU = os.environ.get("IVYBT_TEST_GPU") == "1"
REPO = Path(__file__).resolve().parents[1]

SPACES = {  # test_grid's, and the two strategies it leaves to other tests
    **GRID_SPACES,
    "supertrend": {"length": "7,10", "multiplier": "2,3"},
    "adx_trend": {"length": "10,14", "threshold": "20,25"},
}
EXECUTIONS = {
    "both-next-open-costs": ExecutionConfig(direction="both", commission=0.001, slippage=0.0005),
    "long-close": ExecutionConfig(direction="long", fill="close"),
    "short-stops": ExecutionConfig(direction="short", sl=0.03, tp=0.06, trail=0.04),
}
WINDOWS = np.array([[150, 1200], [1200, 2000]], dtype=np.int64)  # an IS and an OOS window


def assert_same(got: np.ndarray, want: np.ndarray) -> None:
    """Bit for bit under the simulator (the same compiled code); on a GPU, the trade counts
    equal and every metric within 1e-12 relative (`ivybt.kernels.grid_cuda`)."""
    if not ON_GPU:
        np.testing.assert_array_equal(got, want)
        return
    trades = METRIC_NAMES.index("n_trades")
    np.testing.assert_array_equal(got[..., trades], want[..., trades])
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15, equal_nan=True)


def test_the_suite_runs_the_gpu_kernel_somewhere():
    """Under the simulator unless IVYBT_TEST_GPU=1: these tests never skip for want of a GPU."""
    assert gpu.simulated() != ON_GPU
    assert gpu.gpu_problem() is None, gpu.gpu_problem()


def test_every_single_symbol_builtin_has_a_gpu_space():
    assert sorted(SPACES) == sorted(n for n, s in BUILTIN.items() if not is_cross_sectional(s))


@pytest.mark.parametrize("setting", sorted(EXECUTIONS))
@pytest.mark.parametrize("name", sorted(SPACES))
def test_gpu_grid_equals_the_cpu_grid_for_every_builtin_strategy(spy_columns, name, setting):
    space = build_space(BUILTIN[name], SPACES[name])
    execution = EXECUTIONS[setting]
    want = evaluate_windows(spy_columns, space, execution, WINDOWS, periods_per_year=252.0)
    got = evaluate_windows(spy_columns, space, execution, WINDOWS, periods_per_year=252.0,
                           device="gpu")  # fmt: skip
    assert got.shape == (len(space), 2, len(METRIC_NAMES))
    assert_same(got, want)
    assert (want[:, :, METRIC_NAMES.index("n_trades")] > 0).any()  # the grid does trade


def test_gpu_grid_with_exits_varied_by_the_space(spy_columns):
    space = with_exits(build_space(BUILTIN["sma_cross"], {"fast": "5,10", "slow": "30,50"}),
                       {"sl": "0,0.03", "sl_atr": "0,2", "max_bars": "0,15"},
                       max_combinations=10_000)  # fmt: skip
    execution = ExecutionConfig(direction="both", commission=0.0005)
    want = evaluate_space(spy_columns, space, execution, periods_per_year=252.0, first_bar=300)
    got = evaluate_space(spy_columns, space, execution, periods_per_year=252.0, first_bar=300,
                         device="gpu")  # fmt: skip
    assert_same(got, want)
    assert len(np.unique(want[:, METRIC_NAMES.index("total_return")])) > len(space) // 2


def test_gpu_grid_on_renko_signal_bars():
    """Signals on bricks, trades on the real bars (`signal_of`): each thread's column holds
    both, the bricks' targets after the bars'; brick sizes varied by the grid too."""
    kwargs = {"symbol": "SPY", "source": "sample", "start": "2014-01-01", "bars": "renko",
              "params": {"box": "2,4", "fast": "3,5", "slow": "10,20"}, "evidence": False,
              "direction": "both"}  # fmt: skip
    want = ivybt.grid("ema_cross", **kwargs).table
    got = ivybt.grid("ema_cross", device="gpu", **kwargs).table
    assert list(got.columns) == list(want.columns) and len(want) == 8
    assert_same(got[list(METRIC_NAMES)].to_numpy(), want[list(METRIC_NAMES)].to_numpy())
    assert (want["n_trades"] > 0).all()


def test_launches_are_sized_from_the_free_device_memory(spy_columns, monkeypatch):
    """A grid larger than the device's memory runs in several launches, with the same rows."""
    space = build_space(BUILTIN["sma_cross"], {"fast": "3:7", "slow": "20:35:5"})  # 20
    execution = ExecutionConfig()
    want = evaluate_space(spy_columns, space, execution, periods_per_year=252.0)
    per_combo = gpu.combination_device_bytes(2000, 1, 2, 2)
    monkeypatch.setattr(gpu, "launch_bytes", lambda: 6 * per_combo + 100)
    made: list[gpu.GpuGrid] = []
    real = gpu.GpuGrid

    class Counted(real):
        def __init__(self) -> None:
            super().__init__()
            made.append(self)

    monkeypatch.setattr(gpu, "GpuGrid", Counted)
    got = evaluate_space(spy_columns, space, execution, periods_per_year=252.0, device="gpu")
    assert_same(got, want)
    assert [grid.launches for grid in made] == [4]  # 20 combinations, 6 a launch


def test_auto_picks_the_gpu_when_it_can_and_says_which(monkeypatch):
    choice = gpu.choose_device("auto")
    assert choice.used == "gpu" and ("simulator" in choice.described or ON_GPU)
    missing = "no NVIDIA GPU or CUDA driver was found"
    monkeypatch.setattr(gpu, "gpu_problem", lambda: missing)
    choice = gpu.choose_device("auto")
    assert (choice.used, choice.described) == ("cpu", f"CPU ({missing})")
    with pytest.raises(ConfigError, match=r"cannot run: no NVIDIA GPU .*--device cpu"):
        gpu.choose_device("gpu")
    assert gpu.choose_device("cpu").used == "cpu"


def test_what_the_gpu_does_not_run_falls_back_or_fails_in_one_line(tmp_path):
    runner = CliRunner()
    base = ["--source", "sample", "-p", "fast=5,10", "-p", "slow=30,50", "--no-evidence"]
    universe = runner.invoke(cli, ["grid", "sma_cross", "--symbols", "SPY,MSFT", *base,
                                   "--device", "gpu", "--out", str(tmp_path / "u")])  # fmt: skip
    assert universe.exit_code == 2, universe.output
    assert "--device gpu cannot run: the GPU runs one symbol, not a universe" in universe.stderr
    assert "Traceback" not in universe.output and not (tmp_path / "u").exists()
    auto = runner.invoke(cli, ["grid", "sma_cross", "--symbols", "SPY,MSFT", *base,
                               "--device", "auto", "--out", str(tmp_path / "a")])  # fmt: skip
    assert auto.exit_code == 0, auto.output
    assert "device: CPU (the GPU runs one symbol, not a universe)" in auto.stderr
    manifest = json.loads((tmp_path / "a" / "manifest.json").read_text())
    assert manifest["device"]["used"] == "cpu" and manifest["device"]["requested"] == "auto"


def test_cli_grid_on_the_gpu_writes_the_cpu_table(tmp_path):
    runner = CliRunner()
    base = ["grid", "rsi_reversion", "-s", "SPY", "--source", "sample", "--start", "2016-01-01",
            "-p", "window=7,14", "-p", "lower=25,35", "-p", "sl=0,0.05", "--commission", "0.001",
            "--no-evidence"]  # fmt: skip
    tables = {}
    for device in ("cpu", "gpu", "auto"):
        result = runner.invoke(cli, [*base, "--device", device, "--out", str(tmp_path / device)])
        assert result.exit_code == 0, result.output
        tables[device] = pd.read_parquet(tmp_path / device / "grid.parquet")
        if device != "cpu":
            assert "device: " in result.stderr
            manifest = json.loads((tmp_path / device / "manifest.json").read_text())
            assert manifest["device"]["used"] == "gpu"
            assert manifest["config"]["study"]["device"] == device
    assert list(tables["gpu"].columns) == list(tables["cpu"].columns)
    for device in ("gpu", "auto"):
        assert_same(tables[device][list(METRIC_NAMES)].to_numpy(),
                    tables["cpu"][list(METRIC_NAMES)].to_numpy())  # fmt: skip
    best = json.loads((tmp_path / "gpu" / "metrics.json").read_text())["best"]
    assert best == json.loads((tmp_path / "cpu" / "metrics.json").read_text())["best"]


def test_walk_forward_on_the_gpu_chooses_what_the_cpu_chooses(tmp_path):
    kwargs = {"symbol": "SPY", "source": "sample", "start": "2012-01-01",
              "params": {"fast": "5:20:5", "slow": "30:60:10"}, "in_sample": "2y",
              "out_of_sample": "1y", "evidence": False, "direction": "both"}  # fmt: skip
    cpu = ivybt.walk_forward("sma_cross", out=tmp_path / "cpu", **kwargs)
    on_gpu = ivybt.walk_forward("sma_cross", out=tmp_path / "gpu", device="gpu", **kwargs)
    assert len(cpu.folds) >= 3 and cpu.folds["oos_n_trades"].gt(0).all()
    pd.testing.assert_frame_equal(on_gpu.folds, cpu.folds, check_exact=not ON_GPU, rtol=1e-12)
    pd.testing.assert_frame_equal(on_gpu.surface, cpu.surface, check_exact=not ON_GPU,
                                  rtol=1e-12)  # fmt: skip
    manifest = json.loads((tmp_path / "gpu" / "manifest.json").read_text())
    assert manifest["device"]["used"] == "gpu"
    command = ["walkforward", "sma_cross", "-s", "SPY", "--source", "sample", "--start",
               "2012-01-01", "-p", "fast=5:20:5", "-p", "slow=30:60:10", "--is", "2y", "--oos",
               "1y", "--no-evidence", "--direction", "both", "--device", "gpu", "--out",
               str(tmp_path / "cli")]  # fmt: skip
    done = CliRunner().invoke(cli, command)
    assert done.exit_code == 0, done.output
    assert "device: the CUDA simulator" in done.stderr or ON_GPU
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "cli" / "folds.parquet"),
                                  pd.read_parquet(tmp_path / "gpu" / "folds.parquet"))  # fmt: skip


def test_what_the_gpu_runs():
    plugin = type("Plugin", (), {"name": "my_plugin", "signal_kernel": print})
    assert gpu.not_on_gpu(BUILTIN["sma_cross"], universe=False, cluster=False) is None
    assert "and my_plugin is a plug-in" in gpu.not_on_gpu(plugin, universe=False, cluster=False)
    assert "Dask" in gpu.not_on_gpu(BUILTIN["sma_cross"], universe=False, cluster=True)
    assert "searches with optuna" in gpu.not_on_gpu(BUILTIN["sma_cross"], universe=False,
                                             cluster=False, search="optuna")  # fmt: skip


_NO_GPU_PROBE = """
from ivybt.engine import gpu
print(gpu.gpu_problem())
print(gpu.choose_device("auto").described)
"""


def test_without_a_gpu_device_gpu_fails_in_one_line_and_auto_says_cpu(tmp_path):
    """No simulator, no GPU (CI): the real checks, in a fresh process."""
    env = {key: value for key, value in os.environ.items() if key != "NUMBA_ENABLE_CUDASIM"}
    probe = subprocess.run([sys.executable, "-c", _NO_GPU_PROBE], env=env, capture_output=True,
                           text=True, check=True, cwd=REPO)  # fmt: skip
    if probe.stdout.startswith("None"):
        pytest.skip("this machine has a usable GPU")  # never in CI, which has none
    problem = probe.stdout.splitlines()[0]
    assert "no NVIDIA GPU or CUDA driver was found" in problem, probe.stdout
    assert probe.stdout.splitlines()[1] == f"CPU ({problem})"
    done = subprocess.run(
        [sys.executable, "-m", "ivybt", "grid", "sma_cross", "-s", "SPY", "--source", "sample",
         "-p", "fast=5,10", "-p", "slow=30", "--device", "gpu", "--out", str(tmp_path / "g")],
        env=env, capture_output=True, text=True, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert lines[-1] == f"Error: --device gpu cannot run: {problem}; use --device cpu or auto"
    assert "Traceback" not in done.stderr and not (tmp_path / "g").exists()


_PTX_PROBE = """
import types
import numba.cuda.dispatcher as dispatcher
from numba import cuda, from_dtype
from numba import types as nt
from ivybt.kernels import grid_cuda
from ivybt.kernels.simulate import TRADE_DTYPE

# no GPU here: compile for a Hopper (sm_90) as if one were current (device functions ask)
dispatcher.get_current_device = lambda: types.SimpleNamespace(compute_capability=(9, 0))
f8, i8, i1 = nt.float64, nt.int64, nt.int8
signature = (f8[:, ::1], f8[::1, :], i8[:, ::1], f8[:, ::1], i8[:, ::1], i8[::1], f8[:, ::1],
             f8[:, :, ::1], i1[::1], f8[::1], f8[::1], nt.Array(from_dtype(TRADE_DTYPE), 1, "C"),
             i1[:, ::1], f8[:, :, ::1])
ptx, _ = cuda.compile_ptx(grid_cuda._grid_thread, signature, cc=(9, 0))
print(len(ptx), ptx.count(".entry"))
"""


@pytest.mark.slow
def test_the_kernel_compiles_for_a_gpu_without_one():
    """NVVM (from the ivybt[gpu] wheels) compiles the CUDA kernel, every signal kernel and
    account it calls included, to PTX for sm_90: what the simulator cannot check."""
    env = {key: value for key, value in os.environ.items() if key != "NUMBA_ENABLE_CUDASIM"}
    done = subprocess.run([sys.executable, "-c", _PTX_PROBE], env=env, capture_output=True,
                          text=True, cwd=REPO)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    size, entries = map(int, done.stdout.split())
    assert size > 10_000 and entries == 1
