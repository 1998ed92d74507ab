# LaTeX tables and figures from every cell's metrics.


rule report:
    input:
        metrics_files(),
    output:
        csv="results/report/results.csv",
        tables="results/report/tables.tex",
        pdf=report("results/report/map_vs_noise.pdf", caption="../report/map_vs_noise.rst", category="Figures"),
        png="results/report/map_vs_noise.png",
        delta_csv="results/report/delta_published.csv",
        delta_tex="results/report/delta_published.tex",
    log:
        "results/logs/report.log",
    conda:
        "../../envs/cmhash.yaml"
    params:
        published="config/published_results.csv",
        sources={name: ds["source"] for name, ds in config["datasets"].items()},
    script:
        "../scripts/report.py"
