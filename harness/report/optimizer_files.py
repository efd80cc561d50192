"""The files of `harness hpo report`: one optimizer comparison as CSV tables and PNG figures.

Rendering belongs to the report package; it reads the Comparison hpo.report computes, so imports run
one way (harness.report -> hpo).
"""

from __future__ import annotations

from pathlib import Path

from harness.report.cd_diagram import plot_cd_diagram
from hpo.plots import plot_anytime, plot_profile
from hpo.report import Comparison, optimizer_table


def write(c: Comparison, out_dir: Path, title: str) -> list[Path]:
    """CSV tables and PNG figures into `out_dir`; returns the paths written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, frame in (("leaderboard", optimizer_table(c)), ("final_per_seed", c.final), ("per_task", c.cells),
                        ("anytime", c.curves), ("profile", c.profile)):
        path = out_dir / f"{name}.csv"
        frame.to_csv(path, index=False)
        written.append(path)
    if c.tests.wilcoxon is not None:
        path = out_dir / "wilcoxon_holm.csv"
        c.tests.wilcoxon.to_csv(path, index=False)
        written.append(path)
    if c.tests.friedman is not None:
        written.append(plot_cd_diagram(c.tests.friedman, out_dir / "cd_nemenyi.png", title=f"{title}: Nemenyi"))
        written.append(plot_cd_diagram(c.tests.friedman, out_dir / "cd_wilcoxon_holm.png", c.tests.wilcoxon,
                                       title=f"{title}: Wilcoxon-Holm"))
    written.append(plot_anytime(c.curves, out_dir / "anytime.png", title))
    written.append(plot_profile(c.profile, out_dir / "profile.png", f"{title}: performance profile"))
    return written
