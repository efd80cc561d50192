"""The CSD part of `harness rank`: its options, reading a rounds file, and its two report tables."""

from __future__ import annotations

import re
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Annotated

import typer

from harness.cli.commands._common import err
from harness.common.errors import HarnessError

_PANEL = "CSD (Swiss tournament)"

RoundsOption = Annotated[str, typer.Option(
    "--rounds", help="'auto' (one benchmark per round, table order) or a TOML/YAML file of rounds.",
    rich_help_panel=_PANEL)]
EliminateOption = Annotated[str, typer.Option(
    "--eliminate", help="Elimination schedule T: one value, or several comma-separated for the "
    "failure-sensitivity analysis (first must be 0); a per-round schedule is slash-separated, e.g. 0/1/1/2.",
    rich_help_panel=_PANEL)]
NSimsOption = Annotated[int, typer.Option("--n-sims", help="Monte Carlo tournaments.", rich_help_panel=_PANEL)]
TiebreakOption = Annotated[str, typer.Option(
    "--tiebreak", help="random, or index (the authors' reference: earlier rows are cut first on ties).",
    rich_help_panel=_PANEL)]
MissingOption = Annotated[str, typer.Option(
    "--missing", help="A missing round strength: error, coin (reference behaviour) or loss.",
    rich_help_panel=_PANEL)]
ItemBootstrapOption = Annotated[bool, typer.Option(
    "--item-bootstrap", help="Resample items inside the simulation (needs per-item results); widens CIs. With "
    "--estimates, each estimated cell is drawn from N(estimate, se) instead.",
    rich_help_panel=_PANEL)]
PlotOption = Annotated[Path | None, typer.Option(
    "--plot", help="Write the failure-sensitivity scatter (base score vs drop) as PNG.", rich_help_panel=_PANEL)]


@dataclass(frozen=True)
class CSDSettings:
    rounds: str = "auto"
    eliminate: str = "0"
    n_sims: int = 100_000
    seed: int = 0
    tiebreak: str = "random"
    missing: str = "error"
    item_bootstrap: bool = False
    cell_stderr: Any = None  # adaptive estimates' standard errors (competitors x benchmarks), drawn in place of items

    def schedules(self) -> list[int | list[int]]:
        try:
            parts = [p.strip() for p in self.eliminate.split(",") if p.strip()]
            return [[int(t) for t in p.split("/")] if "/" in p else int(p) for p in parts]
        except ValueError:
            raise HarnessError(f"--eliminate '{self.eliminate}': expected integers like 0,1,2 or 0/1/1") from None

    def ranker_params(self, table) -> dict:
        """Keyword arguments for csd_ranking (first schedule), as `--method all` uses it."""
        return {"rounds": load_rounds(self.rounds, table), "eliminate": self.schedules()[0], "n_sims": self.n_sims,
                "seed": self.seed, "tiebreak": self.tiebreak, "missing": self.missing,
                **self.resampling()}

    def resampling(self) -> dict:
        """Items resampled inside the simulation, or with estimates their cells drawn from N(estimate, se)."""
        if self.item_bootstrap and self.cell_stderr is not None:
            return {"cell_stderr": self.cell_stderr}
        return {"item_bootstrap": self.item_bootstrap}


# tournaments/ speaks Python (missing='coin', n_sims=100); a person at the CLI typed --missing coin, --n-sims 100
_KEYWORD = re.compile(r"\b(missing|tiebreak|eliminate|rounds|n_sims|item_bootstrap)="
                      r"(?:'([^']*)'|\"([^\"]*)\"|([\w./-]+))")


def cli_words(text: str) -> str:
    """A library message with each keyword argument it names written as the CLI flag that sets it."""
    def flag(match: re.Match) -> str:
        value = next(group for group in match.groups()[1:] if group is not None)
        return f"--{match.group(1).replace('_', '-')} {value}"

    return _KEYWORD.sub(flag, text)


@contextmanager
def cli_errors(what: str):
    """A ValueError from tournaments/ (a missing strength, a bad schedule) as one HarnessError line in CLI words."""
    try:
        yield
    except ValueError as exc:
        raise HarnessError(f"{what}: {cli_words(str(exc))}") from None


def ranked(table, settings: CSDSettings):
    """The CSD Ranking with the first schedule (what --save stores), refused in CLI words where it cannot run."""
    from tournaments.methods import rank

    with cli_errors("csd"):
        return rank(table, "csd", **settings.ranker_params(table))


def load_rounds(spec: str, table):
    """None for 'auto', else the rounds of a TOML or YAML file, checked against the table."""
    from harness.common.spec_files import one_line, read_toml
    from tournaments.rounds import parse_rounds

    if spec == "auto":
        return None
    path = Path(spec)
    where = one_line(f"--rounds {path}")
    if not path.is_file():
        raise HarnessError(f"{where}: no such file (or use 'auto')")
    data = _read_yaml(path, where) if path.suffix in (".yaml", ".yml") else read_toml(path, "--rounds")
    try:
        return parse_rounds(data, table)
    except (ValueError, KeyError) as exc:  # round errors (KeyError: an unknown benchmark)
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        raise HarnessError(f"{where}: {one_line(str(message))}") from None


def _read_yaml(path: Path, where: str):
    """The YAML document in `path`; a syntax or encoding problem is one line with the line number."""
    import yaml

    from harness.common.spec_files import one_line

    try:
        return yaml.safe_load(path.read_text(encoding="utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise HarnessError(f"{where}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise HarnessError(f"{where}: not valid YAML ({one_line(str(exc.problem or exc.context))}{at})") from None
    except (yaml.YAMLError, RecursionError) as exc:
        detail = str(exc).splitlines()[0] if str(exc) else "nested too deeply"
        raise HarnessError(f"{where}: not valid YAML ({one_line(detail)})") from None


def report(table, settings: CSDSettings, published, plot: Path | None, tables) -> None:
    """The CSD leaderboard (E[S_m], SE, CI, P(rank 1)); with several schedules, the sensitivity table too."""
    from tournaments.sensitivity import failure_sensitivity
    from tournaments.swiss import simulate

    rounds = load_rounds(settings.rounds, table)
    schedules = settings.schedules()
    common = dict(n_sims=settings.n_sims, seed=settings.seed, tiebreak=settings.tiebreak,
                  missing=settings.missing, **settings.resampling())
    with cli_errors("csd"):
        if len(schedules) == 1:
            base, sensitivity = simulate(table, rounds, eliminate=schedules[0], **common), None
        else:
            sensitivity = failure_sensitivity(table, rounds, schedules=schedules, **common)
            base = sensitivity.results[0]
    frame = base.to_frame()
    frame.insert(0, "rank", range(1, len(frame) + 1))
    if published is not None:
        frame["published"] = frame["competitor"].map(published)
    checked = "" if base.games_check else " (CHECK FAILED: a total score differs from games played)"
    notes = (f"{settings.n_sims} tournaments over {len(base.rounds)} rounds, eliminate {settings.eliminate.split(',')[0]}, "
             f"tiebreak {settings.tiebreak}, seed {settings.seed}; every tournament played {base.games_played} "
             f"games{checked}",)
    tables.add("csd", frame, title="CSD: expected Swiss-tournament score E[S_m]", notes=notes)
    if sensitivity is None:
        if plot is not None:
            raise HarnessError("--plot: the failure-sensitivity plot needs several schedules, e.g. --eliminate 0,1,2")
        return
    tables.add("csd_sensitivity", sensitivity.to_frame(),
               title="CSD failure sensitivity: E[S_m] per elimination schedule",
               notes=("drop = E(last schedule) - E(T=0); label: quadrant by median base score and median drop",))
    if plot is not None:
        from harness.report.csd_plot import plot_failure_sensitivity

        plot_failure_sensitivity(sensitivity, plot)
        err.print(f"plot written to {plot}")
