"""The search report (issue #13 point 26): the best parameters as typed, the best trial's
metrics, Optuna's importance, slice and contour plots in the reports' light style, and the
best trials each parameter set once."""

from __future__ import annotations

import re
from pathlib import Path

import optuna
import pytest
from click.testing import CliRunner
from optuna.distributions import IntDistribution

from ivybt.cli import cli
from ivybt.report.backtest import format_metric
from ivybt.report.search import search_report_html, search_sections, search_summary_rows

SPACE = {"a": IntDistribution(1, 9), "b": IntDistribution(1, 9)}


def toy_study(directions: list[str], n_trials: int = 60) -> optuna.Study:
    """A study whose first objective rises with `a`, its second with `b`; every trial
    carries ivybt's metrics as user attributes, and trials 0 and 1 share one parameter set
    (a sampler may propose a combination again)."""
    study = optuna.create_study(directions=directions, sampler=optuna.samplers.RandomSampler(3))
    study.enqueue_trial({"a": 9, "b": 9})
    study.enqueue_trial({"a": 9, "b": 9})
    for _ in range(n_trials):
        trial = study.ask(SPACE)
        sharpe, drawdown = trial.params["a"] / 10, -0.5 + trial.params["b"] / 20
        for name, value in (("sharpe", sharpe), ("max_drawdown", drawdown),
                            ("total_return", sharpe / 2), ("n_trades", 12.0)):  # fmt: skip
            trial.set_user_attr(name, value)
        study.tell(trial, [sharpe, drawdown][: len(directions)])
    return study


def test_summary_shows_the_best_parameters_as_typed_and_its_metrics() -> None:
    study = toy_study(["maximize"])
    rows = dict(search_summary_rows(study, ["sharpe"], storage_url="mem", n_distinct=None))
    best = study.best_trial
    assert rows["Best trial"] == f"#{best.number}: a={best.params['a']}, b={best.params['b']}"
    assert rows["total_return"] == format_metric("total_return", best.user_attrs["total_return"])
    assert rows["total_return"].endswith("%") and rows["sharpe"] == "0.90"
    assert rows["Objectives"] == "sharpe (maximize)"
    assert "{" not in " ".join(rows.values())


def test_sections_add_optunas_plots_in_the_light_style() -> None:
    study = toy_study(["maximize"])
    sections = search_sections(study, ["sharpe"])
    headings = [heading for heading, _ in sections]
    assert headings == [
        "Optimization history (sharpe)",
        "Parameter importances (PED-ANOVA)",
        "Slice plot (sharpe)",
        "Contour plot: a × b (sharpe)",
        "Best 20 trials by sharpe, each parameter set once",
    ]
    for heading, figure in sections:
        assert figure.layout.template.layout.plot_bgcolor == "white", heading
        assert not figure.layout.template.data.bar, heading  # not plotly's default template
    importance = sections[1][1].data[0]
    assert list(importance.y)[-1] == "a"  # the most important on top: sharpe is a / 10


def test_importances_of_several_objectives_each_in_its_direction() -> None:
    study = toy_study(["maximize", "maximize"])
    sections = dict(search_sections(study, ["sharpe", "max_drawdown"]))
    bars = sections["Parameter importances (PED-ANOVA)"].data
    assert [trace.name for trace in bars] == ["sharpe", "max_drawdown"]
    ranked = [dict(zip(trace.y, trace.x, strict=True)) for trace in bars]
    assert ranked[0]["a"] > ranked[0]["b"] and ranked[1]["b"] > ranked[1]["a"]
    assert "Pareto front" in sections


def test_best_trials_list_each_parameter_set_once() -> None:
    study = toy_study(["maximize"])
    table = search_sections(study, ["sharpe"])[-1][1].data[0]
    trials, a_values, b_values = (
        table.cells.values[1],
        table.cells.values[2],
        table.cells.values[3],
    )
    pairs = list(zip(a_values, b_values, strict=True))
    assert len(pairs) == len(set(pairs)) == 20
    assert trials[0] == "#0" and pairs[0] == ("9", "9")  # trial 1 repeats it: left out


def test_a_study_without_complete_trials_says_what_is_missing() -> None:
    study = optuna.create_study()
    trial = study.ask(SPACE)
    study.tell(trial, state=optuna.trial.TrialState.FAIL)
    page = search_report_html(study, ["sharpe"], title="t", storage_url="mem")
    assert "need 2 or more complete trials" in page
    assert "<th>Best trial</th><td>none: no trial completed</td>" in page


def test_the_optimize_page(tmp_path: Path) -> None:
    # issue #13: the page showed {'fast': 5, 'slow': 189}, none of the best trial's metrics,
    # plotly's grey template, and no importance, slice or contour plot
    args = ["optimize", "sma_cross", "-s", "SPY", "--source", "sample", "-p", "fast=2:60",
            "-p", "slow=20:200", "--trials", "40", "--seed", "1", "--start", "2012-01-01",
            "--out", "run"]  # fmt: skip
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    page = Path("run/report.html").read_text(encoding="utf-8")
    assert not re.search(r"\{(&#x27;|')fast", page)
    best = re.search(r"<th>Best trial</th><td>#(\d+): fast=(\d+), slow=(\d+)</td>", page)
    assert best is not None
    for name in ("total_return", "sharpe", "max_drawdown", "n_trades"):
        assert re.search(rf"<th>{name}</th><td>[-\d.,%]+</td>", page), name
    for heading in ("Parameter importances (PED-ANOVA)", "Slice plot (sharpe)",
                    "Contour plot: fast × slow (sharpe)"):  # fmt: skip
        assert f"<h2>{heading}</h2>" in page
    assert '"plot_bgcolor":"#E5ECF6"' not in page  # plotly's grey default template


@pytest.mark.parametrize("value", [5, 2.5, 3.0, "x"])
def test_params_text(value: object) -> None:
    from ivybt.report.search import params_text

    expected = {5: "p=5", 2.5: "p=2.5", 3.0: "p=3", "x": "p=x"}
    assert params_text({"p": value}) == expected[value]  # type: ignore[index]
