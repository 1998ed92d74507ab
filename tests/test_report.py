"""LaTeX tables in the papers' layout and the figure."""
import re

import pandas as pd

from cmhash.report.figures import map_vs_noise
from cmhash.report.tables import latex_document, latex_table


def results_fixture():
    rows = []
    for method, base in (("baseline", 0.60), ("nrch", 0.70), ("scbch", 0.65)):
        for rate in (0.2, 0.5):
            for bits in (16, 64):
                for seed in (0, 1):
                    rows.append(dict(dataset="mirflickr25k", direction="i2t", method=method, protocol="paper",
                                     noise_model="nrch", rate=rate, bits=bits, seed=seed,
                                     map=base - rate / 10 + bits / 1000 + seed * 0.002))
    return pd.DataFrame(rows)


def test_table_layout_best_bold_second_underlined():
    tex = latex_table(results_fixture())
    assert tex.count(r"\begin{tabular}") == 1 and r"\toprule" in tex and r"\bottomrule" in tex
    assert r"\multicolumn{2}{c}{noise 0.2}" in tex and r"\multicolumn{2}{c}{noise 0.5}" in tex
    rows = {line.split(" & ")[0]: line for line in tex.splitlines() if " & paper & " in line}
    # nrch is best in every column, scbch second, baseline plain
    assert rows["nrch"].count(r"\textbf{") == 4
    assert rows["scbch"].count(r"\underline{") == 4
    assert r"\textbf" not in rows["baseline"] and r"\underline" not in rows["baseline"]
    # mean over the two seeds and their spread: 0.70 - 0.02 + 0.016 + 0.001 = 0.697
    assert r"\textbf{0.697}" in rows["nrch"] and r"$\pm$0.001" in rows["nrch"]


def test_structure_is_balanced():
    doc = latex_document(latex_table(results_fixture()))
    assert doc.count(r"\begin{") == doc.count(r"\end{")
    for line in doc.splitlines():
        if line.endswith(r"\\") and " & " in line and "multirow" not in line:
            assert line.count(" & ") == 2 + 4 - 1  # method, protocol, 2 rates x 2 bits
    assert len(re.findall(r"\\cmidrule", doc)) == 2


def test_figure_written(tmp_path):
    map_vs_noise(results_fixture(), tmp_path / "f.pdf", tmp_path / "f.png", bits=64)
    assert (tmp_path / "f.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "f.pdf").read_bytes()[:4] == b"%PDF"


def test_delta_to_published_numbers():
    from cmhash.report.published import MISSING, delta_latex, delta_table, load_published
    from tests.helpers import REPO

    published = load_published(REPO / "config" / "published_results.csv")
    results = results_fixture()
    delta = delta_table(results, published, {"mirflickr25k": "mirflickr25k"})
    nrch = delta[(delta.method == "nrch") & (delta.rate == 0.2) & (delta.bits == 64)].iloc[0]
    row = published[(published.method == "NRCH") & (published.dataset == "mirflickr25k") & (published.direction == "i2t")
                    & (published.noise == 0.2) & (published.bits == 64)].iloc[0]
    assert nrch.published == row["map"] and abs(nrch.delta - (nrch.ours - row["map"])) < 1e-12
    assert "NRCH" in nrch.source
    # no SCBCH row in the published table: kept and marked, not dropped
    scbch = delta[delta.method == "scbch"]
    assert len(scbch) == 4 and scbch.published.isna().all() and (scbch.source == MISSING).all()
    # a dataset without a published counterpart (the demo's) marks every cell
    demo = delta_table(results.assign(dataset="embedded"), published, {"embedded": "embedded"})
    assert demo.published.isna().all()
    assert delta_latex(demo).count("& -- & --") == len(demo)
