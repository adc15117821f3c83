"""Vendor-file import: real sample slices written out in each vendor's format and read back.

Every file is written by the test (in its own tmp folder) from bundled real bars: AAPL and GOOG
daily (with adj_close), SPX daily (prices in the thousands, volume in billions) and EURUSD
hourly (UTC). Reading a file back must give the slice it was written from, to the precision
the text format keeps.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable
from pathlib import Path

import pandas as pd
import pandas.testing as pdt
import pytest

import ivybt
from ivybt.data import DataCache
from ivybt.data.importer import ImportReport, import_file, read_vendor_file
from ivybt.data.store import SeriesMeta, read_series, write_series
from ivybt.errors import ConfigError, DataError, ImportFormatError, ValidationError
from tests.conftest import day, utc
from tests.fakes import YAHOO_NAMES


def sample(symbol: str, interval: str, start: str, end: str) -> pd.DataFrame:
    frame = ivybt.load(symbol, interval, start, end, source="sample", adjusted=False)
    frame.attrs = {}
    return frame


@pytest.fixture(scope="module")
def _samples() -> dict[str, pd.DataFrame]:
    return {
        # 32 sessions, days 1..29 of the month, so m/d/Y dates are unambiguous
        "AAPL": sample("AAPL", "1d", "2017-12-01", "2018-01-19"),
        "GOOG": sample("GOOG", "1d", "2017-12-01", "2018-01-19"),
        "SPX": sample("SPX", "1d", "2018-01-01", "2018-02-01"),
        # 70 hourly bars, Wednesday 00:00 to Friday 21:00 UTC, in winter
        "EURUSD": sample("EURUSD", "1h", "2018-01-03", "2018-01-06"),
    }


@pytest.fixture
def aapl(_samples: dict[str, pd.DataFrame]) -> pd.DataFrame:
    return _samples["AAPL"].copy()


@pytest.fixture
def goog(_samples: dict[str, pd.DataFrame]) -> pd.DataFrame:
    return _samples["GOOG"].copy()


@pytest.fixture
def spx(_samples: dict[str, pd.DataFrame]) -> pd.DataFrame:
    return _samples["SPX"].copy()


@pytest.fixture
def eurusd(_samples: dict[str, pd.DataFrame]) -> pd.DataFrame:
    return _samples["EURUSD"].copy()


# -- writing vendor files ------------------------------------------------------------------


def write(name: str, header: str, lines: Iterable[str], *, newline: str = "\n") -> Path:
    """Write a text file in the test's own folder (the cwd) and return its path."""
    path = Path(name)
    path.write_text(newline.join([header, *lines]) + newline, encoding="utf-8", newline="")
    return path


def rows(frame: pd.DataFrame, fmt: Callable[[pd.Timestamp, pd.Series], str]) -> list[str]:
    return [fmt(stamp, bar) for stamp, bar in frame.iterrows()]


def yahoo_line(t: pd.Timestamp, b: pd.Series) -> str:
    prices = ",".join(f"{b[c]:.6f}" for c in ("open", "high", "low", "close", "adj_close"))
    return f"{t:%Y-%m-%d},{prices},{b.volume:.0f}"


YAHOO_HEADER = "Date,Open,High,Low,Close,Adj Close,Volume"


def yahoo_csv(frame: pd.DataFrame, name: str = "AAPL.csv", **kw: str) -> Path:
    return write(name, YAHOO_HEADER, rows(frame, yahoo_line), **kw)


def hourly_line(t: pd.Timestamp, b: pd.Series, stamp: str) -> str:
    return f"{stamp},{b.open},{b.high},{b.low},{b.close},{b.volume}"


def hourly_csv(
    frame: pd.DataFrame, name: str, stamp: Callable[[pd.Timestamp], str], header: str = "Date"
) -> Path:
    lines = [hourly_line(t, b, stamp(t)) for t, b in frame.iterrows()]
    return write(name, f"{header},Open,High,Low,Close,Volume", lines)


def close_to(frame: pd.DataFrame, expected: pd.DataFrame, atol: float) -> None:
    pdt.assert_frame_equal(frame, expected, check_exact=False, rtol=0, atol=atol, check_freq=False)


def read(path: Path, symbol: str, interval: str, **kw) -> tuple[pd.DataFrame, ImportReport]:
    return read_vendor_file(path, symbol=symbol, interval=interval, **kw)


def fails(path: Path, symbol: str = "AAPL", interval: str = "1d", **kw) -> str:
    with pytest.raises(ImportFormatError) as info:
        read(path, symbol, interval, **kw)
    return str(info.value)


# -- daily vendor formats -------------------------------------------------------------------


def test_yahoo_csv(aapl: pd.DataFrame) -> None:
    path = yahoo_csv(aapl)
    frame, report = read(path, "aapl", "1d")
    close_to(frame, aapl, atol=5e-7)
    assert list(frame.columns) == ["open", "high", "low", "close", "volume", "adj_close"]
    assert str(frame.index.dtype) == "datetime64[ns]"
    assert frame.index.name == "date"
    assert (report.symbol, report.interval, report.rows) == ("AAPL", "1d", 32)
    assert (report.first, report.last) == (day("2017-12-01"), day("2018-01-18"))
    assert report.columns == {
        "Open": "open",
        "High": "high",
        "Low": "low",
        "Close": "close",
        "Adj Close": "adj_close",
        "Volume": "volume",
        "Date": "date",
    }
    assert report.dropped_columns == ()
    assert report.dates == "ISO 8601; session dates"
    assert report.repairs == ()
    assert report.update is None
    assert report.file_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert report.summary() == (
        "read 32 1d bars of AAPL from AAPL.csv (2017-12-01 00:00:00 .. 2018-01-18 00:00:00); "
        "columns Open->open, High->high, Low->low, Close->close, Adj Close->adj_close, "
        "Volume->volume, Date->date; dates ISO 8601; session dates"
    )


def test_yahoo_csv_saved_on_windows_with_bom_and_crlf(aapl: pd.DataFrame) -> None:
    path = Path("AAPL.csv")
    text = "\r\n".join([YAHOO_HEADER, *rows(aapl, yahoo_line)]) + "\r\n"
    path.write_bytes(text.encode("utf-8-sig"))
    frame, report = read(path, "AAPL", "1d")
    close_to(frame, aapl, atol=5e-7)
    assert "Date" in report.columns


def test_yahoo_csv_with_a_constant_close_time(aapl: pd.DataFrame) -> None:
    lines = [yahoo_line(t, b).replace(",", " 16:00:00,", 1) for t, b in aapl.iterrows()]
    frame, report = read(write("AAPL.csv", YAHOO_HEADER, lines), "AAPL", "1d")
    close_to(frame, aapl, atol=5e-7)
    assert report.dates == "ISO 8601; session dates (constant time 16:00:00 dropped)"


def nasdaq_line(t: pd.Timestamp, b: pd.Series) -> str:
    return (
        f"{t:%m/%d/%Y}, ${b.close:.2f}, {b.volume:.0f}, ${b.open:.2f}, ${b.high:.2f}, ${b.low:.2f}"
    )


NASDAQ_HEADER = "Date,Close/Last,Volume,Open,High,Low"


def test_nasdaq_style(aapl: pd.DataFrame) -> None:
    path = write("HistoricalData_AAPL.csv", NASDAQ_HEADER, rows(aapl, nasdaq_line))
    frame, report = read(path, "AAPL", "1d")
    expected = aapl.drop(columns="adj_close").round(2)
    close_to(frame, expected, atol=1e-9)
    assert report.columns["Close/Last"] == "close"
    assert report.dates == "%m/%d/%Y; session dates"


def test_nasdaq_newest_first_is_read_oldest_first_and_reported(aapl: pd.DataFrame) -> None:
    """Nasdaq.com lists the newest session first: a layout, not an error; the report says so."""
    path = write("HistoricalData_AAPL.csv", NASDAQ_HEADER, rows(aapl.iloc[::-1], nasdaq_line))
    frame, report = read(path, "AAPL", "1d")
    close_to(frame, aapl.drop(columns="adj_close").round(2), atol=1e-9)
    assert report.repairs == ()
    assert report.dates.endswith("; newest-first file read oldest-first")


def test_partly_unsorted_file_is_sorted_only_with_repair(aapl: pd.DataFrame) -> None:
    """Out-of-order rows that are not a reversed file stay an error unless --repair."""
    shuffled = aapl.iloc[[*range(5), 6, 5, *range(7, len(aapl))]]
    path = write("HistoricalData_AAPL.csv", NASDAQ_HEADER, rows(shuffled, nasdaq_line))
    with pytest.raises(ValidationError) as info:
        read(path, "AAPL", "1d")
    assert str(info.value) == (
        "HistoricalData_AAPL.csv: rule `timestamps sorted ascending` fails on 1 bar, first at "
        f"{aapl.index[5]:%Y-%m-%d}; fix the source, or pass --repair (repair=True) to sort the "
        "bars"
    )
    frame, report = read(path, "AAPL", "1d", repair=True)
    close_to(frame, aapl.drop(columns="adj_close").round(2), atol=1e-9)
    assert report.repairs == (f"sorted 1 out-of-order bar(s) (first at {aapl.index[5]:%Y-%m-%d})",)


def test_semicolons_with_decimal_commas(aapl: pd.DataFrame) -> None:
    def line(t: pd.Timestamp, b: pd.Series) -> str:
        prices = [f"{b[c]:.6f}".replace(".", ",") for c in YAHOO_NAMES if c != "volume"]
        return ";".join([f"{t:%d.%m.%Y}", *prices, f"{b.volume:.0f}"])

    path = write("aapl_de.csv", YAHOO_HEADER.replace(",", ";"), rows(aapl, line))
    frame, report = read(path, "AAPL", "1d")
    close_to(frame, aapl, atol=5e-7)
    assert report.dates == "%d.%m.%Y; session dates"


def test_semicolons_with_three_decimals_and_suffixed_volume(aapl: pd.DataFrame) -> None:
    """'172,260' in a ';' file is 172.26, not 172260; '25,6M' is 25.6 million, not 256M."""

    def line(t: pd.Timestamp, b: pd.Series) -> str:
        prices = [f"{b[c]:.3f}".replace(".", ",") for c in ("open", "high", "low", "close")]
        return ";".join([f"{t:%Y-%m-%d}", *prices, f"{b.volume / 1e6:.1f}M".replace(".", ",")])

    path = write("aapl.csv", "Date;Open;High;Low;Close;Volume", rows(aapl, line))
    frame, _ = read(path, "AAPL", "1d")
    expected = aapl.drop(columns="adj_close").round(3)
    expected["volume"] = (aapl["volume"] / 1e6).round(1) * 1e6
    close_to(frame, expected, atol=1e-6)


def test_semicolons_with_dot_grouped_thousands(spx: pd.DataFrame) -> None:
    """European number format: '2.683,73' and a volume of '1.919.600.000'."""

    def european(value: float, decimals: int) -> str:
        us = f"{value:,.{decimals}f}"
        return us.replace(",", " ").replace(".", ",").replace(" ", ".")

    def line(t: pd.Timestamp, b: pd.Series) -> str:
        prices = [european(b[c], 2) for c in ("open", "high", "low", "close")]
        return ";".join([f"{t:%d.%m.%Y}", *prices, european(b.volume, 0)])

    lines = rows(spx, line)
    assert lines[0] == "02.01.2018;2.683,73;2.695,89;2.682,36;2.695,81;1.919.600.000"
    frame, _ = read(write("spx.csv", "Date;Open;High;Low;Close;Volume", lines), "SPX", "1d")
    close_to(frame, spx, atol=1e-9)


def test_thousands_separators_and_suffixed_volume(spx: pd.DataFrame) -> None:
    """Investing.com layout: Price for close, "Vol." with K/M/B, "Change %" to drop."""
    suffixes = {"K": 1e3, "M": 1e6, "B": 1e9}

    def line(i: int, t: pd.Timestamp, b: pd.Series, change: float) -> str:
        suffix = "KMB"[i % 3]
        volume = f"{float(b.volume) / suffixes[suffix]!r}{suffix}"
        prices = ",".join(f'"{b[c]:,.2f}"' for c in ("close", "open", "high", "low"))
        return f'"{t:%b %d, %Y}",{prices},{volume},{change:.2%}'

    changes = spx["close"].pct_change().fillna(0.0)
    lines = [line(i, t, b, changes[t]) for i, (t, b) in enumerate(spx.iterrows())]
    assert (
        lines[0] == '"Jan 02, 2018","2,695.81","2,683.73","2,695.89","2,682.36",1919600.0K,0.00%'
    )
    path = write("SPX Historical Data.csv", 'Date,Price,Open,High,Low,"Vol.",Change %', lines)
    frame, report = read(path, "^GSPC", "1d")
    close_to(frame[["open", "high", "low", "close"]], spx[["open", "high", "low", "close"]], 1e-9)
    pdt.assert_series_equal(frame["volume"], spx["volume"], check_exact=False, rtol=1e-12)
    assert report.symbol == "^GSPC"
    assert report.columns["Price"] == "close"
    assert report.columns["Vol."] == "volume"
    assert report.dropped_columns == ("Change %",)
    assert report.dates == "%b %d, %Y; session dates"


def test_epoch_seconds_for_daily_bars(aapl: pd.DataFrame) -> None:
    def line(t: pd.Timestamp, b: pd.Series) -> str:
        return f"{t.value // 10**9}," + yahoo_line(t, b).split(",", 1)[1]

    path = write("aapl.csv", YAHOO_HEADER.replace("Date", "ts"), rows(aapl, line))
    frame, report = read(path, "AAPL", "1d")
    close_to(frame, aapl, atol=5e-7)
    assert report.dates == "epoch s (UTC); session dates"


def test_parquet_with_a_datetimeindex(aapl: pd.DataFrame, eurusd: pd.DataFrame) -> None:
    aapl.rename(columns=YAHOO_NAMES).rename_axis("Date").to_parquet("aapl.parquet")
    frame, report = read(Path("aapl.parquet"), "AAPL", "1d")
    pdt.assert_frame_equal(frame, aapl)
    assert report.dates == "already timestamps; session dates"
    assert report.columns["Date"] == "date"

    eurusd.to_parquet("eurusd.pq")
    frame, report = read(Path("eurusd.pq"), "EURUSD", "1h")
    pdt.assert_frame_equal(frame, eurusd)
    assert report.dates == "already timestamps; times carry their own zone, stored in UTC"


def test_parquet_with_a_date_column_and_integer_volume(aapl: pd.DataFrame) -> None:
    table = aapl.reset_index()
    table["volume"] = table["volume"].astype("int64")
    table.to_parquet("aapl.parquet", index=False)
    frame, _ = read(Path("aapl.parquet"), "AAPL", "1d")
    pdt.assert_frame_equal(frame, aapl)


def test_ticker_column_with_one_symbol_is_dropped(aapl: pd.DataFrame) -> None:
    lines = ["AAPL," + line for line in rows(aapl, yahoo_line)]
    frame, report = read(write("aapl.csv", "Ticker," + YAHOO_HEADER, lines), "AAPL", "1d")
    close_to(frame, aapl, atol=5e-7)
    assert report.dropped_columns == ("Ticker",)
    assert "; dropped Ticker;" in report.summary()


# -- intraday vendor formats ----------------------------------------------------------------


def metatrader_csv(frame: pd.DataFrame, zone: str) -> Path:
    local = frame.tz_convert(zone)
    lines = [
        f"{t:%Y.%m.%d},{t:%H:%M},{b.open},{b.high},{b.low},{b.close},{b.volume:.0f}"
        for t, b in local.iterrows()
    ]
    return write("EURUSD60.csv", "Date,Time,Open,High,Low,Close,Volume", lines)


@pytest.mark.parametrize(
    ("file_zone", "tz"),
    [("UTC", "UTC"), ("UTC", "Europe/London"), ("America/New_York", "America/New_York")],
)
def test_metatrader_date_and_time_columns(eurusd: pd.DataFrame, file_zone: str, tz: str) -> None:
    """London is on UTC in January; New York is 5 hours behind."""
    path = metatrader_csv(eurusd, file_zone)
    frame, report = read(path, "EURUSD", "1h", tz=tz)
    pdt.assert_frame_equal(frame, eurusd)
    assert report.columns["Date"] == report.columns["Time"] == "date"
    assert report.dates == f"%Y.%m.%d %H:%M; naive times read in {tz}, stored in UTC"


def test_metatrader_times_read_in_the_wrong_zone_shift(eurusd: pd.DataFrame) -> None:
    frame, _ = read(metatrader_csv(eurusd, "UTC"), "EURUSD", "1h", tz="America/New_York")
    assert frame.index[0] == utc("2018-01-03 05:00")
    pdt.assert_frame_equal(frame, eurusd.set_axis(eurusd.index + pd.Timedelta(hours=5), axis=0))


def test_new_york_times_across_the_dst_change() -> None:
    """Real bars from Friday 2018-03-09 (EST, UTC-5) to Monday 2018-03-12 (EDT, UTC-4)."""
    eurusd = sample("EURUSD", "1h", "2018-03-09", "2018-03-13")
    path = metatrader_csv(eurusd, "America/New_York")
    frame, _ = read(path, "EURUSD", "1h", tz="America/New_York")
    pdt.assert_frame_equal(frame, eurusd)


def test_time_that_does_not_exist_in_the_zone() -> None:
    eurusd = sample("EURUSD", "1h", "2018-03-09", "2018-03-13")
    path = metatrader_csv(eurusd, "America/New_York")
    text = path.read_text()
    assert "2018.03.09,16:00," in text
    path.write_text(text.replace("2018.03.09,16:00,", "2018.03.11,02:00,"))
    message = fails(path, "EURUSD", "1h", tz="America/New_York")
    assert message.startswith(
        "EURUSD60.csv: naive times cannot be read in time zone 'America/New_York' ("
    )
    assert message.endswith("); pass the file's zone with --tz, e.g. --tz America/New_York")


def test_metatrader5_tab_separated_export(eurusd: pd.DataFrame) -> None:
    lines = [
        f"{t:%Y.%m.%d}\t{t:%H:%M:%S}\t{b.open}\t{b.high}\t{b.low}\t{b.close}\t1\t{b.volume:.0f}\t8"
        for t, b in eurusd.iterrows()
    ]
    path = write(
        "EURUSD_H1.tsv",
        "<DATE>\t<TIME>\t<OPEN>\t<HIGH>\t<LOW>\t<CLOSE>\t<TICKVOL>\t<VOL>\t<SPREAD>",
        lines,
    )
    frame, report = read(path, "EURUSD", "1h")
    pdt.assert_frame_equal(frame, eurusd)
    assert report.columns["<VOL>"] == "volume"
    assert report.dropped_columns == ("<TICKVOL>", "<SPREAD>")


def test_dukascopy_gmt_time(eurusd: pd.DataFrame) -> None:
    path = hourly_csv(
        eurusd,
        "EURUSD_Candlestick_1_Hour_BID.csv",
        lambda t: f"{t:%d.%m.%Y %H:%M:%S}.000",
        header="Gmt time",
    )
    assert path.read_text().splitlines()[1].startswith("03.01.2018 00:00:00.000,")
    frame, report = read(path, "EURUSD", "1h")
    pdt.assert_frame_equal(frame, eurusd)
    assert report.columns["Gmt time"] == "date"
    assert report.dates == "%d.%m.%Y %H:%M:%S.%f; naive times read in UTC, stored in UTC"


def test_epoch_milliseconds(eurusd: pd.DataFrame) -> None:
    path = hourly_csv(eurusd, "eurusd.csv", lambda t: str(t.value // 10**6), header="timestamp")
    assert path.read_text().splitlines()[1].startswith("1514937600000,")
    frame, report = read(path, "EURUSD", "1h")
    pdt.assert_frame_equal(frame, eurusd)
    assert report.dates == "epoch ms (UTC); times carry their own zone, stored in UTC"


@pytest.mark.parametrize("zone", ["Europe/Paris", "America/New_York", "Asia/Kolkata"])
def test_iso_times_with_offsets_become_utc(eurusd: pd.DataFrame, zone: str) -> None:
    path = hourly_csv(eurusd, "eurusd.csv", lambda t: t.tz_convert(zone).isoformat())
    frame, report = read(path, "EURUSD", "1h", tz="Asia/Tokyo")  # offsets beat --tz
    pdt.assert_frame_equal(frame, eurusd)
    assert report.dates.startswith("ISO 8601; times carry their own zone")


def test_iso_times_with_z_suffix(eurusd: pd.DataFrame) -> None:
    path = hourly_csv(eurusd, "eurusd.csv", lambda t: f"{t:%Y-%m-%dT%H:%M:%S}Z")
    frame, _ = read(path, "EURUSD", "1h")
    pdt.assert_frame_equal(frame, eurusd)


def test_stamp_close_shifts_back_one_bar(eurusd: pd.DataFrame) -> None:
    path = hourly_csv(
        eurusd, "eurusd.csv", lambda t: f"{t + pd.Timedelta(hours=1):%Y-%m-%d %H:%M}"
    )
    assert path.read_text().splitlines()[1].startswith("2018-01-03 01:00,")
    frame, report = read(path, "EURUSD", "1h", stamp="close")
    pdt.assert_frame_equal(frame, eurusd)
    assert report.dates == (
        "ISO 8601; naive times read in UTC; shifted from bar close to bar open by 1h, stored "
        "in UTC"
    )
    unshifted, _ = read(path, "EURUSD", "1h")
    assert unshifted.index[0] == utc("2018-01-03 01:00")


def test_offsets_given_with_tz_are_noted_as_not_needed(eurusd: pd.DataFrame) -> None:
    path = hourly_csv(eurusd, "eurusd.csv", lambda t: t.tz_convert("Europe/Paris").isoformat())
    _, report = read(path, "EURUSD", "1h", tz="Asia/Tokyo")
    assert report.dates == (
        "ISO 8601; times carry their own zone (--tz Asia/Tokyo not needed), stored in UTC"
    )


def test_some_rows_with_offsets_are_refused_unless_tz_is_given(eurusd: pd.DataFrame) -> None:
    """New York across a DST change: offsets on the first 30 rows, wall times on the rest."""
    eurusd = sample("EURUSD", "1h", "2018-03-09", "2018-03-13")
    local = eurusd.index.tz_convert("America/New_York")
    stamps = dict(zip(eurusd.index, [t.isoformat() for t in local[:30]], strict=False))
    path = hourly_csv(eurusd, "ny.csv", lambda t: stamps.get(t, f"{t.tz_convert(local.tz):%F %T}"))
    message = fails(path, "EURUSD", "1h")
    assert message.startswith(
        "ny.csv, Date: 30 rows carry a UTC offset (first '2018-03-08T19:00:00-05:00', row 2"
    )
    assert f"and {len(eurusd) - 30} do not (first " in message
    frame, report = read(path, "EURUSD", "1h", tz="America/New_York")
    pdt.assert_frame_equal(frame, eurusd)
    assert report.dates == (
        f"ISO 8601 (30 rows with a UTC offset, {len(eurusd) - 30} without); times without an "
        "offset read in America/New_York, stored in UTC"
    )


def test_daily_bars_keep_the_date_written_whatever_the_offset(aapl: pd.DataFrame) -> None:
    """Midnight in Paris is 23:00 UTC the day before: the session date is the one written."""

    def line(t: pd.Timestamp, b: pd.Series) -> str:
        stamp = t.tz_localize("Europe/Paris").isoformat()
        return f"{stamp}," + yahoo_line(t, b).split(",", 1)[1]

    path = write("aapl.csv", YAHOO_HEADER, rows(aapl, line))
    assert path.read_text().splitlines()[1].startswith("2017-12-01T00:00:00+01:00,")
    frame, report = read(path, "AAPL", "1d")
    close_to(frame, aapl, atol=5e-7)
    assert report.dates == "ISO 8601; session dates"


def test_date_format_with_offsets_across_a_dst_change() -> None:
    eurusd = sample("EURUSD", "1h", "2018-03-09", "2018-03-13")
    path = hourly_csv(
        eurusd, "ny.csv", lambda t: f"{t.tz_convert('America/New_York'):%d/%m/%Y %H:%M %z}"
    )
    frame, report = read(path, "EURUSD", "1h", date_format="%d/%m/%Y %H:%M %z")
    pdt.assert_frame_equal(frame, eurusd)
    assert report.dates == "%d/%m/%Y %H:%M %z; times carry their own zone, stored in UTC"


@pytest.mark.parametrize("zone", ["Mars/Olympus", "utc+2"])
def test_unknown_tz_is_a_config_error(eurusd: pd.DataFrame, zone: str) -> None:
    path = hourly_csv(eurusd, "eurusd.csv", lambda t: t.isoformat())
    with pytest.raises(
        ConfigError, match=rf"--tz must be a time zone .*, got {re.escape(repr(zone))}"
    ):
        read(path, "EURUSD", "1h", tz=zone)


def test_parquet_dates_outside_the_timeline(aapl: pd.DataFrame) -> None:
    """A Parquet date column in seconds can hold the year 1200; IvyBT's timeline cannot."""
    table = aapl.reset_index()
    table["date"] = table["date"].astype("datetime64[s]")
    table.loc[4, "date"] = pd.Timestamp("1217-12-07").as_unit("s")
    table.to_parquet("aapl.parquet", index=False)
    message = fails(Path("aapl.parquet"), "AAPL", "1d")
    assert message.startswith("aapl.parquet, date: Timestamp('1217-12-07 00:00:00') (row 6 ")
    assert "lies outside the 1677-09-22 to 2262-04-11 timeline" in message


# -- files that cannot be imported ----------------------------------------------------------


def test_no_date_column(aapl: pd.DataFrame) -> None:
    path = write("aapl.csv", YAHOO_HEADER.replace("Date", "When"), rows(aapl, yahoo_line))
    assert fails(path) == (
        "aapl.csv: no date column found (columns: When, Open, High, Low, Close, Adj Close, "
        "Volume); name it Date, Datetime or Timestamp"
    )


def test_ambiguous_dates_ask_for_a_date_format(aapl: pd.DataFrame) -> None:
    first_days = aapl.loc[day("2018-01-01") : day("2018-01-12")]  # nine sessions, days <= 12
    lines = [
        f"{t:%d/%m/%Y}," + yahoo_line(t, b).split(",", 1)[1] for t, b in first_days.iterrows()
    ]
    path = write("aapl.csv", YAHOO_HEADER, lines)
    assert fails(path) == (
        "aapl.csv, Date: dates like '02/01/2018' fit several formats that disagree (%m/%d/%Y, "
        "%d/%m/%Y); pass --date-format, e.g. '%d/%m/%Y'"
    )
    frame, report = read(path, "AAPL", "1d", date_format="%d/%m/%Y")
    close_to(frame, first_days, atol=5e-7)
    assert report.dates == "%d/%m/%Y; session dates"


def test_date_format_that_does_not_match(aapl: pd.DataFrame) -> None:
    path = write("aapl.csv", NASDAQ_HEADER, rows(aapl, nasdaq_line))
    message = fails(path, date_format="%d/%m/%Y")
    assert message.startswith("aapl.csv, Date: dates do not match --date-format '%d/%m/%Y' (")


def test_one_unparsable_date_is_named_with_its_row(aapl: pd.DataFrame) -> None:
    lines = rows(aapl, nasdaq_line)
    lines[6] = "12/45/2017" + lines[6][10:]
    message = fails(write("aapl.csv", NASDAQ_HEADER, lines))
    assert message == (
        "aapl.csv, Date: most dates read as '%m/%d/%Y' but '12/45/2017' (row 8 of the file) "
        "does not; fix that row or pass --date-format"
    )


def test_unknown_date_format_needs_a_date_format(aapl: pd.DataFrame) -> None:
    lines = [f"{t:%A %d %B %Y}," + yahoo_line(t, b).split(",", 1)[1] for t, b in aapl.iterrows()]
    path = write("aapl.csv", YAHOO_HEADER, lines)
    assert fails(path) == (
        "aapl.csv, Date: cannot read dates like 'Friday 01 December 2017'; pass --date-format, "
        "e.g. '%d/%m/%Y %H:%M' (Python strftime codes)"
    )
    frame, _ = read(path, "AAPL", "1d", date_format="%A %d %B %Y")
    close_to(frame, aapl, atol=5e-7)


def test_non_numeric_price_names_the_row(aapl: pd.DataFrame) -> None:
    lines = rows(aapl, yahoo_line)
    cells = lines[2].split(",")
    cells[4] = "#VALUE!"  # Close of 2017-12-05, the 4th line of the file
    lines[2] = ",".join(cells)
    assert fails(write("aapl.csv", YAHOO_HEADER, lines)) == (
        "aapl.csv: column 'Close' has non-numeric values such as '#VALUE!' (row 4 of the file); "
        "fix or remove those rows"
    )


@pytest.mark.parametrize("missing", ["null", "n/a", "", "-"])
def test_missing_price_is_a_validation_error(aapl: pd.DataFrame, missing: str) -> None:
    lines = rows(aapl, yahoo_line)
    cells = lines[2].split(",")
    cells[4] = missing  # Close of 2017-12-05
    lines[2] = ",".join(cells)
    with pytest.raises(
        ValidationError,
        match=r"^aapl\.csv: rule `close is not NaN` fails on 1 "
        r"bar, first at 2017-12-05; fill or drop those bars in the source$",
    ):
        read(write("aapl.csv", YAHOO_HEADER, lines), "AAPL", "1d")


def test_high_below_close_in_the_file_is_a_validation_error(aapl: pd.DataFrame) -> None:
    aapl.loc[day("2017-12-12"), "high"] = aapl.loc[day("2017-12-12"), "close"] - 1.0
    with pytest.raises(
        ValidationError,
        match=r"^aapl\.csv: rule `high >= max\(open, close\)` "
        r"fails on 1 bar, first at 2017-12-12; worst relative",
    ):
        read(yahoo_csv(aapl, "aapl.csv"), "AAPL", "1d", repair=True)


def test_several_tickers_in_one_file(aapl: pd.DataFrame, goog: pd.DataFrame) -> None:
    lines = [f"AAPL,{x}" for x in rows(aapl, yahoo_line)]
    lines += [f"GOOG,{x}" for x in rows(goog, yahoo_line)]
    assert fails(write("stocks.csv", "Symbol," + YAHOO_HEADER, lines)) == (
        "stocks.csv: column 'Symbol' holds 2 symbols (AAPL, GOOG); import one symbol per file "
        "(filter the rows first)"
    )


def test_daily_interval_for_intraday_times(eurusd: pd.DataFrame) -> None:
    path = hourly_csv(eurusd, "eurusd.csv", lambda t: f"{t:%Y-%m-%d %H:%M}")
    assert fails(path, "EURUSD", "1d") == (
        "eurusd.csv: 1d bars must be one per date, but the times of day vary (00:00:00, "
        "01:00:00, 02:00:00); is the file intraday? pass its bar --interval, e.g. 1h"
    )


def test_intraday_interval_that_does_not_fit_the_spacing(eurusd: pd.DataFrame) -> None:
    path = hourly_csv(eurusd, "eurusd.csv", lambda t: f"{t:%Y-%m-%d %H:%M}")
    assert fails(path, "EURUSD", "5m") == (
        "eurusd.csv: bars are typically 0 days 01:00:00 apart, which does not fit --interval "
        "5m (0 days 00:05:00); pass the file's bar interval (imports are not resampled)"
    )


def test_intraday_interval_for_daily_bars(aapl: pd.DataFrame) -> None:
    message = fails(yahoo_csv(aapl, "aapl.csv"), "AAPL", "1h")
    assert message.startswith("aapl.csv: bars are typically 1 days 00:00:00 apart, which does")


def test_weekly_interval_for_daily_bars(aapl: pd.DataFrame) -> None:
    message = fails(yahoo_csv(aapl, "aapl.csv"), "AAPL", "1wk")
    assert "which does not fit --interval 1wk (7 days 00:00:00)" in message


def test_unknown_file_suffix(aapl: pd.DataFrame) -> None:
    path = yahoo_csv(aapl, "aapl.xlsx")
    assert fails(path) == (
        "aapl.xlsx: unknown file type '.xlsx'; give a .csv/.txt/.tsv (optionally compressed) "
        "or .parquet file"
    )


def test_missing_file() -> None:
    assert fails(Path("nowhere/aapl.csv")) == (
        "nowhere/aapl.csv: no such file; give the path of a CSV or Parquet file"
    )


def test_empty_file() -> None:
    Path("empty.csv").write_text("")
    assert fails(Path("empty.csv")) == (
        "empty.csv: cannot be read (EmptyDataError: No columns to parse from file)"
    )


def test_file_with_only_a_header() -> None:
    path = write("header.csv", YAHOO_HEADER, [])
    assert fails(path) == "header.csv: the file has no rows; check it is the right file"


def test_broken_parquet_file() -> None:
    Path("broken.parquet").write_bytes(b"PAR1 not really")
    assert fails(Path("broken.parquet")).startswith("broken.parquet: cannot be read (")


def test_stamp_close_on_daily_bars_is_a_config_error(aapl: pd.DataFrame) -> None:
    with pytest.raises(ConfigError) as info:
        read(yahoo_csv(aapl), "AAPL", "1d", stamp="close")
    assert str(info.value) == (
        "--stamp close applies to intraday bars only; 1d bars carry session dates (drop --stamp)"
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"stamp": "middle"}, "stamp must be 'open' or 'close', got 'middle'"),
        ({"interval": "1x"}, "interval must be one of"),
        ({"symbol": "../etc"}, "symbol must be a ticker like SPY"),
    ],
)
def test_bad_arguments_are_config_errors(aapl: pd.DataFrame, kwargs: dict, message: str) -> None:
    args = {"symbol": "AAPL", "interval": "1d", **kwargs}
    with pytest.raises(ConfigError, match=re.escape(message)):
        read_vendor_file(yahoo_csv(aapl), **args)


# -- into the cache --------------------------------------------------------------------------


def test_import_lands_in_the_cache(cache_dir: Path, aapl: pd.DataFrame) -> None:
    path = yahoo_csv(aapl)
    report = import_file(path, symbol="AAPL", interval="1d", cache_dir=cache_dir)
    assert [p.name for p in DataCache(cache_dir).files()] == ["AAPL_1d.parquet"]
    frame, meta = read_series(cache_dir / "AAPL_1d.parquet")
    close_to(frame, aapl, atol=5e-7)
    assert meta.source == "import"
    assert (meta.symbol, meta.interval) == ("AAPL", "1d")
    assert meta.price_basis == "as in the vendor file AAPL.csv; adj_close as given"
    assert (meta.covered_start, meta.covered_end) == ("2017-12-01T00:00:00", "2018-01-19T00:00:00")
    (event,) = meta.log
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    assert (event["action"], event["origin"], event["bars"]) == (
        "import",
        f"AAPL.csv sha256:{sha}",
        32,
    )
    assert report.update is not None
    assert (report.update.bars_added, report.update.bars_total) == (32, 32)
    assert report.summary().splitlines()[1] == report.update.summary()
    cached = DataCache(cache_dir).read("AAPL", "1d")
    assert cached is not None
    pdt.assert_frame_equal(cached[0], frame)


def test_imported_series_loads_from_the_cache(cache_dir: Path, eurusd: pd.DataFrame) -> None:
    path = hourly_csv(eurusd, "eurusd.csv", lambda t: str(t.value // 10**6), header="timestamp")
    import_file(path, symbol="eurusd=x", interval="60m", cache_dir=cache_dir)
    frame, meta = read_series(cache_dir / "EURUSD=X_1h.parquet")
    pdt.assert_frame_equal(frame, eurusd)
    assert meta.price_basis == "as in the vendor file eurusd.csv"
    loaded = ivybt.load("EURUSD=X", "1h", source="cache", cache_dir=cache_dir)
    pdt.assert_frame_equal(loaded, eurusd)


def test_overlapping_import_merges_and_imported_bars_win(
    cache_dir: Path, aapl: pd.DataFrame
) -> None:
    first = aapl.loc[: day("2017-12-29")]  # 20 sessions of December
    second = aapl.loc[day("2017-12-15") :].copy()  # 22 sessions, 11 of them overlapping
    second.loc[: day("2017-12-29"), "volume"] += 1000.0  # a vendor that counts differently
    import_file(
        yahoo_csv(first, "december.csv"), symbol="AAPL", interval="1d", cache_dir=cache_dir
    )
    report = import_file(
        yahoo_csv(second, "january.csv"), symbol="AAPL", interval="1d", cache_dir=cache_dir
    )
    frame, meta = read_series(cache_dir / "AAPL_1d.parquet")
    expected = pd.concat([first.loc[: day("2017-12-14")], second])
    close_to(frame, expected, atol=5e-7)
    assert frame.loc[day("2017-12-20"), "volume"] == aapl.loc[day("2017-12-20"), "volume"] + 1000
    assert frame.loc[day("2017-12-14"), "volume"] == aapl.loc[day("2017-12-14"), "volume"]
    assert report.update is not None
    assert (report.update.bars_added, report.update.bars_total) == (12, 32)
    assert [e["origin"].split(" ")[0] for e in meta.log] == ["december.csv", "january.csv"]
    assert (meta.covered_start, meta.covered_end) == ("2017-12-01T00:00:00", "2018-01-19T00:00:00")
    assert meta.price_basis == "as in the vendor file january.csv; adj_close as given"


def test_import_onto_a_yahoo_series_needs_replace(cache_dir: Path, aapl: pd.DataFrame) -> None:
    target = cache_dir / "AAPL_1d.parquet"
    fetched = aapl.loc[: day("2017-12-29")]
    write_series(
        target,
        fetched,
        SeriesMeta(
            symbol="AAPL",
            interval="1d",
            source="yahoo",
            price_basis="x",
            covered_start="2017-12-01T00:00:00",
            covered_end="2017-12-30T00:00:00",
        ),
    )
    before = target.read_bytes()
    path = yahoo_csv(aapl.loc[day("2018-01-01") :], "january.csv")
    with pytest.raises(DataError) as info:
        import_file(path, symbol="AAPL", interval="1d", cache_dir=cache_dir)
    assert not isinstance(info.value, ImportFormatError)
    assert str(info.value) == (
        f"{target} holds AAPL 1d from yahoo; mixing vendors in one series is refused; pass "
        "--replace to discard it, or use another --cache-dir"
    )
    assert target.read_bytes() == before

    report = import_file(path, symbol="AAPL", interval="1d", replace=True, cache_dir=cache_dir)
    frame, meta = read_series(target)
    close_to(frame, aapl.loc[day("2018-01-01") :], atol=5e-7)
    assert meta.source == "import"
    assert (meta.covered_start, meta.covered_end) == ("2018-01-02T00:00:00", "2018-01-19T00:00:00")
    assert len(meta.log) == 1
    assert report.update is not None
    assert report.update.bars_total == 12


def test_failed_import_leaves_the_cache_alone(cache_dir: Path, aapl: pd.DataFrame) -> None:
    import_file(yahoo_csv(aapl), symbol="AAPL", interval="1d", cache_dir=cache_dir)
    before = (cache_dir / "AAPL_1d.parquet").read_bytes()
    lines = rows(aapl, yahoo_line)
    lines[3] = lines[3].replace("2017-12-06", "2017-12-32")
    with pytest.raises(ImportFormatError, match=r"'2017-12-32' \(row 5 of the file\)"):
        import_file(
            write("bad.csv", YAHOO_HEADER, lines),
            symbol="AAPL",
            interval="1d",
            cache_dir=cache_dir,
        )
    assert (cache_dir / "AAPL_1d.parquet").read_bytes() == before


def test_a_jump_where_two_imports_meet_is_refused(cache_dir: Path, aapl: pd.DataFrame) -> None:
    """December in dollars, then January from a vendor quoting cents: each file is fine alone."""
    import_file(
        yahoo_csv(aapl.loc[: day("2017-12-29")], "december.csv"),
        symbol="AAPL",
        interval="1d",
        cache_dir=cache_dir,
    )
    before = (cache_dir / "AAPL_1d.parquet").read_bytes()
    cents = aapl.loc[day("2018-01-01") :].copy()
    cents[["open", "high", "low", "close", "adj_close"]] *= 100
    with pytest.raises(ValidationError, match=r"^AAPL 1d: rule `prices within 10x of the prev"):
        import_file(
            yahoo_csv(cents, "january.csv"), symbol="AAPL", interval="1d", cache_dir=cache_dir
        )
    assert (cache_dir / "AAPL_1d.parquet").read_bytes() == before
