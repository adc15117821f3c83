"""Universes: the symbols of a portfolio, typed (`SPY,MSFT,AAPL`) or read from a file.

Every symbol is normalised with `ivybt.data.cache.normalise_symbol` (upper case, stripped), and a
universe lists each symbol once, in the order given: that order is the column order of the
`ivybt.data.panel.Panel` built from it.

A universe file (`--universe FILE`) is one of

- text, one symbol a line; `#` starts a comment, blank lines are ignored;
- a YAML list (`- SPY`);
- a YAML mapping with a `symbols:` key holding such a list (or a comma-separated string).

YAML reads some bare words as other types (`- ON` is a boolean, `- 0700` an octal number), so an
entry that is not a string is refused with the advice to quote it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from ivybt.data.cache import normalise_symbol
from ivybt.errors import ConfigError

_EXAMPLE = "one symbol a line (SPY, MSFT, ...), a YAML list (- SPY) or `symbols: [SPY, MSFT]`"


def parse_symbols(text: str) -> tuple[str, ...]:
    """ "SPY, msft,AAPL" -> ("SPY", "MSFT", "AAPL"): comma-separated tickers, normalised.

    Empty entries ("SPY,,MSFT", a trailing comma) and a symbol given twice are a `ConfigError`.
    """
    if not isinstance(text, str):
        raise ConfigError(f"symbols must be a comma-separated string like SPY,MSFT, got {text!r}")
    parts = text.split(",")
    for position, part in enumerate(parts, start=1):
        if not part.strip():
            raise ConfigError(
                f"symbols: entry {position} of {text!r} is empty; separate tickers with single "
                "commas, e.g. SPY,MSFT,AAPL"
            )
    return unique_symbols(parts, what="symbols")


def as_symbols(symbols: str | Iterable[str]) -> tuple[str, ...]:
    """A universe given as a comma-separated string or as a sequence of tickers, normalised;
    refuses an empty universe and duplicates."""
    if isinstance(symbols, str):
        found = parse_symbols(symbols)
    else:
        items = list(symbols)
        bad = [item for item in items if not isinstance(item, str)]
        if bad:
            raise ConfigError(f"symbols must be strings like 'SPY', got {bad[0]!r}")
        found = unique_symbols(items, what="symbols")
    if not found:
        raise ConfigError("a universe needs at least one symbol, e.g. SPY,MSFT,AAPL")
    return found


def unique_symbols(items: Iterable[str], *, what: str) -> tuple[str, ...]:
    """Normalise each ticker; a `ConfigError` naming the first symbol given twice."""
    seen: dict[str, str] = {}
    for item in items:
        symbol = normalise_symbol(item)
        if symbol in seen:
            spelled = (
                f" (as {seen[symbol].strip()!r} and {str(item).strip()!r})"
                if seen[symbol].strip() != str(item).strip()
                else ""
            )
            raise ConfigError(f"{what}: {symbol} is listed twice{spelled}; list each symbol once")
        seen[symbol] = str(item)
    return tuple(seen)


def read_universe(path: str | Path) -> tuple[str, ...]:
    """The symbols of a universe file (see the module docstring), normalised, in file order.

    A missing or unreadable file, one with no symbols, a YAML document of another shape, an
    entry that is not a ticker and a duplicate are each a one-line `ConfigError` naming the file.
    """
    file = Path(path)
    text = _read_text(file)
    body = _yaml_body(text, file)
    if body is None:
        symbols = _text_symbols(text, file)
    else:
        symbols = _yaml_symbols(body, file)
    if not symbols:
        raise ConfigError(f"universe file {file} lists no symbols; write {_EXAMPLE}")
    return symbols


def _read_text(file: Path) -> str:
    try:
        return file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"universe file {file} does not exist; check the path, or write one with {_EXAMPLE}"
        ) from None
    except IsADirectoryError:
        raise ConfigError(
            f"universe file {file} is a folder; pass a file with {_EXAMPLE}"
        ) from None
    except UnicodeDecodeError as err:
        raise ConfigError(
            f"universe file {file} is not UTF-8 text ({err.reason} at byte {err.start}); save it "
            "as plain UTF-8 text"
        ) from None
    except OSError as err:
        raise ConfigError(
            f"universe file {file} cannot be read ({err.strerror or err}); check its permissions"
        ) from None


def _yaml_body(text: str, file: Path) -> list[Any] | dict[Any, Any] | None:
    """The YAML list or mapping the file holds, or None when it is plain text (one symbol a
    line reads in YAML as a single string, or as nothing when only comments)."""
    if not any(
        line.lstrip().startswith("-") or ":" in line.split("#", 1)[0] or "[" in line
        for line in text.splitlines()
        if line.split("#", 1)[0].strip()
    ):
        return None
    import yaml

    try:
        body = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise ConfigError(
            f"universe file {file} is not valid YAML{where} ({problem}); write {_EXAMPLE}"
        ) from None
    if isinstance(body, list | dict):
        return body
    raise ConfigError(
        f"universe file {file} holds a YAML {type(body).__name__}, not a list of symbols; "
        f"write {_EXAMPLE}"
    )


def _text_symbols(text: str, file: Path) -> tuple[str, ...]:
    entries: list[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        content = line.split("#", 1)[0].strip()
        if not content:
            continue
        if "," in content or len(content.split()) > 1:
            raise ConfigError(
                f"universe file {file}, line {number}: {content!r} holds more than one symbol; "
                "write one symbol a line"
            )
        entries.append(content)
    return _checked(entries, file)


def _yaml_symbols(body: list[Any] | dict[Any, Any], file: Path) -> tuple[str, ...]:
    if isinstance(body, dict):
        keys = [str(key) for key in body]
        if "symbols" not in body or len(keys) != 1:
            raise ConfigError(
                f"universe file {file} is a YAML mapping with keys {', '.join(keys) or 'none'}; "
                "it must have one key, `symbols:`, holding the list (e.g. symbols: [SPY, MSFT])"
            )
        listed = body["symbols"]
        if isinstance(listed, str):
            return _named(file, parse_symbols, listed)
        if not isinstance(listed, list):
            raise ConfigError(
                f"universe file {file}: `symbols:` must be a list like [SPY, MSFT], got "
                f"{type(listed).__name__} {listed!r}"
            )
        body = listed
    for position, entry in enumerate(body, start=1):
        if entry is None:
            raise ConfigError(
                f"universe file {file}: entry {position} is empty; write a ticker after each '-'"
            )
        if not isinstance(entry, str):
            raise ConfigError(
                f"universe file {file}: entry {position} is the YAML {type(entry).__name__} "
                f"{entry!r}, not a ticker; quote it (- '{entry}'), since YAML reads words such as "
                "ON, NO or 0700 as booleans or numbers"
            )
    return _checked(body, file)


def _checked(entries: Sequence[str], file: Path) -> tuple[str, ...]:
    return _named(file, lambda items: unique_symbols(items, what="symbols"), entries)


def _named(file: Path, parse: Any, value: Any) -> tuple[str, ...]:
    """Run `parse(value)`, prefixing a `ConfigError` with the file's name."""
    try:
        return tuple(parse(value))
    except ConfigError as err:
        raise ConfigError(f"universe file {file}: {err}") from None
