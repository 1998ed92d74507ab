# LaTeX tables and figures from every cell's metrics.


def report_outputs():
    return [
        "results/report/results.csv",
        "results/report/tables.tex",
        "results/report/map_vs_noise.pdf",
        "results/report/map_vs_noise.png",
    ]


rule report:
    input:
        metrics_files(),
    output:
        csv="results/report/results.csv",
        tables="results/report/tables.tex",
        pdf=report("results/report/map_vs_noise.pdf", caption="../report/map_vs_noise.rst", category="Figures"),
        png="results/report/map_vs_noise.png",
    log:
        "results/logs/report.log",
    script:
        "../scripts/report.py"
