# LaTeX tables and figures from every cell's metrics.


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
    conda:
        "../../envs/cmhash.yaml"
    script:
        "../scripts/report.py"
