"""LaTeX tables in the papers' layout: a block per (dataset, direction), rows = methods (one
row per protocol), column groups = noise rates, columns = bit lengths; the best value of a
column in bold, the second underlined (booktabs)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from cmhash.cell import SUMMARY_KEYS

DIRECTION_NAMES = {"i2t": r"Image $\rightarrow$ Text", "t2i": r"Text $\rightarrow$ Image", "fused": "Fused"}


def _escape(text: str) -> str:
    for a, b in (("\\", r"\textbackslash{}"), ("_", r"\_"), ("&", r"\&"), ("%", r"\%"), ("#", r"\#")):
        text = text.replace(a, b)
    return text


def summarise(results: pd.DataFrame, value: str = "map") -> pd.DataFrame:
    """Mean and standard deviation over seeds of ``value`` per cell without its seed."""
    grouped = results.groupby(list(SUMMARY_KEYS), dropna=False)[value]
    return grouped.agg(mean="mean", std="std", n="count").reset_index()


def latex_table(results: pd.DataFrame, value: str = "map", caption: str = "mAP@all") -> str:
    """The LaTeX source of every block (one ``table`` per dataset and direction)."""
    summary = summarise(results, value)
    label_free = set(results.loc[results["label_free"], "method"]) if "label_free" in results else set()
    blocks = []
    for (dataset, direction, noise_model), block in summary.groupby(["dataset", "direction", "noise_model"], sort=True):
        blocks.append(_block(block, dataset, direction, noise_model, caption, label_free))
    return "\n".join(blocks)


def _block(block: pd.DataFrame, dataset: str, direction: str, noise_model: str, caption: str,
           label_free: set[str] = frozenset()) -> str:
    rates = sorted(block["rate"].unique())
    bits = sorted(block["bits"].unique())
    rows = sorted({(m, p) for m, p in zip(block["method"], block["protocol"])})
    table = {(m, p): {} for m, p in rows}
    for rec in block.itertuples():
        table[(rec.method, rec.protocol)][(rec.rate, rec.bits)] = (rec.mean, rec.std, rec.n)
    columns = [(r, b) for r in rates for b in bits]
    marks: dict[tuple, dict[tuple, str]] = {row: {} for row in rows}
    for col in columns:
        values = sorted({round(table[row][col][0], 3) for row in rows if col in table[row]}, reverse=True)
        for row in rows:
            if col in table[row]:
                v = round(table[row][col][0], 3)
                marks[row][col] = "best" if values and v == values[0] else ("second" if len(values) > 1 and v == values[1] else "")
    spec = "ll" + "c" * len(columns)  # booktabs: no vertical rules; groups marked by cmidrules
    head1 = " & ".join([r"\multirow{2}{*}{Method}", r"\multirow{2}{*}{Protocol}"]
                       + [rf"\multicolumn{{{len(bits)}}}{{c}}{{noise {r:g}}}" for r in rates]) + r" \\"
    cmid = " ".join(rf"\cmidrule(lr){{{3 + i * len(bits)}-{2 + (i + 1) * len(bits)}}}" for i in range(len(rates)))
    head2 = " & ".join(["", ""] + [f"{b} bits" for _ in rates for b in bits]) + r" \\"
    lines = [r"\begin{table}[t]", r"\centering", r"\small",
             rf"\caption{{{_escape(caption)} on {_escape(dataset)}, {DIRECTION_NAMES.get(direction, _escape(direction))}, noise model {_escape(noise_model)}."
             + (r" $^\dagger$: label-free, trained once and the same at every noise rate." if label_free & {m for m, _ in rows} else "")
             + "}",
             rf"\label{{tab:{dataset}-{direction}-{noise_model}}}".replace("_", "-"),
             rf"\begin{{tabular}}{{{spec}}}", r"\toprule", head1, cmid, head2, r"\midrule"]
    for row in rows:
        cells = []
        for col in columns:
            if col not in table[row]:
                cells.append("--")
                continue
            mean, std, n = table[row][col]
            text = f"{mean:.3f}"
            if marks[row][col] == "best":
                text = rf"\textbf{{{text}}}"
            elif marks[row][col] == "second":
                text = rf"\underline{{{text}}}"
            if n > 1 and np.isfinite(std):
                text += rf"\,{{\scriptsize$\pm${std:.3f}}}"
            cells.append(text)
        name = _escape(row[0]) + (r"$^\dagger$" if row[0] in label_free else "")
        lines.append(" & ".join([name, _escape(row[1])] + cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}", ""]
    return "\n".join(lines)


def latex_document(body: str) -> str:
    """A standalone document around table blocks (compiles with pdflatex)."""
    return "\n".join([r"\documentclass{article}", r"\usepackage{booktabs}", r"\usepackage{multirow}", r"\usepackage{longtable}",
                      r"\usepackage[margin=1cm,landscape]{geometry}", r"\begin{document}", body, r"\end{document}", ""])
