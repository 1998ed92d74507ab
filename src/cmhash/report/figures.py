"""seaborn figures of the results."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from cmhash.io import atomic_path  # noqa: E402


def map_vs_noise(results: pd.DataFrame, pdf: str | Path, png: str | Path, bits: int | None = None) -> None:
    """mAP against noise rate, a line per method and protocol (band = spread over seeds), a panel
    per dataset and direction, at ``bits`` (default: the largest bit length run)."""
    data = results.copy()
    bits = bits if bits in set(data["bits"]) else int(data["bits"].max())
    data = data[data["bits"] == bits]
    data["method / protocol"] = data["method"] + " / " + data["protocol"]
    data["panel"] = data["dataset"] + " " + data["direction"]
    sns.set_theme(style="whitegrid", context="paper")
    grid = sns.relplot(data=data, x="rate", y="map", hue="method / protocol", col="panel", kind="line",
                       marker="o", errorbar="sd", height=3.2, aspect=1.1, col_wrap=min(3, data["panel"].nunique()))
    grid.set_axis_labels("training-label noise rate", f"mAP@all ({bits} bits)")
    grid.set_titles("{col_name}")
    for path in (pdf, png):
        with atomic_path(path) as tmp:
            grid.figure.savefig(tmp, dpi=150, bbox_inches="tight", format=Path(path).suffix[1:])
    plt.close(grid.figure)
