"""Every `ivybt` command printed in the README and the docs runs as printed (#13, point 23).

The command blocks (```bash) of README.md, docs/*.md and configs/README.md are read, and each
`ivybt ...` line whose data is bundled is run through the CLI, in document order, in one
working folder that holds a copy of `configs/` and the docs' example plug-ins
(`my_strategies.py` and `my_rankers.py`, written from docs/strategies.md). The network is
down, as on a new user's offline machine: `--source auto` falls back to the bundled sample,
with its warning.

Placeholders in the docs (`<UTC time>`, `<run>`, a literal run stamp such as
`20261124T120000Z`) stand for the run folder an earlier command wrote; they are replaced by
the newest folder that matches. Skipped, and listed in `NOT_BUNDLED`: commands whose data is
not bundled (Yahoo fetches of symbols not in the sample, a user's own CSV file, a user's
database server).
"""

from __future__ import annotations

import re
import shlex
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from ivybt.cli import cli
from tests.fakes import NetworkDown

REPO = Path(__file__).resolve().parents[1]
DOCUMENTS = [
    REPO / "README.md",
    *sorted((REPO / "docs").glob("*.md")),
    REPO / "configs" / "README.md",
]
NOT_BUNDLED = {
    "ivybt data fetch": "fetches from Yahoo (QQQ is not bundled)",
    "ivybt data import prices.csv": "imports the user's own file",
    "--storage postgresql://ivybt@db.example.com": "needs the user's PostgreSQL server "
    "(tests/test_postgres.py runs these commands on a throw-away one)",
    "--scheduler tcp://10.0.0.5:8786": "needs the user's Dask cluster (tests/test_dask.py runs "
    "grids, folds and batches on a LocalCluster)",
}
_STAMP = re.compile(r"<UTC time>|\d{8}T\d{6}Z")


@dataclass(frozen=True)
class Example:
    document: str
    line: int
    command: str

    def __str__(self) -> str:
        return f"{self.document}:{self.line}: {self.command}"


def command_blocks(path: Path) -> list[tuple[int, list[str]]]:
    """(first line number, lines) of each ```bash block."""
    blocks, current, start = [], None, 0
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if current is None and line.strip() in ("```bash", "```sh"):
            current, start = [], number + 1
        elif current is not None and line.strip() == "```":
            blocks.append((start, current))
            current = None
        elif current is not None:
            current.append(line)
    return blocks


def examples() -> list[Example]:
    found = []
    for path in DOCUMENTS:
        if not path.exists():
            continue
        for start, lines in command_blocks(path):
            joined: list[tuple[int, str]] = []
            for offset, line in enumerate(lines):
                if joined and joined[-1][1].endswith("\\"):
                    joined[-1] = (joined[-1][0], joined[-1][1][:-1] + " " + line.strip())
                else:
                    joined.append((start + offset, line.strip()))
            for number, text in joined:
                if text.startswith("ivybt "):
                    command = text.split("  #")[0].strip()  # a trailing comment
                    found.append(Example(str(path.relative_to(REPO)), number, command))
    return found


EXAMPLES = examples()


def test_the_docs_have_examples() -> None:
    assert len(EXAMPLES) >= 25
    assert any("--sampler nsga2" in example.command for example in EXAMPLES)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("docs-examples")
    shutil.copytree(REPO / "configs", folder / "configs")
    strategies = (REPO / "docs" / "strategies.md").read_text(encoding="utf-8")
    for module in ("my_strategies", "my_rankers", "my_ta_strategies"):
        found = re.search(rf"Save it as `{module}.py`:\s*```python\n(.*?)```", strategies, re.S)
        assert found is not None, f"docs/strategies.md lost its {module}.py example"
        (folder / f"{module}.py").write_text(found.group(1), encoding="utf-8")
    return folder


def _offline(*args: object, **kwargs: object) -> object:
    raise NetworkDown("Could not resolve host: query2.finance.yahoo.com")


_PLACEHOLDER = re.compile(r"results/(\S*?(?:<UTC time>|<run>|\d{8}T\d{6}Z)\S*?)(/\S*)?(?=\s|$)")


def resolve_placeholders(command: str, results: Path) -> str:
    """Replace a run-folder placeholder with the newest run folder that matches it."""

    def newest(match: re.Match[str]) -> str:
        pattern = _STAMP.sub("*", match.group(1)).replace("<run>", "*")
        folders = sorted(
            (p for p in results.glob(pattern) if (p / "manifest.json").exists()),
            key=lambda p: (p / "manifest.json").stat().st_mtime,
        )
        assert folders, f"no run folder matches {match.group(0)!r}: the command writing it failed"
        return f"results/{folders[-1].name}{match.group(2) or ''}"

    return _PLACEHOLDER.sub(newest, command)


@pytest.mark.slow
@pytest.mark.parametrize("example", EXAMPLES, ids=str)
def test_documented_command_runs_as_printed(
    example: Example, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for part, why in NOT_BUNDLED.items():
        if part in example.command:
            pytest.skip(f"not bundled: {why}")
    monkeypatch.chdir(workdir)
    monkeypatch.syspath_prepend(str(workdir))
    monkeypatch.setattr("ivybt.data.yahoo.download", _offline)
    monkeypatch.setattr("ivybt.data.yahoo._sleep", lambda seconds: None)
    command = resolve_placeholders(example.command, workdir / "results")
    result = CliRunner().invoke(cli, shlex.split(command)[1:])
    assert result.exit_code == 0, f"{example}\n{result.output}"
    assert "Traceback" not in result.output and "internal error" not in result.output
