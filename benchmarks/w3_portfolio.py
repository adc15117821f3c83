"""W3 on IvyBT: a portfolio grid in one `evaluate_space` call (issue #14, section 3).

    export NUMBA_CACHE_DIR=/tmp/numba-w3
    .venv/bin/python benchmarks/w3_portfolio.py                # everything (~3 min)
    .venv/bin/python benchmarks/w3_portfolio.py --skip-large   # only the 20-symbol universe
    .venv/bin/python benchmarks/w3_portfolio.py --profile [--symbols 100]  # where time goes

W3 (benchmarks/w3_data.py): 20 symbols x 2,520 daily bars x 1,000 sma_cross pairs, long only,
equal weight, max leverage 1, rebalance on a signal change, one account per pair, commission
0.1%, no slippage (`evaluate_space` on `UniverseBars(panel, PortfolioConfig())`).

For each fill (close: vectorbt's convention; next open: IvyBT's default) it checks a sample
of grid rows against `ivybt.engine.portfolio.simulate_portfolio` bit for bit, warms up
(compiles) untimed, then prints the median of `--repeats` warm runs, bar-symbol-combinations
per second, and the time and peak RSS of a fresh process (its first run loads the Numba
cache; then the same number of warm runs). Then the 100-symbol universe with the default
1 GiB memory budget, in a fresh process (chunks, time, peak RSS). Writes, for
check_parity_w3.py and peers/w3_vectorbt.py, to benchmarks/results/:
w3_ivybt_fee0.parquet and w3_ivybt_fee0.001.parquet (total return and Sharpe per pair, close
fills) and w3_ivybt_sma.npy (IvyBT's SMA of each of the 57 windows for each symbol).
Prints figures only: nothing here asserts a time.

The bit-for-bit check before timing caught, while this benchmark was written, a grid kernel
compiled from older portfolio code (Numba's cache checks only the file defining a kernel);
since c6891b7 IvyBT keeps one cache folder per version of the kernels' sources.
"""

from __future__ import annotations

import argparse
import itertools
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
import w1_data
import w3_data

from ivybt.config import ExecutionConfig, PortfolioConfig
from ivybt.data.panel import panel_from_frames
from ivybt.engine.portfolio import UniverseBars, simulate_portfolio
from ivybt.engine.tables import indicator_table
from ivybt.kernels.metrics import METRIC_NAMES
from ivybt.strategies import BUILTIN
from ivybt.strategies.base import Indicator
from ivybt.studies.grid import DEFAULT_MEMORY_BUDGET, evaluate_space
from ivybt.studies.space import build_space

SEED = 0
N_CHECKED = 5  # grid rows compared with single portfolio backtests before timing
FILLS = ("close", "next_open")
PORTFOLIO = PortfolioConfig()  # equal weight, max leverage 1, rebalance on a signal change


def execution(fill: str, commission: float = w3_data.COMMISSION) -> ExecutionConfig:
    return ExecutionConfig(commission=commission, slippage=0.0, fill=fill, direction="long",
                           size=1.0, initial_cash=w3_data.INITIAL_CASH)  # fmt: skip


def universe(n_symbols: int) -> UniverseBars:
    panel = panel_from_frames(w3_data.frames(n_symbols), "1d")
    if panel.n_bars != w3_data.N_BARS or not np.isfinite(panel.close).all():
        raise SystemExit("the W3 panel must have a bar for every symbol on every date")
    return UniverseBars(panel, PORTFOLIO)


def space():
    built = build_space(BUILTIN["sma_cross"], {"fast": w3_data.FAST_SPEC,
                                               "slow": w3_data.SLOW_SPEC})  # fmt: skip
    fast, slow = w3_data.pairs()
    if not (np.array_equal(built.combos[:, 0], fast) and np.array_equal(built.combos[:, 1], slow)):
        raise SystemExit("the space's pairs differ from w3_data.pairs()")
    return built


def evaluate(bars, grid, ex, **kwargs):
    return evaluate_space(bars, grid, ex, periods_per_year=w3_data.PERIODS_PER_YEAR, **kwargs)


def check_rows(bars: UniverseBars, grid, metrics: np.ndarray, ex: ExecutionConfig) -> list[int]:
    """Sampled grid rows equal `simulate_portfolio` of the same pair, bit for bit."""
    rng = np.random.default_rng(SEED)
    rows = sorted(int(j) for j in rng.choice(len(grid), size=N_CHECKED, replace=False))
    for j in rows:
        single = simulate_portfolio(
            bars.panel,
            grid.strategy,
            grid.combination(j),
            ex,
            bars.portfolio,
            periods_per_year=w3_data.PERIODS_PER_YEAR,
        )
        want = np.array([single.metrics[name] for name in METRIC_NAMES])
        if not np.array_equal(metrics[j], want, equal_nan=True):
            raise SystemExit(f"grid row {j} {grid.combination(j)} != simulate_portfolio")
    return rows


def one_run(n_symbols: int, fill: str, repeats: int) -> None:
    """Child mode: in a fresh process, one first run (loads the Numba cache) and `repeats`
    warm runs with the default memory budget; print JSON with times and peak RSS."""
    bars = universe(n_symbols)
    grid = space()
    ex = execution(fill)
    before = w1_data.peak_rss_mb()
    calls = []
    start = time.perf_counter()
    evaluate(bars, grid, ex, progress=lambda done, total: calls.append(done))
    first = time.perf_counter() - start
    _, warm = w1_data.median_time(lambda: evaluate(bars, grid, ex), repeats)
    print(json.dumps({"first": first, "warm": warm, "calls": len(calls),
                      "rss_before_mb": before, "peak_rss_mb": w1_data.peak_rss_mb()}))  # fmt: skip


def fresh_run(n_symbols: int, fill: str, repeats: int) -> dict:
    command = [sys.executable, __file__, "--one-run", str(n_symbols), "--fill", fill,
               "--repeats", str(repeats)]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def write_results(bars: UniverseBars, grid) -> None:
    """Per-pair total return and Sharpe (close fills) with and without commission, and
    IvyBT's SMA rows of every symbol, for the parity check."""
    fast, slow = w3_data.pairs()
    w3_data.RESULTS_DIR.mkdir(exist_ok=True)
    columns = [METRIC_NAMES.index("total_return"), METRIC_NAMES.index("sharpe")]
    for commission in (0.0, w3_data.COMMISSION):
        metrics = evaluate(bars, grid, execution("close", commission))
        table = pd.DataFrame({"fast": fast, "slow": slow,
                              "total_return": metrics[:, columns[0]],
                              "sharpe": metrics[:, columns[1]]})  # fmt: skip
        table.to_parquet(w3_data.RESULTS_DIR / f"w3_ivybt_fee{commission:g}.parquet")
    windows = np.unique(np.r_[fast, slow])
    wanted = [Indicator("sma", (int(w),)) for w in windows]
    sma = np.empty((bars.panel.n_symbols, len(windows), bars.n_bars))
    for s in range(bars.panel.n_symbols):
        table, rows = indicator_table(bars.panel.columns(s), wanted)
        sma[s] = table[[rows[i] for i in wanted]]
    np.save(w3_data.RESULTS_DIR / "w3_ivybt_sma.npy", sma)
    np.save(w3_data.RESULTS_DIR / "w3_ivybt_sma_windows.npy", windows)


def bench(bars: UniverseBars, grid, fill: str, repeats: int) -> float:
    ex = execution(fill)
    for _ in range(2):  # untimed warm-up: compile (or load the Numba cache), fault pages in
        metrics = evaluate(bars, grid, ex)
    checked = check_rows(bars, grid, metrics, ex)
    median, times = w1_data.median_time(lambda: evaluate(bars, grid, ex), repeats)
    work = bars.n_bars * bars.panel.n_symbols * len(grid)
    print(f"\n== W3 fill at {fill}: {bars.n_bars:,} bars x {bars.panel.n_symbols} symbols x "
          f"{len(grid):,} pairs = {work / 1e6:,.1f} M bar-symbol-combinations")  # fmt: skip
    print(f"grid rows {checked} == simulate_portfolio bit for bit (seed {SEED})")
    print(f"load average before timing: {' '.join(f'{x:.2f}' for x in _load())}")
    print(f"warm runs of evaluate_space (s): {', '.join(f'{t:.3f}' for t in times)}")
    print(f"median {median:.3f} s, {work / median / 1e6:,.1f} M bar-symbol-combinations/s")
    fresh = fresh_run(bars.panel.n_symbols, fill, 3)
    print(f"fresh process: first run {fresh['first']:.3f} s (loads the Numba cache), warm "
          f"{', '.join(f'{t:.3f}' for t in fresh['warm'])} s; peak RSS "
          f"{fresh['peak_rss_mb']:.0f} MiB ({fresh['rss_before_mb']:.0f} MiB after imports "
          "and data)")  # fmt: skip
    return median


def bench_large(fill: str) -> None:
    n = w3_data.N_SYMBOLS_LARGE
    fresh = fresh_run(n, fill, 3)
    work = w3_data.N_BARS * n * len(w3_data.pairs()[0])
    warm = float(np.median(fresh["warm"]))
    print(f"\n== W3 at {n} symbols, fill at {fill}, memory budget "
          f"{DEFAULT_MEMORY_BUDGET / 2**20:,.0f} MiB (default), fresh process: "
          f"{work / 1e6:,.1f} M bar-symbol-combinations")  # fmt: skip
    print(w3_data.describe(n))
    print(f"kernel calls: {fresh['calls']}; first run {fresh['first']:.3f} s, warm "
          f"{', '.join(f'{t:.3f}' for t in fresh['warm'])} s (median {warm:.3f} s, "
          f"{work / warm / 1e6:,.1f} M/s)")  # fmt: skip
    print(f"peak RSS {fresh['peak_rss_mb']:.0f} MiB ({fresh['rss_before_mb']:.0f} MiB after "
          f"imports and data); load average {' '.join(f'{x:.2f}' for x in _load())}")  # fmt: skip


def source_state() -> str:
    """The commit, and a digest of IvyBT's sources when they differ from it (read-only git)."""
    import hashlib

    root = Path(__file__).resolve().parents[1]

    def git(*args: str) -> str:
        done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True)
        return done.stdout.strip()

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = git("status", "--porcelain", "--", "ivybt")
    if not dirty:
        return f"IvyBT sources at commit {commit}"
    digest = hashlib.sha256()
    for path in sorted((root / "ivybt").rglob("*.py")):
        digest.update(path.read_bytes())
    return (
        f"IvyBT sources: commit {commit} + {len(dirty.splitlines())} uncommitted changes "
        f"under ivybt/ (sha256 of ivybt/**/*.py {digest.hexdigest()[:12]})"
    )


def profile(bars: UniverseBars, grid) -> None:
    """Where a W3 run's time goes: the symbols' SMA tables, the sides (signal kernel on each
    symbol, expanded onto the union bars), the account (`portfolio_nb`; also on all-flat
    sides, which trade nothing: the cost of its per-bar loops), on 2 threads and 1; and the
    cost of each of the grid's 8 blocks on one thread (load balance)."""
    import numba
    from numba import njit, prange

    from ivybt.engine.portfolio import portfolio_rules, symbol_tables, universe_arrays
    from ivybt.kernels.grid import block_bounds_nb
    from ivybt.kernels.metrics import N_METRICS
    from ivybt.kernels.portfolio import PORTFOLIO_TRADE_DTYPE, Records, portfolio_nb
    from ivybt.kernels.portfolio_grid import builtin_panel_target_nb, thread_books_nb
    from ivybt.studies.grid import _grid_plan, space_indicators
    from ivybt.studies.space import ParamSpace

    @njit(parallel=True)
    def all_targets(tables, slots, params, plan, n_bars, n_symbols):  # the grid's first half
        out = np.empty((params.shape[0], n_bars, n_symbols), np.int8)
        for block in prange(plan.n_blocks):
            own = np.empty(n_bars, dtype=np.int8)
            start, stop = block_bounds_nb(params.shape[0], plan.n_blocks, block)
            for j in range(start, stop):
                builtin_panel_target_nb(plan.code, tables, slots[j], params[j], plan.direction,
                                        own, out[j])  # fmt: skip
        return out

    @njit(parallel=True)
    def accounts(universe, targets, plan, rules, ppy, no_trades):  # the grid's second half
        n_combos, n_bars, n_symbols = targets.shape
        out = np.empty((n_combos, N_METRICS))
        for block in prange(plan.n_blocks):
            books = thread_books_nb(n_symbols)
            none1, none2 = np.empty(0), np.empty((0, n_symbols))
            start, stop = block_bounds_nb(n_combos, plan.n_blocks, block)
            for j in range(start, stop):
                portfolio_nb(universe, targets[j], rules, 0, n_bars, ppy, books,
                             Records(out[j], none1, none2, none1, no_trades))  # fmt: skip
        return out

    ex = execution("close")
    panel = bars.panel
    universe_, rules = universe_arrays(panel, PORTFOLIO, ex), portfolio_rules(PORTFOLIO, ex)
    distinct, slot_ids = space_indicators(grid)
    plan = _grid_plan(grid, ex, np.array([[0, panel.n_bars]]), None)
    no_trades = np.empty(0, PORTFOLIO_TRADE_DTYPE)
    tables, found = symbol_tables(panel, distinct)
    slots = np.ascontiguousarray(np.asarray(found, dtype=np.int64)[slot_ids])
    targets = all_targets(tables, slots, grid.combos, plan, panel.n_bars, panel.n_symbols)
    metrics = accounts(universe_, targets, plan, rules, w3_data.PERIODS_PER_YEAR, no_trades)
    if not np.array_equal(metrics, evaluate(bars, grid, ex), equal_nan=True):
        raise SystemExit("profile: targets + accounts != evaluate_space")
    flat = np.zeros_like(targets)
    changes = (targets[:, 1:] != targets[:, :-1]).any(axis=2).sum(axis=1)
    changes += (targets[:, 0] != 0).any(axis=1)
    threads = numba.get_num_threads()
    print(f"\n== where the time goes (fill at close, {bars.panel.n_symbols} symbols); load "
          f"{' '.join(f'{x:.2f}' for x in _load())}")  # fmt: skip
    print(f"rebalances per pair: mean {changes.mean():.0f}, min {changes.min()}, max "
          f"{changes.max()} of {panel.n_bars:,} bars")  # fmt: skip
    phases = {
        "evaluate_space": lambda: evaluate(bars, grid, ex),
        f"symbol tables ({len(distinct)} SMA rows x {panel.n_symbols} symbols)":
            lambda: symbol_tables(panel, distinct),
        "sides on the union bars (all pairs)": lambda: all_targets(
            tables, slots, grid.combos, plan, panel.n_bars, panel.n_symbols),
        "accounts (portfolio_nb, all pairs)": lambda: accounts(
            universe_, targets, plan, rules, w3_data.PERIODS_PER_YEAR, no_trades),
        "accounts, every side flat (no trade: the per-bar loops alone)": lambda: accounts(
            universe_, flat, plan, rules, w3_data.PERIODS_PER_YEAR, no_trades),
    }  # fmt: skip
    for n_threads in (threads, 1):
        numba.set_num_threads(n_threads)
        for label, run in phases.items():
            median, _ = w1_data.median_time(run, 5)
            print(f"  {n_threads} thread(s): {label}: {median * 1e3:.1f} ms")
    numba.set_num_threads(1)
    edges = np.linspace(0, len(grid), plan.n_blocks + 1).astype(int)
    costs = []
    for a, b in itertools.pairwise(edges):
        part = ParamSpace(grid.strategy, grid.names, np.ascontiguousarray(grid.combos[a:b]),
                          b - a, ())  # fmt: skip
        costs.append(w1_data.median_time(lambda part=part: evaluate(bars, part, ex), 5)[0])
    numba.set_num_threads(threads)
    half = len(costs) // 2
    print(
        f"  the grid's {len(costs)} blocks of {edges[1]} pairs on 1 thread (ms): "
        f"{', '.join(f'{c * 1e3:.0f}' for c in costs)}; numba's static schedule gives each "
        f"of 2 threads half: {sum(costs[:half]) * 1e3:.0f} and "
        f"{sum(costs[half:]) * 1e3:.0f} ms (balanced: {sum(costs) / 2 * 1e3:.0f})"
    )


def _load() -> tuple[float, float, float]:
    import os

    return os.getloadavg()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--fill", choices=[*FILLS, "both"], default="both")
    parser.add_argument("--skip-large", action="store_true", help="no 100-symbol run")
    parser.add_argument("--only-large", action="store_true", help="only the 100-symbol run")
    parser.add_argument("--profile", action="store_true", help="only where the time goes")
    parser.add_argument("--symbols", type=int, default=w3_data.N_SYMBOLS,
                        help="universe size for --profile (20 or 100)")  # fmt: skip
    parser.add_argument("--one-run", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    fills = FILLS if args.fill == "both" else (args.fill,)
    if args.one_run:
        one_run(args.one_run, fills[0], args.repeats)
        return
    import numba

    import ivybt

    print(w1_data.machine())
    print(f"ivybt {ivybt.__version__}, numba {numba.__version__} "
          f"({numba.get_num_threads()} threads), numpy {np.__version__}, "
          f"pandas {pd.__version__}")  # fmt: skip
    print(source_state())
    print(w3_data.describe(w3_data.N_SYMBOLS))
    print(w3_data.grid_line())
    grid = space()
    if args.profile:
        profile(universe(args.symbols), grid)
        return
    if not args.only_large:
        start = time.perf_counter()
        bars = universe(w3_data.N_SYMBOLS)
        print(f"panel_from_frames: {time.perf_counter() - start:.3f} s (not in the times below)")
        for fill in fills:
            bench(bars, grid, fill, args.repeats)
        write_results(bars, grid)
        print(f"\nwrote w3_ivybt_fee0.parquet, w3_ivybt_fee0.001.parquet, w3_ivybt_sma.npy to "
              f"{w3_data.RESULTS_DIR}")  # fmt: skip
    if not args.skip_large:
        for fill in fills:
            bench_large(fill)


if __name__ == "__main__":
    main()
