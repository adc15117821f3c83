"""Package-level promises: cheap import, layout, README commands, no run-time reads of the
workplace's shared data folder."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

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
