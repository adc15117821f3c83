"""Parse vendor timestamps: datetimes, ISO 8601, epoch numbers and common date formats.

Order of attempts: datetime dtype, an explicit format, ISO 8601 (with offsets: read as UTC),
epoch seconds/ms/us/ns (unit from the magnitude), then the common formats below, which must all
agree on every sampled row. Formats that fit and disagree (01/02/2020 as m/d or d/m) are an
error asking for an explicit format.
"""

from __future__ import annotations

import pandas as pd

from ivybt.errors import ImportFormatError

_DATE_PARTS = (
    "%Y-%m-%d",
    "%Y/%m/%d",
    "%Y.%m.%d",
    "%m/%d/%Y",
    "%d/%m/%Y",
    "%d.%m.%Y",
    "%d-%m-%Y",
    "%m-%d-%Y",
    "%d-%b-%Y",
    "%d %b %Y",
    "%b %d, %Y",
    "%b %d %Y",
    "%m/%d/%y",
    "%d/%m/%y",
    "%Y%m%d",
)
_TIME_PARTS = ("", " %H:%M", " %H:%M:%S", " %H:%M:%S.%f", "T%H:%M", "T%H:%M:%S")
_SNIFF_ROWS = 500


def parse_timestamps(
    values: pd.Series, *, date_format: str | None = None, where: str = "dates"
) -> tuple[pd.DatetimeIndex, str]:
    """Parse a column of timestamps; return them and how they were read.

    Tries, in order: datetime dtype, `date_format`, ISO 8601, epoch numbers (unit from the
    magnitude), then the common formats, which must agree on every row sampled.
    """
    if pd.api.types.is_datetime64_any_dtype(values):
        return pd.DatetimeIndex(values), "already timestamps"
    text = values.astype(str).str.strip()
    if date_format is not None:
        try:
            return pd.DatetimeIndex(pd.to_datetime(text, format=date_format)), date_format
        except (ValueError, TypeError) as err:
            raise ImportFormatError(
                f"{where}: dates do not match --date-format {date_format!r} ({err})"
            ) from err
    if text.str.fullmatch(r"\d{9,19}(\.\d+)?").all():
        return _epoch(text)
    iso_like = text.str.match(r"\d{4}-\d{2}-\d{2}").all()
    if iso_like:
        utc = bool(text.str.contains(r"(?:Z|[+-]\d{2}:?\d{2})$").any())
        try:
            return pd.DatetimeIndex(pd.to_datetime(text, format="ISO8601", utc=utc)), "ISO 8601"
        except (ValueError, TypeError):
            pass
    sample = text.iloc[:: max(1, len(text) // _SNIFF_ROWS)]
    fits: dict[str, pd.DatetimeIndex] = {}
    for fmt in (d + t for d in _DATE_PARTS for t in _TIME_PARTS):
        try:
            fits[fmt] = pd.DatetimeIndex(pd.to_datetime(sample, format=fmt))
        except (ValueError, TypeError):
            continue
    if not fits:
        raise ImportFormatError(_unreadable_dates(text, sample, where))
    distinct = {tuple(v.asi8) for v in fits.values()}
    if len(distinct) > 1:
        raise ImportFormatError(
            f"{where}: dates like {text.iloc[0]!r} fit several formats that disagree "
            f"({', '.join(list(fits)[:3])}); pass --date-format, e.g. '%d/%m/%Y'"
        )
    fmt = next(iter(fits))
    try:
        return pd.DatetimeIndex(pd.to_datetime(text, format=fmt)), fmt
    except (ValueError, TypeError) as err:
        bad = text[pd.to_datetime(text, format=fmt, errors="coerce").isna()]
        raise ImportFormatError(
            f"{where}: most dates read as {fmt!r} but {bad.iloc[0]!r} does not; fix that row "
            "or pass --date-format"
        ) from err


def _unreadable_dates(text: pd.Series, sample: pd.Series, where: str) -> str:
    """Why no format fits: the format most rows fit and the first row it does not fit."""
    best, fewest = None, len(sample)
    for fmt in (d + t for d in _DATE_PARTS for t in _TIME_PARTS):
        failed = int(pd.to_datetime(sample, format=fmt, errors="coerce").isna().sum())
        if failed < fewest:
            best, fewest = fmt, failed
    if best is None:
        return (
            f"{where}: cannot read dates like {text.iloc[0]!r}; pass --date-format, e.g. "
            "'%d/%m/%Y %H:%M' (Python strftime codes)"
        )
    bad = text[pd.to_datetime(text, format=best, errors="coerce").isna()]
    return (
        f"{where}: most dates read as {best!r} but {bad.iloc[0]!r} (row {bad.index[0] + 2} of "
        f"the file) does not; fix that row or pass --date-format"
    )


def _epoch(text: pd.Series) -> tuple[pd.DatetimeIndex, str]:
    numbers = text.astype("float64")
    biggest = float(numbers.abs().max())
    unit = "s" if biggest < 1e11 else "ms" if biggest < 1e14 else "us" if biggest < 1e17 else "ns"
    return pd.DatetimeIndex(pd.to_datetime(numbers, unit=unit, utc=True)), f"epoch {unit} (UTC)"
