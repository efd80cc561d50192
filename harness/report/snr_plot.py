"""Plot for benchmark quality: SNR per benchmark, from the DataFrame `snr_table` returns, written as a
PNG; the Agg backend keeps it usable without a display.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402


def plot_snr_bars(table: pd.DataFrame, path: str | Path, title: str = "Signal-to-noise ratio per benchmark",
                  dropped: frozenset[str] = frozenset()) -> Path:
    """Horizontal bars of SNR, highest at the top; benchmarks with undefined SNR are listed as 'n/a',
    and those in `dropped` (removed by an SNR filter) are drawn in grey."""
    path = Path(path)
    rows = table.sort_values("snr", ascending=True, na_position="first")
    values = rows["snr"].to_numpy(dtype=float)
    fig, ax = plt.subplots(figsize=(7, max(2.5, 0.28 * len(rows) + 1)))
    colours = ["lightgrey" if b in dropped else "tab:blue" for b in rows["benchmark"].astype(str)]
    ax.barh(np.arange(len(rows)), np.nan_to_num(values), color=colours)
    for y, v in enumerate(values):
        if np.isnan(v):
            ax.text(0, y, " n/a", va="center", fontsize=8, color="tab:red")
    ax.set_yticks(np.arange(len(rows)), rows["benchmark"].astype(str).tolist(), fontsize=8)
    source = rows["noise_source"].dropna().unique() if "noise_source" in rows else []
    ax.set_xlabel("SNR (signal / noise)" + (f"; noise: {source[0]}" if len(source) == 1 else ""))
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
