"""`ReportFigures`: what a result's `.plot()` returns, the figures of its report.

Every result object (`BacktestResult`, `GridResult`, `SearchResult`, `WalkForwardResult`,
`MonteCarloResult`) builds its report's figures with one function of `ivybt.report` and
hands the same (heading, figure) pairs both to its HTML page and to `.plot()`, so a notebook
shows exactly what report.html shows.
"""

from __future__ import annotations

import difflib
import html
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, overload

if TYPE_CHECKING:
    import plotly.graph_objects as go


class ReportFigures(Sequence["go.Figure"]):
    """The plotly figures of a report, in the report's order, each with its heading.

    A sequence of `plotly.graph_objects.Figure`: index it by position or by heading
    (``figures["Drawdown"]``), iterate it, or let Jupyter display it (each heading, then its
    figure). `show()` opens every figure with plotly's default renderer.

    Examples
    --------
    >>> import plotly.graph_objects as go
    >>> figures = ReportFigures([("Drawdown", go.Figure()), ("Equity", go.Figure())])
    >>> figures.headings, len(figures), figures["Equity"] is figures[1]
    (['Drawdown', 'Equity'], 2, True)
    """

    def __init__(self, sections: Sequence[tuple[str, go.Figure]]) -> None:
        self._sections = [(str(heading), figure) for heading, figure in sections]

    @property
    def headings(self) -> list[str]:
        """The section headings of the report, one per figure."""
        return [heading for heading, _ in self._sections]

    @property
    def sections(self) -> list[tuple[str, go.Figure]]:
        """(heading, figure) pairs, as the report draws them."""
        return list(self._sections)

    def __len__(self) -> int:
        return len(self._sections)

    @overload
    def __getitem__(self, key: int | str) -> go.Figure: ...

    @overload
    def __getitem__(self, key: slice) -> ReportFigures: ...

    def __getitem__(self, key: int | str | slice) -> go.Figure | ReportFigures:
        if isinstance(key, slice):
            return ReportFigures(self._sections[key])
        if isinstance(key, str):
            for heading, figure in self._sections:
                if heading == key:
                    return figure
            close = difflib.get_close_matches(key, self.headings, n=1, cutoff=0.3)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise KeyError(f"no figure headed {key!r}{hint}; headings: {self.headings}")
        return self._sections[key][1]

    def __iter__(self) -> Iterator[go.Figure]:
        return (figure for _, figure in self._sections)

    def __repr__(self) -> str:
        shown = ", ".join(repr(h) for h in self.headings[:4])
        more = f", ... ({len(self) - 4} more)" if len(self) > 4 else ""
        return f"<ReportFigures: {len(self)} figure(s): {shown}{more}>"

    def show(self, **kwargs: Any) -> None:
        """`Figure.show(**kwargs)` for every figure, in order."""
        for figure in self:
            figure.show(**kwargs)

    def _ipython_display_(self) -> None:  # pragma: no cover - needs IPython
        from IPython.display import HTML, display

        for heading, figure in self._sections:
            display(HTML(f"<h3>{html.escape(heading)}</h3>"))
            display(figure)
