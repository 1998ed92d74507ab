"""The published tables whole, ours beside them: a "paper table" per (dataset of the grid,
published source holding the dataset's benchmark family).

Every method of the published table is a row, in the paper's layout (a block per retrieval
direction, a column group per noise rate, a column per bit length). Where the grid ran the
method (our name mapped to the published one by :func:`cmhash.report.published.published_name`,
the one place methods map; the ``nrch`` noise model the published tables use), our mean ± std
over seeds with their count n stand beside the published figure per protocol (``paper``,
``sound``), with ours minus published; where it did not, the published figure stands alone,
marked not run here with the reason (:func:`cmhash.report.published.not_run_reason`). Methods of
the grid the published table does not hold (the baseline, SCBCH, DCGMH, named variants) follow
as rows of their own, with no published figure.

A dataset whose source is no published benchmark (family ``None``: the generated ``embedded``
set) borrows the layout of :data:`cmhash.families.FALLBACK_FAMILY`; its table says that the
numbers are not comparable, and no difference is computed.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from cmhash.data import SOURCES
from cmhash.families import FALLBACK_FAMILY
from cmhash.report.published import (
    MISSING,
    NO_PUBLIC_CODE,
    NOT_IMPLEMENTED,
    NOT_IN_GRID,
    not_run_reason,
    published_name,
)
from cmhash.report.tables import DIRECTION_NAMES, _escape

#: The noise model of the published tables; our cells under any other are not compared.
NOISE_MODEL = "nrch"
PROTOCOLS = ("paper", "sound")
RUN, NOT_RUN, OURS_ONLY = "run here", "not run here", "ours only"
#: The benchmark families' names in captions.
FAMILY_TITLES = {"mirflickr25k": "MIRFlickr-25K", "nuswide21": "NUS-WIDE (21 classes)",
                 "nuswide10": "NUS-WIDE (TC-10)", "mscoco": "MS-COCO", "iaprtc12": "IAPR TC-12",
                 "wikipedia": "Wikipedia"}
#: Marks of the rows not run here, by reason (legend in each caption).
REASON_MARKS = {NO_PUBLIC_CODE: r"\dagger", NOT_IMPLEMENTED: r"\ddagger", NOT_IN_GRID: r"\S"}

#: The CSV's columns: one row per (table, row, direction, noise rate, bits).
COLUMNS = ["dataset", "data_source", "published_source", "layout", "comparable", "row", "method", "status", "reason",
           "direction", "rate", "bits", "published",
           *[f"{p}_{stat}" for p in PROTOCOLS for stat in ("mean", "std", "n", "delta")], "note"]


@dataclass(frozen=True)
class PaperTable:
    """One published table (``published_source``, layout of ``layout``) beside the grid's
    ``dataset``; ``frame`` holds its :data:`COLUMNS`, rows in the paper's order."""

    dataset: str
    data_source: str | None
    published_source: str
    layout: str
    comparable: bool
    frame: pd.DataFrame

    @property
    def note(self) -> str:
        """The comparability statement of the caption and the CSV's ``note`` column."""
        return _note(self.dataset, self.data_source, self.layout, self.comparable)


def _note(dataset: str, data_source: str | None, layout: str, comparable: bool) -> str:
    title = FAMILY_TITLES.get(layout, layout)
    if comparable:
        return f"{dataset} is the {title} benchmark (source {data_source})."
    what = f"source {data_source}" if data_source else "source unknown"
    return (f"NOT COMPARABLE: {dataset} ({what}) is no published benchmark; it borrows the {title} layout, "
            f"whose published numbers are shown for reference only, and no difference is computed.")


def dataset_family(dataset: str, dataset_sources: Mapping[str, str]) -> tuple[str | None, str | None]:
    """(source, benchmark family) of ``dataset``; the family is None for a source of none (or an unknown one)."""
    source = dataset_sources.get(dataset)
    spec = SOURCES.get(source or "")
    return source, (spec.family if spec else None)


def _normalise(frame: pd.DataFrame, rate: str) -> pd.DataFrame:
    return frame.assign(**{rate: frame[rate].astype(float).round(6)}, bits=frame["bits"].astype(int))


def paper_tables(results: pd.DataFrame, published: pd.DataFrame,
                 dataset_sources: Mapping[str, str]) -> list[PaperTable]:
    """A :class:`PaperTable` per dataset of ``results`` and published source holding its
    family (a dataset of no family: :data:`FALLBACK_FAMILY`'s); a dataset whose family no
    published source holds gets none."""
    pub = _normalise(published, "noise")
    tables = []
    for dataset in sorted(results["dataset"].unique()) if len(results) else []:
        data_source, family = dataset_family(dataset, dataset_sources)
        layout = family if family is not None else FALLBACK_FAMILY
        ours = _normalise(results[results["dataset"] == dataset], "rate")
        rows = pub[pub["dataset"] == layout]
        for source in dict.fromkeys(rows["source"]):
            comparable = family is not None
            frame = _table(dataset, ours, rows[rows["source"] == source], comparable)
            frame = frame.assign(data_source=data_source, published_source=source, layout=layout, comparable=comparable,
                                 note=_note(dataset, data_source, layout, comparable))[COLUMNS]
            tables.append(PaperTable(dataset, data_source, source, layout, comparable, frame))
    return tables


def _table(dataset: str, ours: pd.DataFrame, pub: pd.DataFrame, comparable: bool) -> pd.DataFrame:
    names = list(dict.fromkeys(pub["method"]))  # the paper's row order
    directions = [d for d in DIRECTION_NAMES if d in set(pub["direction"])]
    directions += sorted(set(pub["direction"]) - set(directions))
    rates, bits = sorted(pub["noise"].unique()), sorted(pub["bits"].unique())
    cells = [(d, r, b) for d in directions for r in rates for b in bits]
    published = {(m, d, r, b): v for m, d, r, b, v in
                 zip(pub["method"], pub["direction"], pub["noise"], pub["bits"], pub["map"])}
    compared = ours[(ours["noise_model"] == NOISE_MODEL) & ours["direction"].isin(directions)
                    & ours["rate"].isin(rates) & ours["bits"].isin(bits)]
    stats = compared.groupby(["method", "protocol", "direction", "rate", "bits"])["map"].agg(["mean", "std", "count"])
    values = {key: (row["mean"], row["std"], int(row["count"])) for key, row in stats.iterrows()}
    in_table = set(compared["method"])
    by_name = {published_name(m): m for m in sorted(set(ours["method"])) if published_name(m) in names}
    extras = sorted(m for m in in_table if published_name(m) not in names)

    records = []
    for row, method in [(n, by_name.get(n)) for n in names] + [(m, m) for m in extras]:
        if method in in_table:
            status, reason = (RUN, "") if row in names else (OURS_ONLY, MISSING)
        else:
            status, reason = NOT_RUN, _reason(row, method, ours)
        for direction, rate, b in cells:
            pub_value = published.get((row, direction, rate, b), np.nan) if row in names else np.nan
            record = {"dataset": dataset, "row": row, "method": method or "", "status": status, "reason": reason,
                      "direction": direction, "rate": rate, "bits": b, "published": pub_value}
            for protocol in PROTOCOLS:
                mean, std, n = values.get((method, protocol, direction, rate, b), (np.nan, np.nan, 0))
                record.update({f"{protocol}_mean": mean, f"{protocol}_std": std, f"{protocol}_n": n,
                               f"{protocol}_delta": mean - pub_value if comparable else np.nan})
            records.append(record)
    return pd.DataFrame(records)


def _reason(row: str, method: str | None, ours: pd.DataFrame) -> str:
    """Why a row of the published table has no value of ours."""
    if method is None:
        return not_run_reason(row)
    runs = ours[ours["method"] == method]
    models = sorted(set(runs["noise_model"]))
    if NOISE_MODEL not in models:
        return f"run here only under noise model {', '.join(models)}; the published table uses {NOISE_MODEL}"
    return "run here at none of the published noise rates and bit lengths"


# -- LaTeX -------------------------------------------------------------------------------------
def _number(value: float, signed: bool = False) -> str:
    return "--" if not np.isfinite(value) else (f"{value:+.3f}" if signed else f"{value:.3f}")


def _ours(mean: float, std: float, n: int, show_n: bool) -> str:
    if n == 0 or not np.isfinite(mean):
        return "--"
    text = f"{mean:.3f}"
    if n > 1 and np.isfinite(std):
        text += rf"{{\tiny$\pm${std:.3f}}}"
    return text + (rf"{{\tiny\,({n})}}" if show_n else "")


def paper_table_latex(table: PaperTable, label: str | None = None) -> str:
    """A booktabs ``longtable`` in the paper's layout: a block per direction, a row per
    published method (its published figure; where run here, ours per protocol and, when
    comparable, ours minus published), the rows not run here marked by reason."""
    frame = table.frame
    rates, bits = sorted(frame["rate"].unique()), sorted(frame["bits"].unique())
    columns = [(r, b) for r in rates for b in bits]
    protocols = [p for p in PROTOCOLS if frame[f"{p}_n"].sum() > 0]
    width = 2 + len(columns)
    head1 = " & ".join(["Method", ""] + [rf"\multicolumn{{{len(bits)}}}{{c}}{{noise {r:g}}}" for r in rates]) + r" \\"
    cmid = " ".join(rf"\cmidrule(lr){{{3 + i * len(bits)}-{2 + (i + 1) * len(bits)}}}" for i in range(len(rates)))
    head2 = " & ".join(["", ""] + [f"{b} bits" for _ in rates for b in bits]) + r" \\"
    used = [reason for reason in REASON_MARKS if (frame["reason"] == reason).any()]
    others = frame[(frame["status"] == NOT_RUN) & ~frame["reason"].isin(list(REASON_MARKS))]
    legend = "; ".join([f"${REASON_MARKS[r]}$ not run here: {r}" for r in used]
                       + [f"$^*${_escape(row)} not run here: {_escape(reason)}"
                          for row, reason in dict(zip(others["row"], others["reason"])).items()])
    title = FAMILY_TITLES.get(table.layout, table.layout)
    caption = (rf"\textbf{{{_escape(table.note)}}} " if not table.comparable else _escape(table.note) + " ") + (
        rf"mAP@all, {title}: the published table ({_escape(table.published_source)}), every published method a row; "
        rf"ours (noise model {NOISE_MODEL}, mean $\pm$ std over n seeds; n in parentheses where it varies) per protocol"
        + (r", and $\Delta$ = ours $-$ published" if table.comparable else "")
        + ". Rows marked ``ours only'' have no published figure. ``--'': no value." + (f" {legend}." if legend else ""))
    label = label or f"tab:paper-{table.dataset}-{table.layout}".replace("_", "-")
    header = [r"\toprule", head1, cmid, head2, r"\midrule"]
    lines = [r"\begingroup", r"\scriptsize", r"\setlength{\tabcolsep}{3pt}", r"\setlength{\LTcapwidth}{\textwidth}",
             rf"\begin{{longtable}}{{ll{'c' * len(columns)}}}", rf"\caption{{{caption}}}\label{{{label}}} \\",
             *header, r"\endfirsthead",
             rf"\multicolumn{{{width}}}{{l}}{{\textit{{(continued)}}}} \\", *header, r"\endhead",
             r"\bottomrule", r"\endlastfoot"]
    for k, (direction, block) in enumerate(frame.groupby("direction", sort=False)):
        if k:
            lines.append(r"\midrule")
        lines.append(rf"\multicolumn{{{width}}}{{l}}{{\textit{{{DIRECTION_NAMES.get(direction, _escape(direction))}}}}} \\")
        for row, part in block.groupby("row", sort=False):
            lines += _row_lines(row, part.set_index(["rate", "bits"]), columns, protocols, table.comparable)
    lines += [r"\end{longtable}", r"\endgroup", ""]
    return "\n".join(lines)


def _row_lines(row: str, part: pd.DataFrame, columns: Sequence[tuple], protocols: Sequence[str],
               comparable: bool) -> list[str]:
    first = part.iloc[0]
    mark = REASON_MARKS.get(first.reason, "*") if first.status == NOT_RUN else ""
    name = _escape(row) + (rf"$^{{{mark}}}$" if mark else "")
    lines = []
    if first.status != OURS_ONLY:
        lines.append([name, "published"] + [_number(part.at[c, "published"]) for c in columns])
    if first.status != NOT_RUN:
        for protocol in protocols:
            ns = set(part[f"{protocol}_n"]) - {0}
            show_n = len(ns) > 1
            label = f"ours, {protocol}" + (f" (n={ns.pop()})" if len(ns) == 1 else "")
            lines.append(["" if lines else name, label]
                         + [_ours(part.at[c, f"{protocol}_mean"], part.at[c, f"{protocol}_std"],
                                  int(part.at[c, f"{protocol}_n"]), show_n) for c in columns])
            if comparable and first.status == RUN:
                lines.append(["", rf"$\Delta$ {protocol}"]
                             + [_number(part.at[c, f"{protocol}_delta"], signed=True) for c in columns])
    return [" & ".join(cells) + r" \\" for cells in lines]


def paper_tables_latex(tables: Sequence[PaperTable], without: Sequence[str] = ()) -> str:
    """Every paper table, each on its own page; ``without``: sentences on the datasets of the
    grid no published table holds."""
    parts = [paper_table_latex(t, label=f"tab:paper-{i + 1}") + r"\clearpage" for i, t in enumerate(tables)]
    parts += [_escape(sentence) + "\n" for sentence in without]
    if not parts:
        parts = ["No paper table: the grid ran nothing.\n"]
    return "\n".join(parts)


def without_table(results: pd.DataFrame, tables: Sequence[PaperTable],
                  dataset_sources: Mapping[str, str]) -> list[str]:
    """A sentence per dataset of ``results`` that no published table holds."""
    covered = {t.dataset for t in tables}
    out = []
    for dataset in sorted(set(results["dataset"]) - covered) if len(results) else []:
        source, family = dataset_family(dataset, dataset_sources)
        out.append(f"No paper table for {dataset} (source {source}, benchmark {family}): "
                   f"no published table of config/published_results.csv holds that benchmark.")
    return out


def paper_tables_frame(tables: Sequence[PaperTable]) -> pd.DataFrame:
    """Every paper table's rows (:data:`COLUMNS`), one CSV."""
    if not tables:
        return pd.DataFrame(columns=COLUMNS)
    return pd.concat([t.frame for t in tables], ignore_index=True)[COLUMNS]


__all__ = ["COLUMNS", "NOISE_MODEL", "NOT_RUN", "OURS_ONLY", "PROTOCOLS", "RUN", "PaperTable", "dataset_family",
           "paper_table_latex", "paper_tables", "paper_tables_frame", "paper_tables_latex", "without_table"]
