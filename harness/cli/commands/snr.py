"""`harness snr`: signal, noise and SNR of every benchmark, to see which ones are worth ranking on."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from harness.cli.commands._common import out
from harness.common.errors import HarnessError
from harness.common.outputs import check_output
from harness.cli.options import (
    AllowMixedOption, AverageCheckpointsOption, BusyTimeoutOption, DbOption, FormatOption, RankLimitOption,
    SourceOption,
)
from harness.common.paths import default_db


def snr(
    db: DbOption = default_db(),
    source: SourceOption = None,
    fmt: FormatOption = "table",
    plot: Annotated[Optional[Path], typer.Option("--plot", help="Also draw SNR per benchmark to this PNG.")] = None,
    last: Annotated[Optional[int], typer.Option(
        "--last", min=2, help="Checkpoints per run in the noise window (default 5, the paper's small-model "
        "setting; it uses 30 for dense OLMo 2 curves).", show_default=False)] = None,
    average: AverageCheckpointsOption = None,
    limit: RankLimitOption = None,
    allow_mixed: AllowMixedOption = False,
    busy_timeout: BusyTimeoutOption = 0.0,
) -> None:
    """One row per benchmark: signal (spread of final scores), noise, SNR, and which noise it is."""
    from harness.report.formats import check_format, render
    from harness.tables.snr import DEFAULT_LAST, benchmark_snr
    from harness.store import Store

    check_format(fmt)
    if limit is not None and source is not None:
        raise HarnessError(f"--limit {limit}: picks evaluated runs; it does not apply to --source")
    if plot is not None:
        if plot.suffix.lower() != ".png":
            raise HarnessError(f"--plot {plot}: give a .png path")
        check_output(f"--plot {plot}", plot, db)
    with Store.open(db, read_only=True, busy_timeout=busy_timeout) as store:
        table = benchmark_snr(store, source, last or DEFAULT_LAST, limit, allow_mixed, average)
    table = table.sort_values("snr", ascending=False, na_position="last", kind="stable").reset_index(drop=True)
    undefined = int(table["snr"].isna().sum())
    notes = (f"{undefined} benchmark(s) without a defined SNR; see the note column",) if undefined else ()
    render(table, fmt, out, title=f"signal and noise ({source or 'evaluated runs'})", notes=notes)
    if plot is not None:
        from harness.report.snr_plot import plot_snr_bars

        plot.parent.mkdir(parents=True, exist_ok=True)
        plot_snr_bars(table, plot, title=f"SNR per benchmark ({source or 'evaluated runs'})")
