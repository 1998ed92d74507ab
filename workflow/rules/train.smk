# One training job per cell, then its evaluation. MLflow's experiment is created once,
# before the parallel training jobs, so that none of them races to create it. Every path comes
# from cmhash.cell (the results layout's one owner); every file a job reads is an input, and
# every setting that changes its result is a param (cmhash.config.train_params, evaluate_params).
#
# Resources: modest defaults that grow with each retry (`--retries N` reruns a failed job
# with attempt = 2, 3, ...: twice, three times the memory and wall time), so a job killed
# for memory or time by a cluster succeeds on a later attempt. `gpu=1` lets
# `--resources gpu=N` cap concurrent training jobs on a workstation (each job then takes a
# GPU of its own, see cmhash.gpu_slots) and asks SLURM for one GPU. Everything specific to
# a cluster (partition, account, GPU model, larger memory) lives in profiles/, not here.


localrules:
    mlflow_experiment,


rule mlflow_experiment:
    output:
        experiment_record(),
    log:
        experiment_record("results/logs/mlflow_experiment", ".log"),
    conda:
        "../../envs/cmhash.yaml"
    params:
        experiment=config["experiment"],
        uri=tracking_uri(),
    script:
        "../scripts/mlflow_experiment.py"


rule train:
    input:
        dataset=rules.assemble_dataset.output,
        noise=rules.noise.output,
        experiment=experiment_record(),
    output:
        codes=directory(f"{layout.RUN}/codes"),
        history=f"{layout.RUN}/history.csv",
        record=f"{layout.RUN}/train.json",
        config=f"{layout.RUN}/config.json",
    log:
        layout.fill(layout.RUN_LOG, stage="train"),
    conda:
        "../../envs/cmhash.yaml"
    params:
        uri=tracking_uri(),
        settings=train_params,
    threads: config.get("threads", 1)
    resources:
        gpu=1,
        mem_mb=lambda wildcards, attempt: 4000 * attempt,
        runtime=lambda wildcards, attempt: 120 * attempt,
    script:
        "../scripts/train.py"


# A method that reads no label (its needs().labels is False: UCCH, DJSRH, DGCPN) trains once
# per (dataset, bits, seed, protocol), whatever the noise: no noise input, no noise wildcards.
use rule train as train_label_free with:
    input:
        dataset=rules.assemble_dataset.output,
        experiment=experiment_record(),
    output:
        codes=directory(f"{layout.LABEL_FREE_RUN}/codes"),
        history=f"{layout.LABEL_FREE_RUN}/history.csv",
        record=f"{layout.LABEL_FREE_RUN}/train.json",
        config=f"{layout.LABEL_FREE_RUN}/config.json",
    log:
        layout.fill(layout.LABEL_FREE_LOG, stage="train"),


rule evaluate:
    input:
        record=rules.train.output.record,
        codes=rules.train.output.codes,
        labels=rules.assemble_dataset.output.labels,
        splits=rules.assemble_dataset.output.splits,
    output:
        metrics=f"{layout.RUN}/metrics.json",
        curves=f"{layout.RUN}/curves.npz",
    log:
        layout.fill(layout.RUN_LOG, stage="evaluate"),
    conda:
        "../../envs/cmhash.yaml"
    params:
        settings=evaluate_params(config),
    resources:
        mem_mb=lambda wildcards, attempt: 2000 * attempt,
        runtime=lambda wildcards, attempt: 30 * attempt,
    script:
        "../scripts/evaluate.py"


use rule evaluate as evaluate_label_free with:
    input:
        record=rules.train_label_free.output.record,
        codes=rules.train_label_free.output.codes,
        labels=rules.assemble_dataset.output.labels,
        splits=rules.assemble_dataset.output.splits,
    output:
        metrics=f"{layout.LABEL_FREE_RUN}/metrics.json",
        curves=f"{layout.LABEL_FREE_RUN}/curves.npz",
    log:
        layout.fill(layout.LABEL_FREE_LOG, stage="evaluate"),
