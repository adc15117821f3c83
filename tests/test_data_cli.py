"""`ivybt data import|show|fetch` with bad input, as a new user would type it (issue #13).

Each file is written by the test from real bundled bars (EURUSD hourly, SPY daily), with the
one defect under test: mixed UTC offsets, dates outside the nanosecond timeline, absurd prices,
symbols that are not tickers, a misspelled --tz. Every refusal is one line, with exit status 2
for what the user typed and 1 for a bad file.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner, Result

import ivybt
from ivybt.cli import cli
from ivybt.data.store import read_meta
from tests.fakes import FakeYahoo

HEADER = "Datetime,Open,High,Low,Close,Volume"


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, ["--cache-dir", "cache", *args])


def one_line_error(result: Result, status: int) -> str:
    assert result.exit_code == status, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith("Error: ") and "internal error" not in lines[0]
    return lines[0]


def cached_files() -> list[str]:
    folder = Path("cache")
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def sample(symbol: str, interval: str, start: str, end: str) -> pd.DataFrame:
    frame = ivybt.load(symbol, interval, start, end, source="sample", adjusted=False)
    frame.attrs = {}
    return frame


def csv(name: str, frame: pd.DataFrame, stamps: list[str]) -> Path:
    lines = [
        f"{stamp},{b.open},{b.high},{b.low},{b.close},{b.volume}"
        for stamp, (_, b) in zip(stamps, frame.iterrows(), strict=True)
    ]
    path = Path(name)
    path.write_text("\n".join([HEADER, *lines]) + "\n")
    return path


@pytest.fixture(scope="module")
def eurusd() -> pd.DataFrame:
    """Real EURUSD hourly bars, Wednesday 2018-01-03 00:00 to 23:00 UTC (24 bars)."""
    return sample("EURUSD", "1h", "2018-01-03", "2018-01-04")


@pytest.fixture(scope="module")
def spy() -> pd.DataFrame:
    """Real SPY daily bars of January 2019 (21 sessions)."""
    return sample("SPY", "1d", "2019-01-01", "2019-02-01")


def mixed_csv(eurusd: pd.DataFrame) -> Path:
    """The first 12 bars with their Tokyo offset, the last 12 in Tokyo wall time with no
    offset: a vendor export that lost its offsets half-way. Reading those as UTC, as IvyBT
    did, left a 10 h hole and every later bar 9 h late."""
    local = eurusd.index.tz_convert("Asia/Tokyo")
    stamps = [t.isoformat() for t in local[:12]] + [f"{t:%Y-%m-%d %H:%M:%S}" for t in local[12:]]
    return csv("mixed.csv", eurusd, stamps)


# -- 5: offsets on some rows only --------------------------------------------------------


def test_mixed_offsets_are_refused_with_the_first_row_of_each_kind(eurusd: pd.DataFrame) -> None:
    path = mixed_csv(eurusd)
    line = one_line_error(run("data", "import", str(path), "-s", "EURUSD", "-i", "1h"), 1)
    assert line == (
        "Error: mixed.csv, Datetime: 12 rows carry a UTC offset (first "
        "'2018-01-03T09:00:00+09:00', row 2 of the file) and 12 do not (first "
        "'2018-01-03 21:00:00', row 14); a file must use one kind: fix the file, or pass "
        "--tz ZONE to read the rows without an offset in ZONE"
    )
    assert cached_files() == []


def test_mixed_offsets_with_tz_read_the_naive_rows_in_it(eurusd: pd.DataFrame) -> None:
    path = mixed_csv(eurusd)
    result = run("data", "import", str(path), "-s", "EURUSD", "-i", "1h", "--tz", "Asia/Tokyo")
    assert result.exit_code == 0, result.output
    assert (
        "dates ISO 8601 (12 rows with a UTC offset, 12 without); times without an offset read "
        "in Asia/Tokyo, stored in UTC" in result.output
    )
    loaded = ivybt.load("EURUSD", "1h", source="cache", cache_dir="cache")
    pd.testing.assert_frame_equal(loaded, eurusd, check_exact=False, rtol=0, atol=1e-12)


# -- 28: --tz checked, and the import summary ----------------------------------------------


@pytest.mark.parametrize(
    ("zone", "hint"),
    [("Bogus/Zone", ""), ("america/new_york", "did you mean 'America/New_York'? ")],
)
def test_invalid_tz_is_refused_even_when_the_file_carries_offsets(
    eurusd: pd.DataFrame, zone: str, hint: str
) -> None:
    path = csv("offsets.csv", eurusd, [t.isoformat() for t in eurusd.index])
    line = one_line_error(
        run("data", "import", str(path), "-s", "EURUSD", "-i", "1h", "--tz", zone), 2
    )
    assert line == (
        "Error: --tz must be a time zone such as UTC, Europe/London or America/New_York, got "
        f"{zone!r}; {hint}see the IANA tz database names"
    )
    assert cached_files() == []


def test_tz_on_daily_bars_is_refused(spy: pd.DataFrame) -> None:
    path = csv("spy.csv", spy, [f"{t:%Y-%m-%d}" for t in spy.index])
    line = one_line_error(
        run("data", "import", str(path), "-s", "SPY", "-i", "1d", "--tz", "America/New_York"), 2
    )
    assert line == (
        "Error: --tz applies to intraday bars only; 1d bars keep the session dates written in "
        "the file, so --tz America/New_York would change nothing (drop --tz)"
    )


def test_import_summary_says_what_was_imported(spy: pd.DataFrame) -> None:
    path = csv("spy.csv", spy, [f"{t:%Y-%m-%d}" for t in spy.index])
    first = run("data", "import", str(path), "-s", "SPY", "-i", "1d")
    assert first.exit_code == 0, first.output
    assert first.output.splitlines()[-1] == (
        "SPY 1d: imported 21 bars (21 new); cache 2019-01-02..2019-01-31, 21 bars"
    )
    again = run("data", "import", str(path), "-s", "SPY", "-i", "1d")
    assert again.output.splitlines()[-1] == (
        "SPY 1d: imported 21 bars (0 new, 21 replaced); cache 2019-01-02..2019-01-31, 21 bars"
    )
    assert "nothing fetched" not in first.output + again.output


# -- 18: dates outside 1677-2262 -----------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "date"),
    [
        ("%Y-%m-%d", "1600-01-17"),
        ("%Y-%m-%d", "2300-01-17"),
        ("%m/%d/%Y", "01/17/2300"),
        ("epoch", "9999999999"),  # epoch seconds of 2286-11-20
    ],
)
def test_dates_outside_the_timeline_name_the_row(spy: pd.DataFrame, fmt: str, date: str) -> None:
    stamps = [str(int(t.timestamp())) if fmt == "epoch" else f"{t:{fmt}}" for t in spy.index]
    stamps[10] = date
    path = csv("old.csv", spy, stamps)
    line = one_line_error(run("data", "import", str(path), "-s", "SPY", "-i", "1d"), 1)
    assert line == (
        f"Error: old.csv, Datetime: {date!r} (row 12 of the file) lies outside the "
        "1677-09-22 to 2262-04-11 timeline of nanosecond timestamps; fix or drop that row (is "
        "the century right?)"
    )


@pytest.mark.parametrize("option", ["--start", "--end"])
def test_range_bounds_outside_the_timeline_are_input_errors(option: str) -> None:
    value = "1500-01-01" if option == "--start" else "2300-01-01"
    line = one_line_error(run("data", "show", "SPY", option, value, "-n", "0"), 2)
    assert line == (
        f"Error: {option.strip('-')} must lie between 1677-09-22 and 2262-04-11 (nanosecond "
        f"timestamps), got {value!r}; leave it out to mean from the first bar or up to the last "
        "one"
    )


# -- 6: absurd prices ------------------------------------------------------------------------


def spy_csv(spy: pd.DataFrame, name: str, column: str, value: float) -> Path:
    bad = spy.copy()
    bad.iloc[10, bad.columns.get_loc(column)] = value
    return csv(name, bad, [f"{t:%Y-%m-%d}" for t in spy.index])


def test_a_bar_of_1e308_is_refused(spy: pd.DataFrame) -> None:
    path = spy_csv(spy, "spy.csv", "high", 1e308)
    line = one_line_error(run("data", "import", str(path), "-s", "SPY", "-i", "1d"), 1)
    assert line == (
        "Error: spy.csv: rule `the running sum of high² is finite` fails on 1 bar, first at "
        f"2019-01-16; high 1e+308, volume {spy['volume'].iloc[10]:.6g} there; a price or "
        "volume of absurd size (a bad tick or a unit error); fix or drop those bars in the "
        "source"
    )
    assert cached_files() == []
    allowed = run("data", "import", str(path), "-s", "SPY", "-i", "1d", "--max-jump", "inf")
    assert allowed.exit_code == 1  # no override makes overflowing arithmetic acceptable


def test_a_price_100x_off_is_refused_and_max_jump_allows_a_real_one(spy: pd.DataFrame) -> None:
    """A 1:100 reverse split left unadjusted in a vendor file: every bar from the 11th on is
    100x the one before; refused by default, accepted with --max-jump, which is stored, so
    later reads of the series validate it with the same factor."""
    split = spy.copy()
    split.iloc[10:, :4] *= 100.0
    path = csv("split.csv", split, [f"{t:%Y-%m-%d}" for t in spy.index])
    line = one_line_error(run("data", "import", str(path), "-s", "SPY", "-i", "1d"), 1)
    before, high = spy["close"].iloc[9], split["high"].iloc[10]
    assert line == (
        "Error: split.csv: rule `prices within 10x of the previous close` fails on 1 bar, first "
        f"at 2019-01-16; largest {high / before:.3g}x on 2019-01-16 (from {before:.6g} to "
        f"{high:.6g}); a typo or bad tick: fix or drop those bars in the source; a real move (a "
        f"crash, prices not adjusted for a split): pass --max-jump above {high / before:.3g} "
        "(max_jump=); --repair never changes prices"
    )
    repaired = run("data", "import", str(path), "-s", "SPY", "-i", "1d", "--repair")
    assert repaired.exit_code == 1
    result = run("data", "import", str(path), "-s", "SPY", "-i", "1d", "--max-jump", "150")
    assert result.exit_code == 0, result.output
    assert "price jumps up to 150x allowed (--max-jump)" in result.output
    meta = read_meta(Path("cache/SPY_1d.parquet"))
    assert meta is not None and meta.max_jump == 150.0
    shown = run("data", "show", "SPY", "-n", "0")
    assert shown.exit_code == 0, shown.output
    assert "max_jump          150" in shown.output


def test_max_jump_must_be_above_one(spy: pd.DataFrame) -> None:
    path = csv("spy.csv", spy, [f"{t:%Y-%m-%d}" for t in spy.index])
    result = run("data", "import", str(path), "-s", "SPY", "-i", "1d", "--max-jump", "1")
    assert result.exit_code == 2
    assert "Invalid value for '--max-jump': 1.0 is not in the range x>1.0." in result.output


def test_fetch_with_a_real_jump_needs_max_jump(fake_yahoo: FakeYahoo, spy: pd.DataFrame) -> None:
    split = spy.copy()
    split.iloc[10:, :4] *= 20.0  # a 1:20 reverse split Yahoo has not adjusted for
    fake_yahoo.serve("SPY", "1d", split)
    args = ("data", "fetch", "SPY", "--start", "2019-01-01", "--end", "2019-02-01")
    line = one_line_error(run(*args), 1)
    assert "rule `prices within 10x of the previous close` fails on 1 bar" in line
    assert run(*args, "--max-jump", "25").exit_code == 0
    assert read_meta(Path("cache/SPY_1d.parquet")).max_jump == 25.0  # type: ignore[union-attr]
    loaded = ivybt.load("SPY", "1d", source="cache", cache_dir="cache", adjusted=False)
    assert len(loaded) == 21


# -- 7: symbols that are not tickers -------------------------------------------------------


@pytest.mark.parametrize(
    "symbol", [".", "..", ".SPY", "-SPY", "SPY.", "A..B", "A/B", "..\\X", " ", "SP Y", "ÄPFEL"]
)
def test_import_refuses_names_that_are_not_tickers(spy: pd.DataFrame, symbol: str) -> None:
    path = csv("spy.csv", spy, [f"{t:%Y-%m-%d}" for t in spy.index])
    line = one_line_error(run("data", "import", str(path), "--symbol", symbol, "-i", "1d"), 2)
    assert line.startswith("Error: symbol must be a ticker like SPY, ^GSPC, BRK-B, BRK.B or ")
    assert f"got {symbol!r}" in line
    assert cached_files() == []


@pytest.mark.parametrize(
    ("symbol", "file"),
    [
        ("^gspc", "^GSPC_1d.parquet"),
        ("EURUSD=X", "EURUSD=X_1d.parquet"),
        ("brk-b", "BRK-B_1d.parquet"),
        ("BRK.B", "BRK.B_1d.parquet"),
        ("BTC-USD", "BTC-USD_1d.parquet"),
        ("0700.HK", "0700.HK_1d.parquet"),
        ("ES=F", "ES=F_1d.parquet"),
    ],
)
def test_real_tickers_are_stored_and_listed(spy: pd.DataFrame, symbol: str, file: str) -> None:
    path = csv("spy.csv", spy, [f"{t:%Y-%m-%d}" for t in spy.index])
    assert run("data", "import", str(path), "--symbol", symbol, "-i", "1d").exit_code == 0
    assert [f for f in cached_files() if f.endswith(".parquet")] == [file]
    listed = run("data", "list", "--format", "csv")
    assert f"\n{symbol.upper()},1d,cache," in listed.output


@pytest.mark.parametrize(
    "command",
    [
        ["data", "show", "..", "--source", "sample", "-n", "0"],
        ["backtest", "sma_cross", "--symbol", ".", "--source", "sample", "--out", "run"],
    ],
)
def test_commands_that_load_refuse_a_symbol_that_is_not_a_ticker(command: list[str]) -> None:
    line = one_line_error(run(*command), 2)
    assert line.startswith("Error: symbol must be a ticker like SPY")
    assert not Path("run").exists()


def test_fetch_refuses_a_non_ticker_before_fetching_anything(fake_yahoo: FakeYahoo) -> None:
    fake_yahoo.serve_sample("SPY")
    line = one_line_error(run("data", "fetch", "SPY", ".hidden", "--start", "2019-01-01"), 2)
    assert "got '.hidden'" in line
    assert fake_yahoo.calls == []
