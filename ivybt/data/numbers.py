"""Parse vendor number columns: "$1,234.50", "1.2M" volumes, decimal commas, European grouping.

Values are float64. In ';'-separated files a comma is a decimal comma (European layout); in
other files it is a thousands separator unless a column's values show otherwise.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from ivybt.errors import ImportFormatError

_SUFFIX_SCALE = {"K": 1e3, "M": 1e6, "B": 1e9}


def parse_numbers(values: pd.Series, path: Path, column: str, *, semicolon: bool) -> pd.Series:
    if pd.api.types.is_numeric_dtype(values):
        return values.astype("float64").reset_index(drop=True)
    text = values.astype(str).str.strip().str.replace(r"[$€£\s]", "", regex=True)
    if _decimal_comma(text.str.replace(r"[KMBkmb]$", "", regex=True).dropna(), semicolon):
        grouped = text.str.fullmatch(r"-?\d{1,3}(?:\.\d{3})+(?:,\d*)?[KMBkmb]?")
        grouped = grouped.fillna(False).astype(bool)
        text = text.where(~grouped, text.str.replace(".", "", regex=False))  # 1.234,5
        text = text.str.replace(",", ".", regex=False)
    else:
        text = text.str.replace(",", "", regex=False)  # thousands separator
    scale = pd.Series(1.0, index=text.index)
    suffix = text.str.extract(r"([KMB])$", flags=re.IGNORECASE)[0].str.upper()
    has = suffix.notna()
    if has.any():
        scale[has] = suffix[has].map(_SUFFIX_SCALE).astype("float64")
        text = text.str.replace(r"[KMBkmb]$", "", regex=True)
    numbers = pd.to_numeric(
        text.replace({"": np.nan, "-": np.nan, "null": np.nan}), errors="coerce"
    )
    bad = text[numbers.isna() & text.notna() & ~text.isin(["", "-", "null", "nan", "NaN"])]
    if len(bad):
        raise ImportFormatError(
            f"{path}: column {column!r} has non-numeric values such as {bad.iloc[0]!r} "
            f"(row {bad.index[0] + 2} of the file); fix or remove those rows"
        )
    return (numbers * scale).astype("float64").reset_index(drop=True)


def _decimal_comma(body: pd.Series, semicolon: bool) -> bool:
    """Whether a column of number strings (no suffixes) writes decimals with a comma.

    "1,234.5" and "1,234,567" group thousands with commas, "1.234,5" and "1.234.567" with
    dots, wherever they appear; otherwise a comma is decimal in ';'-separated files and,
    elsewhere, when no value reads as a thousands group ("1,5" and "1,2345" are decimal;
    "1,500" alone is a thousands separator).
    """
    if body.str.fullmatch(r"-?\d{1,3}(?:,\d{3})+\.\d*|-?\d{1,3}(?:,\d{3}){2,}").any():
        return False
    if body.str.fullmatch(r"-?\d{1,3}(?:\.\d{3})+,\d*|-?\d{1,3}(?:\.\d{3}){2,}").any():
        return True
    if semicolon:
        return bool(body.str.contains(",", regex=False).any())
    return bool(
        body.str.fullmatch(r"-?\d+(,\d+)?").all()
        and body.str.contains(r"\d,(?:\d{1,2}|\d{4,})$").any()
    )
