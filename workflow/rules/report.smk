# LaTeX tables and figures from every cell's outputs, each registered for
# `snakemake --report results/report.html` with its caption (workflow/report/*.rst).


report: "../report/workflow.rst"


# Figure name (file stem under results/report/ and caption file) -> its title in the HTML
# report; the names are cmhash.report.FIGURES.
REPORT_FIGURES = {
    "map_vs_noise": "mAP against noise rate",
    "precision_at_n": "precision@N",
    "pr_curves": "precision-recall",
    "selection_diagnostics": "noise-detection diagnostics",
    "delta_published": "ours minus published",
}


rule report:
    input:
        metrics=metrics_files(),
        curves=[path.replace("metrics.json", "curves.npz") for path in metrics_files()],
        histories=[path.replace("metrics.json", "history.csv") for path in metrics_files()],
    output:
        csv=report(
            "results/report/results.csv",
            caption="../report/results.rst",
            category="Tables",
            labels={"table": "results (CSV)"},
        ),
        tables=report(
            "results/report/tables.tex",
            caption="../report/tables.rst",
            category="Tables",
            labels={"table": "mAP tables (LaTeX)"},
        ),
        delta_csv=report(
            "results/report/delta_published.csv",
            caption="../report/delta_published_table.rst",
            category="Tables",
            labels={"table": "ours minus published (CSV)"},
        ),
        delta_tex=report(
            "results/report/delta_published.tex",
            caption="../report/delta_published_table.rst",
            category="Tables",
            labels={"table": "ours minus published (LaTeX)"},
        ),
        paper_csv=report(
            "results/report/paper_tables.csv",
            caption="../report/paper_tables.rst",
            category="Tables",
            labels={"table": "published tables, ours beside (CSV)"},
        ),
        paper_tex=report(
            "results/report/paper_tables.tex",
            caption="../report/paper_tables.rst",
            category="Tables",
            labels={"table": "published tables, ours beside (LaTeX)"},
        ),
        # <name>_pdf and <name>_png for each figure, grouped by figure in the HTML report
        **{
            f"{name}_{fmt}": report(
                f"results/report/{name}.{fmt}",
                caption=f"../report/{name}.rst",
                category="Figures",
                subcategory=title,
                labels={"figure": title, "format": fmt.upper()},
            )
            for name, title in REPORT_FIGURES.items()
            for fmt in ("pdf", "png")
        },
    log:
        "results/logs/report.log",
    conda:
        "../../envs/cmhash.yaml"
    params:
        published="config/published_results.csv",
        sources={name: ds["source"] for name, ds in config["datasets"].items()},
        figure_bits=(config.get("report") or {}).get("figure_bits"),
        grid=[c.as_dict() for c in CELLS],  # label-free runs fill every noise column of their cells
    script:
        "../scripts/report.py"


# The robustness study (config `report.robustness`, e.g. config/robustness.yaml): per dataset,
# mAP against the noise rate, the mAP table with every method tested against the reference,
# and the selection modules' AUC against the true corruption mask (cmhash.report.robustness).
# Each dataset's job reads only that dataset's runs (robustness_metrics, common.smk).
ROBUSTNESS_FIGURE_TITLE = "mAP against noise rate, per noise model"


rule robustness:
    input:
        metrics=robustness_metrics,
        histories=lambda wildcards: [p.replace("metrics.json", "history.csv") for p in robustness_metrics(wildcards)],
    output:
        figure_pdf=report(
            f"{layout.ROBUSTNESS}/map_vs_rate.pdf",
            caption="../report/robustness_figure.rst",
            category="Robustness",
            subcategory="{dataset}",
            labels={"dataset": "{dataset}", "output": ROBUSTNESS_FIGURE_TITLE, "format": "PDF"},
        ),
        figure_png=report(
            f"{layout.ROBUSTNESS}/map_vs_rate.png",
            caption="../report/robustness_figure.rst",
            category="Robustness",
            subcategory="{dataset}",
            labels={"dataset": "{dataset}", "output": ROBUSTNESS_FIGURE_TITLE, "format": "PNG"},
        ),
        table_csv=report(
            f"{layout.ROBUSTNESS}/map_table.csv",
            caption="../report/robustness_table.rst",
            category="Robustness",
            subcategory="{dataset}",
            labels={"dataset": "{dataset}", "output": "mAP table with significance", "format": "CSV"},
        ),
        table_tex=report(
            f"{layout.ROBUSTNESS}/map_table.tex",
            caption="../report/robustness_table.rst",
            category="Robustness",
            subcategory="{dataset}",
            labels={"dataset": "{dataset}", "output": "mAP table with significance", "format": "LaTeX"},
        ),
        auc_csv=report(
            f"{layout.ROBUSTNESS}/selection_auc.csv",
            caption="../report/robustness_auc.rst",
            category="Robustness",
            subcategory="{dataset}",
            labels={"dataset": "{dataset}", "output": "selection AUC", "format": "CSV"},
        ),
        auc_tex=report(
            f"{layout.ROBUSTNESS}/selection_auc.tex",
            caption="../report/robustness_auc.rst",
            category="Robustness",
            subcategory="{dataset}",
            labels={"dataset": "{dataset}", "output": "selection AUC", "format": "LaTeX"},
        ),
    log:
        layout.ROBUSTNESS_LOG,
    conda:
        "../../envs/cmhash.yaml"
    params:
        settings=robustness_settings(config),
        bits=(config.get("report") or {}).get("figure_bits"),
        grid=lambda wildcards: [c.as_dict() for c in CELLS if c.dataset == wildcards.dataset],
    script:
        "../scripts/robustness.py"
