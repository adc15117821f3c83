"""Scale-out on Dask (#18): grid chunks, walk-forward folds and batch jobs run as tasks on a
dask.distributed cluster and give the local results bit for bit, also when a worker is
killed mid-run; a bad scheduler address or --cluster value is one line, exit status 2.

One LocalCluster of two worker processes (127.0.0.1 only) serves the module; the tests that
start their own (`--cluster local:2`) say so."""

from __future__ import annotations

import itertools
import json
import os
import signal
import sys
import time

import pandas as pd
import pytest
from click.testing import CliRunner

import ivybt
from ivybt.cli import cli
from ivybt.data.sample import load_sample
from ivybt.errors import ConfigError, StudyInterrupted
from ivybt.runs.batch_log import TIMING_COLUMNS
from ivybt.studies import cluster as cluster_module
from ivybt.studies.cluster import cluster_spec, grid_ranges, numba_threads, run_tasks

if os.environ.get("CI"):  # CI installs the dev extras: a missing dask fails, never skips
    import distributed
else:
    distributed = pytest.importorskip("distributed")

GRID = {"symbol": "SPY", "source": "sample", "start": "2012-01-01",
        "params": {"fast": "5:40", "slow": "30:120:10"}, "memory_budget_mb": 16}  # fmt: skip
WF = {"params": {"fast": "5:30:5", "slow": "20:120:20"}, "in_sample": 500, "out_of_sample": 250}


@pytest.fixture(scope="module")
def scheduler():
    """The address of a 2-worker LocalCluster shared by the module."""
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
        dashboard_address=None, worker_dashboard_address=None,
        scheduler_kwargs=cluster_module.QUIET_SCHEDULER,
    ) as local:  # fmt: skip
        yield local.scheduler_address


@pytest.fixture(scope="module")
def spy():
    frame, _ = load_sample("SPY", "1d")
    return frame.iloc[-2520:]


# -- without workers ------------------------------------------------------------------------


def test_task_ranges_keep_the_grid_s_chunks_and_order():
    ranges = grid_ranges(100, [(0, 30), (30, 100)], 10)
    assert ranges[0][0] == 0 and ranges[-1][1] == 100
    assert all(a[1] == b[0] for a, b in itertools.pairwise(ranges))
    assert (30 in {a for a, _ in ranges}) and len(ranges) == 10
    assert grid_ranges(0, [], 4) == []
    assert grid_ranges(3, [(0, 3)], 8) == [(0, 1), (1, 2), (2, 3)]


def test_numba_threads_share_the_cores():
    assert numba_threads(2, cores=2) == 1
    assert numba_threads(4, cores=16) == 4
    assert numba_threads(8, cores=2) == 1


@pytest.mark.parametrize(
    ("scheduler", "cluster", "message"),
    [
        ("tcp://a:1", "local:2", "not both"),
        (None, "local:0", "local:N with N >= 1"),
        (None, "remote", "local:N with N >= 1"),
        (" ", None, "needs an address"),
    ],
)
def test_bad_cluster_options_are_refused(scheduler, cluster, message):
    with pytest.raises(ConfigError, match=message):
        cluster_spec(scheduler, cluster)


def test_without_dask_the_error_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)
    with pytest.raises(ConfigError, match=r"pip install 'ivybt\[cluster\]'"):
        ivybt.grid("sma_cross", cluster="local:2", **GRID)


def test_an_unreachable_scheduler_is_one_line_and_exit_2(monkeypatch, tmp_path):
    monkeypatch.setattr(cluster_module, "CONNECT_TIMEOUT_S", 0.5)
    result = CliRunner().invoke(cli, [
        "grid", "sma_cross", "-s", "SPY", "--source", "sample", "-p", "fast=5:10",
        "--scheduler", "tcp://127.0.0.1:1", "--out", str(tmp_path / "g"),
    ])  # fmt: skip
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "cannot reach the Dask scheduler" in lines[0], result.output
    assert not (tmp_path / "g").exists()


def test_a_bad_cluster_value_is_exit_2(tmp_path):
    result = CliRunner().invoke(cli, [
        "walkforward", "sma_cross", "-s", "SPY", "--source", "sample", "--is", "500",
        "--oos", "250", "--cluster", "local:x", "--out", str(tmp_path / "w"),
    ])  # fmt: skip
    assert result.exit_code == 2 and "--cluster must be local:N" in result.output


# -- on a cluster -------------------------------------------------------------------------------


def _slow_square(shared, item, *, pause):
    time.sleep(pause)
    return shared * item * item


@pytest.mark.slow
def test_tasks_merge_in_order_and_a_killed_worker_s_tasks_rerun(scheduler):
    with distributed.Client(scheduler) as client:
        pids = client.run(os.getpid)
        killed = []

        def kill_one(i, result):
            if not killed:  # a worker dies while the other tasks run or wait
                killed.append(next(iter(pids.values())))
                os.kill(killed[0], signal.SIGKILL)

        counts = []
        got = run_tasks(client, _slow_square, list(range(24)), shared=3, what="test",
                        on_result=kill_one, tasks=lambda *c: counts.append(c),
                        pause=0.2)  # fmt: skip
    assert got == [3 * i * i for i in range(24)]
    assert killed and counts[-1][0] == 24 and counts[-1][3] == 24


@pytest.mark.slow
def test_tasks_whose_data_died_with_its_only_worker_are_scattered_again():
    """One worker holds the scattered data; it dies after the first result: Dask cancels the
    tasks needing the data, and run_tasks scatters it to the restarted worker and reruns
    the unfinished ones."""
    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=1, processes=True, host="127.0.0.1",
        dashboard_address=None, worker_dashboard_address=None,
        scheduler_kwargs=cluster_module.QUIET_SCHEDULER,
    ) as local, distributed.Client(local) as client:  # fmt: skip
        pid = next(iter(client.run(os.getpid).values()))
        killed = []

        def kill(i, result):
            if not killed:
                killed.append(i)
                os.kill(pid, signal.SIGKILL)

        got = run_tasks(client, _slow_square, list(range(8)), shared=3, what="test",
                        on_result=kill, pause=0.2)  # fmt: skip
    assert got == [3 * i * i for i in range(8)] and killed


@pytest.mark.slow
def test_ctrl_c_cancels_the_run_s_tasks(scheduler):
    with distributed.Client(scheduler) as client:

        def interrupt(i, result):
            raise KeyboardInterrupt

        with pytest.raises(StudyInterrupted, match="1 of 12 test tasks"):
            run_tasks(client, _slow_square, list(range(12)), shared=2, what="test",
                      on_result=interrupt, pause=0.5)  # fmt: skip
        deadline = time.monotonic() + 10
        while client.run_on_scheduler(_n_tasks) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert client.run_on_scheduler(_n_tasks) == 0  # nothing left queued or running


def _n_tasks(dask_scheduler):
    return sum(1 for key in dask_scheduler.tasks if str(key).startswith("ivybt-test-"))


@pytest.mark.slow
def test_a_grid_on_dask_equals_the_local_grid_bit_for_bit(scheduler, tmp_path):
    local = ivybt.grid("sma_cross", out=tmp_path / "local", **GRID)
    remote = ivybt.grid("sma_cross", out=tmp_path / "dask", scheduler=scheduler, **GRID)
    _same_grid_folder(tmp_path / "local", tmp_path / "dask")
    assert local.headline() == remote.headline()


@pytest.mark.slow
def test_budget_chunks_that_tile_the_space_merge_back_in_enumeration_order(scheduler, spy):
    """Chunks of fast x slow tiles (not enumeration order) spread over tasks: the merged
    table is the local one, bit for bit."""
    import numpy as np

    from ivybt.config import ExecutionConfig
    from ivybt.engine.tables import bar_columns
    from ivybt.strategies import BUILTIN
    from ivybt.studies import grid as grid_module
    from ivybt.studies.cluster import evaluate_space_tasks
    from ivybt.studies.space import build_space

    columns = bar_columns(spy)
    n_bars = len(columns["close"])
    space = build_space(BUILTIN["sma_cross"], {"fast": "2:40", "slow": "5:90:3"})
    buffers = grid_module.working_bytes(n_bars)
    budget = 2 * (buffers + 12 * 8 * n_bars)  # 12 rows
    order, breaks = grid_module.chunk_breaks(space, columns, n_bars, budget)
    assert order is not None and len(breaks) > 4
    execution = ExecutionConfig(fill="close")
    local = grid_module.evaluate_space(columns, space, execution, periods_per_year=252.0)
    with distributed.Client(scheduler) as client:
        remote = evaluate_space_tasks(
            client, columns, space, execution, periods_per_year=252.0, first_bar=0,
            memory_budget=budget, reserved_bytes=0, signal_columns=None, signal_of=None,
        )  # fmt: skip
    np.testing.assert_array_equal(local, remote)


@pytest.mark.slow
def test_a_grid_with_a_worker_killed_mid_run_is_still_identical(scheduler, monkeypatch,
                                                                  tmp_path):  # fmt: skip
    monkeypatch.setattr(cluster_module, "TASKS_PER_WORKER", 40)  # many tasks: some in flight
    with distributed.Client(scheduler) as client:
        client.wait_for_workers(2, timeout=60)  # an earlier test's killed worker is back
        pids = list(client.run(os.getpid).values())
    counts = []

    def tasks(done, running, failed, total):
        counts.append((done, running, failed, total))
        if done == 1:
            os.kill(pids[0], signal.SIGKILL)

    ivybt.grid("sma_cross", out=tmp_path / "local", **GRID)
    from ivybt.runs.grid import run_grid  # the API's own path, with the task counts

    config = ivybt.grid("sma_cross", **GRID).config
    result = run_grid(config, scheduler=scheduler, tasks=tasks)
    result.write(tmp_path / "dask")
    _same_grid_folder(tmp_path / "local", tmp_path / "dask")
    assert counts[-1][0] == counts[-1][3] >= 40


@pytest.mark.slow
def test_walk_forward_folds_on_dask_equal_the_local_run(scheduler, spy, tmp_path):
    ivybt.walk_forward("sma_cross", data=spy, out=tmp_path / "local", **WF)
    ivybt.walk_forward("sma_cross", data=spy, out=tmp_path / "dask", scheduler=scheduler, **WF)
    for name in ("folds.parquet", "oos_equity.parquet", "surface.parquet"):
        pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "local" / name),
                                      pd.read_parquet(tmp_path / "dask" / name),
                                      check_exact=True)  # fmt: skip
    assert _json(tmp_path / "local" / "metrics.json") == _json(tmp_path / "dask" / "metrics.json")


@pytest.mark.slow
def test_walk_forward_folds_with_a_worker_killed_mid_run_are_still_identical(scheduler, spy,
                                                                           tmp_path):  # fmt: skip
    """A worker dies after the first fold comes back: its folds rerun on the other (or on
    the nanny's new worker) and every file equals the local run's."""
    from ivybt.runs.walkforward import run_walk_forward

    with distributed.Client(scheduler) as client:
        pids = list(client.run(os.getpid).values())
    counts, killed = [], []

    def tasks(done, running, failed, total):
        counts.append((done, running, failed, total))
        if done >= 1 and not killed:
            killed.append(pids[0])
            os.kill(pids[0], signal.SIGKILL)

    local = ivybt.walk_forward("sma_cross", data=spy, out=tmp_path / "local", **WF)
    config = local.config.model_copy(
        update={"output": local.config.output.model_copy(update={"out": str(tmp_path / "dask")})}
    )
    run_walk_forward(config, data=spy, scheduler=scheduler, tasks=tasks)
    for name in ("folds.parquet", "oos_equity.parquet", "surface.parquet"):
        pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "local" / name),
                                      pd.read_parquet(tmp_path / "dask" / name),
                                      check_exact=True)  # fmt: skip
    assert _json(tmp_path / "local" / "metrics.json") == _json(tmp_path / "dask" / "metrics.json")
    assert killed and counts[-1][0] == counts[-1][3]


def test_an_optuna_walk_forward_refuses_dask_before_any_work(spy, tmp_path):
    with pytest.raises(ConfigError, match="ivybt worker"):
        ivybt.walk_forward("sma_cross", data=spy, out=tmp_path / "w", search="optuna",
                           trials=4, cluster="local:2", **WF)  # fmt: skip


BATCH = {
    "name": "dask",
    "defaults": {"data": {"source": "sample", "start": "2014-01-01", "end": "2017-01-01"},
                 "study": {"min_trades": 1}},
    "jobs": [
        {"command": "grid", "strategy": {"space": {"fast": "5:15:5", "slow": "30:50:20"}},
         "matrix": {"strategy": ["sma_cross", "ema_cross"], "symbol": ["SPY", "MSFT"]}},
        {"command": "backtest", "data": {"symbol": "SPY"},
         "strategy": {"name": "sma_cross", "params": {"fast": 10, "slow": 40}}},
        {"command": "walkforward", "data": {"symbol": "SPY"},
         "strategy": {"name": "sma_cross", "space": {"fast": "5:15:5", "slow": "30:50:20"}},
         "study": {"windows": {"in_sample": "1y", "out_of_sample": "6M"}}},
    ],
}  # fmt: skip


@pytest.mark.slow
def test_a_batch_on_a_local_cluster_equals_the_local_batch(tmp_path):
    """Starts its own LocalCluster (--cluster local:2), as the command line does."""
    local = ivybt.batch(BATCH, jobs=2, out=tmp_path / "local")
    remote = ivybt.batch(BATCH, cluster="local:2", out=tmp_path / "dask")
    assert remote.failed == [] and len(remote.ran) == 6
    columns = [c for c in local.summary.columns if c not in TIMING_COLUMNS]
    pd.testing.assert_frame_equal(local.summary[columns], remote.summary[columns])
    with pytest.raises(ConfigError, match="drop --jobs"):
        ivybt.batch(BATCH, jobs=2, cluster="local:2", out=tmp_path / "both")


@pytest.mark.slow
def test_the_grid_command_starts_and_stops_its_own_local_cluster(tmp_path):
    args = ["grid", "sma_cross", "-s", "SPY", "--source", "sample", "-p", "fast=5:20",
            "-p", "slow=30:60:10", "--no-evidence"]  # fmt: skip
    runner = CliRunner()
    here = runner.invoke(cli, [*args, "--out", str(tmp_path / "local")])
    there = runner.invoke(cli, [*args, "--out", str(tmp_path / "dask"), "--cluster", "local:2"])
    assert here.exit_code == 0 and there.exit_code == 0, there.output
    assert "cluster tasks" in there.output and "0 failed" in there.output
    _same_grid_folder(tmp_path / "local", tmp_path / "dask")


def _same_grid_folder(a, b):
    pd.testing.assert_frame_equal(
        pd.read_parquet(a / "grid.parquet"), pd.read_parquet(b / "grid.parquet"), check_exact=True
    )
    assert _json(a / "metrics.json") == _json(b / "metrics.json")


def _json(path):
    return json.loads(path.read_text(encoding="utf-8"))
