#!/usr/bin/env bash
# Create benchmarks/.venv-peers: a virtualenv of its own for the peer libraries (vectorbt,
# backtesting.py), which pin numba/numpy/pandas differently from IvyBT. pyarrow lets the
# peer scripts write parquet. Usage: bash benchmarks/peers/setup.sh
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
venv="$here/.venv-peers"
python3.12 -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet "vectorbt==1.2.0" "backtesting" pyarrow
"$venv/bin/python" -m pip list 2>/dev/null | grep -iE '^(vectorbt|backtesting|numba|numpy|pandas|bokeh) '
