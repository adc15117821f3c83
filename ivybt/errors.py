"""Exceptions and warnings of IvyBT.

Every message says three things: the rule, the value seen, and the fix. The CLI prints an
`IvyBTError` as one line and exits with status 2 for a `ConfigError` (the user's input is
wrong: options, config files, specs, folders of the wrong kind) and 1 for every other error
(data and runtime).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator


class IvyBTError(Exception):
    """Base class of every error IvyBT raises on purpose."""


class ConfigError(IvyBTError, ValueError):
    """A setting or argument is invalid (bad interval, unknown source, start after end...):
    something the user typed or wrote in a config file. The CLI exits with status 2."""


class DataError(IvyBTError):
    """Price data is missing, invalid or cannot be stored."""


class ValidationError(DataError, ValueError):
    """An OHLCV frame breaks a validation rule (see `ivybt.data.validate`)."""


class ImportFormatError(DataError, ValueError):
    """A vendor file cannot be read as OHLCV (no date column, unparsable dates...)."""


class FetchError(DataError):
    """The market-data source failed to answer a request."""


class EmptyDataError(FetchError):
    """The source answered, but with no bars for the requested symbol and range."""


class RateLimitError(FetchError):
    """The source kept refusing with 'too many requests' after every retry."""


class NetworkUnavailableError(FetchError):
    """The source could not be reached at all (DNS failure, refused connection, timeout)."""


class StrategyError(IvyBTError):
    """A strategy failed while running: its code raised, or its signal kernel wrote a target
    other than -1, 0, +1 or outside its output array. The message names the strategy (and
    the bar and value, for a bad target). The CLI exits with status 1."""


class StorageError(IvyBTError):
    """An Optuna study storage cannot be read or written (a journal that cannot be appended
    to, a full disk, a database error). The CLI exits with status 1."""


class DiskFullError(IvyBTError):
    """The disk (or the user's quota) is full: a write failed with ENOSPC or EDQUOT. Files
    are written whole (temporary name, then rename), so nothing is half-written. The CLI
    exits with status 1."""


class StudyInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped a grid or a search between two pieces of work.

    Still a KeyboardInterrupt, so a notebook stops as usual; `done` of `total` `unit` were
    finished (not said when `total` is 0), `during` names the phase (e.g. "computing PBO and
    DSR"), and `message` says so and what happens to the work. The CLI prints it as one line
    and exits with status 130.
    """

    def __init__(
        self, done: int, total: int, unit: str, outcome: str, *, during: str | None = None
    ) -> None:
        self.done = done
        self.total = total
        self.unit = unit
        self.during = during
        where = f" while {during}" if during else ""
        count = f" after {done:,} of {total:,} {unit}" if total else ""
        self.message = f"stopped by Ctrl-C{where}{count}; {outcome}"
        super().__init__(self.message)


@contextlib.contextmanager
def interrupted_phase(during: str, outcome: str | Callable[[], str]) -> Iterator[None]:
    """Ctrl-C inside the block (also as the SystemError of a Numba kernel it interrupted,
    `is_interrupt`) becomes `StudyInterrupted` naming the phase (`during`, e.g. "computing
    PBO and DSR") and `outcome` (or what `outcome()` says then: what was kept); a
    `StudyInterrupted` raised inside keeps its own, more precise, message."""
    try:
        yield
    except StudyInterrupted:
        raise
    except (KeyboardInterrupt, SystemError) as err:
        if not is_interrupt(err):
            raise
        said = outcome if isinstance(outcome, str) else outcome()
        raise StudyInterrupted(0, 0, "", said, during=during) from err


def is_interrupt(error: BaseException) -> bool:
    """Whether `error` is Ctrl-C: a KeyboardInterrupt, or what a Numba kernel raises when the
    interrupt arrives while it runs, a `SystemError` ("... returned a result with an
    exception set") whose chain of causes ends in the KeyboardInterrupt."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, KeyboardInterrupt):
            return True
        if not isinstance(current, SystemError):
            return False
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


class IvyBTWarning(UserWarning):
    """Base class of IvyBT's warnings: suspicious but valid input, or a fallback taken."""


class SampleFallbackWarning(IvyBTWarning):
    """The network was unreachable, so the bundled sample series was used instead."""


class DataRepairWarning(IvyBTWarning):
    """Safe repairs (sort, exact duplicates, rounding-level OHLC) were applied on request."""


class HistoryRevisedWarning(IvyBTWarning):
    """The source changed bars it had served before, so the cached series was re-fetched."""


class DataRangeWarning(IvyBTWarning):
    """The requested range reaches beyond the data available offline (sample or import)."""


class IgnoredSettingsWarning(IvyBTWarning):
    """A configuration file holds settings the command does not use (a grid's search space
    given to `ivybt backtest`); the message says which values the run uses instead."""


class GridSizeWarning(IvyBTWarning):
    """A grid is very large; it runs, in memory-bounded chunks, but takes a while."""

    def __init__(self, n_combinations: int) -> None:
        super().__init__(
            f"the grid has {n_combinations:,} combinations; it runs in chunks within the memory "
            "budget but may take long: narrow the ranges or use steps (-p fast=2:200:2), or "
            "search it with `ivybt optimize`"
        )


class JournalRepairedWarning(IvyBTWarning):
    """An Optuna journal ended in (or held) a torn record; it was cut off and kept aside."""


class SmallSpaceWarning(IvyBTWarning):
    """A search space has no more admissible combinations than the trials asked for."""


class ThinEvidenceWarning(IvyBTWarning):
    """A study's choice rests on too little evidence: a walk-forward fold where no
    combination made `--min-trades` closed trades in-sample, so the fold holds cash."""


class InSampleWarning(IvyBTWarning):
    """A figure was measured on the bars a choice was fitted on: a universe chosen by
    `--select-universe` in a backtest or grid over the same bars it reports."""
