"""Package-level promises: cheap import, layout, README commands, no run-time reads of the
workplace's shared data folder."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from ivybt._paths import kernels_digest

REPO = Path(__file__).resolve().parents[1]


def test_import_ivybt_is_cheap() -> None:
    code = (
        "import sys, ivybt; heavy = [m for m in ('pandas', 'numba', 'yfinance', 'plotly', "
        "'optuna') if m in sys.modules]; print(heavy)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "[]"


def _compile_a_kernel(env: dict[str, str]) -> str:
    code = (
        "import numpy as np, numba, ivybt; from ivybt.kernels.indicators import sma_1d_nb; "
        "sma_1d_nb(np.arange(10.0), 3); print(numba.config.CACHE_DIR)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def _package_cache_files() -> set[Path]:
    return {p for p in (REPO / "ivybt").rglob("*") if p.suffix in (".nbi", ".nbc")}


def test_numba_cache_goes_to_a_per_user_folder_never_into_the_package(tmp_path: Path) -> None:
    """`pip install .` then `pip install -e .` broke every install: Numba's default cache, a
    __pycache__ beside each kernel, left a folder in site-packages that shadowed the package."""
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env.update(HOME=str(tmp_path / "home"), XDG_CACHE_HOME=str(tmp_path / "xdg"))
    before = _package_cache_files()
    used = _compile_a_kernel(env)
    assert Path(used) == tmp_path / "xdg" / "ivybt" / "numba" / f"kernels-{kernels_digest()}"
    assert any(Path(used).rglob("*.nbi")), "the kernel was not cached in the per-user folder"
    assert _package_cache_files() == before, "Numba wrote its cache inside the package"


def test_numba_cache_dir_from_the_environment_wins(tmp_path: Path) -> None:
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "mine")}
    assert Path(_compile_a_kernel(env)) == tmp_path / "mine" / f"kernels-{kernels_digest()}"
    assert any((tmp_path / "mine").rglob("*.nbi"))


def test_a_changed_kernel_source_gets_a_fresh_cache_folder(tmp_path: Path) -> None:
    """Numba checks only a kernel's own file: a grid kernel calling a changed kernel of another
    file kept its stale compiled code (wrong rows). Each version of the kernels' sources has
    its own folder, and a worker process (which inherits $NUMBA_CACHE_DIR) keeps its parent's."""
    kernels = tmp_path / "ivybt" / "kernels"
    kernels.mkdir(parents=True)
    (tmp_path / "ivybt" / "_paths.py").write_text((REPO / "ivybt" / "_paths.py").read_text())
    (kernels / "a.py").write_text("x = 1\n")
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); import os; "
        "from ivybt._paths import use_numba_cache_dir; print(use_numba_cache_dir()); "
        "print(use_numba_cache_dir())"
    )
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "cache")}

    def folders() -> list[str]:
        done = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True,
                              text=True, timeout=60, env=env)  # fmt: skip
        assert done.returncode == 0, done.stderr
        return done.stdout.split()

    first, again = folders()
    assert first == again and Path(first).parent == tmp_path / "cache"
    (kernels / "a.py").write_text("x = 2\n")
    assert folders()[0] != first


def test_numba_imported_first_still_uses_the_per_user_folder(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env.update(XDG_CACHE_HOME=str(tmp_path / "xdg"))
    code = (
        "import numba, numpy as np, ivybt; from ivybt.kernels.indicators import sma_1d_nb; "
        "sma_1d_nb(np.arange(10.0), 3); print(numba.config.CACHE_DIR)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env
    )
    assert done.returncode == 0, done.stderr
    assert Path(done.stdout.strip()) == (
        tmp_path / "xdg" / "ivybt" / "numba" / f"kernels-{kernels_digest()}"
    )
    assert any((tmp_path / "xdg").rglob("*.nbi"))


def test_readme_starts_with_the_two_commands_ci_runs() -> None:
    readme = (REPO / "README.md").read_text()
    blocks = re.findall(r"```(?:bash|sh)?\n(.*?)```", readme, flags=re.S)
    assert len(blocks) >= 2
    run_command, test_command = blocks[0].strip(), blocks[1].strip()
    assert "--source sample" in run_command or "data show" in run_command
    assert "pip install" in test_command and "[dev]" in test_command
    assert "pytest" in test_command
    ci = (REPO / ".ci" / "run").read_text()
    assert "README.md" in ci  # .ci/run executes the README's test command, verbatim


def test_nothing_reads_shared_at_run_time() -> None:
    for path in [*REPO.glob("ivybt/**/*.py"), *REPO.glob("tests/**/*.py")]:
        text = path.read_text()
        for forbidden in ("../" + "shared", "shared" + "/data"):  # split: this file passes
            assert forbidden not in text, path


def test_only_permissive_sample_files_are_bundled() -> None:
    bundled = {p.name for p in (REPO / "ivybt" / "data" / "sample").glob("*.parquet")}
    assert bundled == {
        "SPY_1d.parquet",
        "SPX_1d.parquet",
        "MSFT_1d.parquet",
        "BTCUSD_1d.parquet",
        "IXIC_1d.parquet",
        "IBM_1d.parquet",
        "AAPL_1d.parquet",
        "GOOG_1d.parquet",
        "EURUSD_1h.parquet",
    }


def test_the_api_gives_each_folder_one_name() -> None:
    """#13 point 28: the API named the results root `results=` in some functions and
    `results_dir=` in others, and the run folder `folder` or `out`. Like the CLI's `--out`
    and `--results-dir`, a run folder is `out` and the root of run folders `results_dir`."""
    import inspect

    import ivybt
    from ivybt.runs.backtest import BacktestResult
    from ivybt.runs.grid import GridResult
    from ivybt.runs.grid_export import export_grid_study
    from ivybt.runs.montecarlo import monte_carlo
    from ivybt.runs.optimize import run_search, write_search
    from ivybt.runs.walkforward import run_walk_forward
    from ivybt.studies.study_storage import storage_url_of

    functions = [ivybt.backtest, ivybt.grid, ivybt.optimize, ivybt.walk_forward, run_search,
                 run_walk_forward, BacktestResult.write, GridResult.write, write_search,
                 export_grid_study, storage_url_of, monte_carlo]  # fmt: skip
    for function in functions:
        names = set(inspect.signature(function).parameters)
        assert not names & {"results", "folder", "results_folder", "out_dir"}, function
    writers = (ivybt.optimize, ivybt.walk_forward, run_search, BacktestResult.write,
               GridResult.write, write_search, export_grid_study, storage_url_of)  # fmt: skip
    for function in writers:
        assert "results_dir" in inspect.signature(function).parameters, function
