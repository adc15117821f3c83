"""Universes typed on the command line (`--symbols`) and read from files (`--universe`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ivybt.data.panel import load_panel
from ivybt.data.universe import as_symbols, parse_symbols, read_universe
from ivybt.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]
DEMO = ("SPY", "MSFT", "AAPL", "GOOG", "IBM")


def write(tmp_path: Path, text: str, name: str = "universe.txt") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# -- --symbols ------------------------------------------------------------------------------


def test_parse_symbols_normalises_in_order() -> None:
    assert parse_symbols("SPY, msft,AAPL") == ("SPY", "MSFT", "AAPL")
    assert parse_symbols(" ^gspc ,eurusd=x,brk-b") == ("^GSPC", "EURUSD=X", "BRK-B")
    assert parse_symbols("SPY") == ("SPY",)


def test_parse_symbols_refuses_empty_entries_and_duplicates() -> None:
    with pytest.raises(ConfigError, match=r"^symbols: entry 2 of 'SPY,,MSFT' is empty; "):
        parse_symbols("SPY,,MSFT")
    with pytest.raises(ConfigError, match="entry 2 of 'SPY,' is empty"):
        parse_symbols("SPY,")
    with pytest.raises(
        ConfigError, match=r"^symbols: MSFT is listed twice \(as 'MSFT' and 'msft'\); list each"
    ):
        parse_symbols("MSFT,SPY,msft")
    with pytest.raises(ConfigError, match="symbol must be a ticker like SPY"):
        parse_symbols("SPY,EUR/USD")


def test_as_symbols_takes_a_string_or_a_sequence() -> None:
    assert as_symbols("spy,ibm") == as_symbols(["spy", "IBM"]) == ("SPY", "IBM")
    assert as_symbols(("SPY",)) == ("SPY",)
    with pytest.raises(ConfigError, match="at least one symbol"):
        as_symbols([])
    with pytest.raises(ConfigError, match="symbols must be strings like 'SPY', got 3"):
        as_symbols(["SPY", 3])  # type: ignore[list-item]


# -- --universe FILE ------------------------------------------------------------------------


def test_text_file_one_symbol_a_line_with_comments(tmp_path: Path) -> None:
    path = write(tmp_path, "# my universe\n\nspy\n  MSFT   # software\nAAPL\n\n# end\n")
    assert read_universe(path) == ("SPY", "MSFT", "AAPL")
    assert read_universe(str(path)) == ("SPY", "MSFT", "AAPL")


def test_yaml_list(tmp_path: Path) -> None:
    path = write(tmp_path, "# tech\n- SPY\n- msft   # comment\n- '^GSPC'\n", "u.yaml")
    assert read_universe(path) == ("SPY", "MSFT", "^GSPC")
    assert read_universe(write(tmp_path, "[SPY, IBM]\n", "flow.yaml")) == ("SPY", "IBM")


def test_yaml_mapping_with_symbols(tmp_path: Path) -> None:
    path = write(tmp_path, "symbols:\n  - SPY\n  - IBM\n", "u.yml")
    assert read_universe(path) == ("SPY", "IBM")
    assert read_universe(write(tmp_path, "symbols: [GOOG, aapl]\n", "a.yml")) == ("GOOG", "AAPL")
    assert read_universe(write(tmp_path, "symbols: SPY, IBM\n", "b.yml")) == ("SPY", "IBM")


def test_the_demo_universe_file_loads_offline() -> None:
    symbols = read_universe(REPO / "configs" / "universe-demo.txt")
    assert symbols == DEMO
    panel = load_panel(symbols, source="sample")
    assert panel.symbols == DEMO


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("", r"lists no symbols; write one symbol a line"),
        ("# only a comment\n\n", r"lists no symbols"),
        ("- SPY\n- spy\n", r": symbols: SPY is listed twice"),
        ("SPY\nIBM\nspy\n", r": symbols: SPY is listed twice"),
        ("SPY MSFT\n", r"line 1: 'SPY MSFT' holds more than one symbol; write one symbol a line"),
        ("SPY, MSFT\n", r"line 1: 'SPY, MSFT' holds more than one symbol"),
        ("- SPY\n- ON\n", r"entry 2 is the YAML bool True, not a ticker; quote it"),
        ("- 0700\n", r"entry 1 is the YAML int 448, not a ticker; quote it"),
        ("- SPY\n-\n", r"entry 2 is empty; write a ticker after each '-'"),
        ("tickers: [SPY]\n", r"YAML mapping with keys tickers; it must have one key, `symbols:`"),
        ("symbols: [SPY]\nname: x\n", r"YAML mapping with keys symbols, name"),
        ("symbols: 3\n", r"`symbols:` must be a list like \[SPY, MSFT\], got int 3"),
        ("symbols: [SPY\n", r"is not valid YAML"),
        ("- EUR/USD\n", r"symbol must be a ticker like SPY"),
        ("symbols: SPY,,IBM\n", r"entry 2 of 'SPY,,IBM' is empty"),
    ],
)
def test_bad_universe_files_are_one_line_naming_the_file(
    tmp_path: Path, text: str, match: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match=match) as caught:
        read_universe(path)
    message = str(caught.value)
    assert message.startswith(f"universe file {path}")
    assert "\n" not in message


def test_missing_unreadable_and_folder_paths(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"universe file .*nope.txt does not exist; check"):
        read_universe(tmp_path / "nope.txt")
    with pytest.raises(ConfigError, match=r"is a folder; pass a file"):
        read_universe(tmp_path)
    binary = tmp_path / "binary.txt"
    binary.write_bytes(b"SPY\n\xff\xfe\n")
    with pytest.raises(ConfigError, match=r"is not UTF-8 text"):
        read_universe(binary)
