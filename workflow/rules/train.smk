# One training job per cell, then its evaluation. MLflow's experiment is created once,
# before the parallel training jobs, so that none of them races to create it.
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
        dataset="results/datasets/{dataset}/labels.npy",
        noisy="results/noise/{dataset}/{noise_model}-{rate}/seed{seed}/noisy_labels.npy",
        experiment=experiment_record(),
    output:
        codes=directory(
            "results/runs/{dataset}/{method}/{noise_model}-{rate}/bits{bits}/seed{seed}/{protocol}/codes"
        ),
        history="results/runs/{dataset}/{method}/{noise_model}-{rate}/bits{bits}/seed{seed}/{protocol}/history.csv",
        record="results/runs/{dataset}/{method}/{noise_model}-{rate}/bits{bits}/seed{seed}/{protocol}/train.json",
        config="results/runs/{dataset}/{method}/{noise_model}-{rate}/bits{bits}/seed{seed}/{protocol}/config.json",
    log:
        "results/logs/train/{dataset}/{method}/{noise_model}-{rate}/bits{bits}-seed{seed}-{protocol}.log",
    conda:
        "../../envs/cmhash.yaml"
    params:
        uri=tracking_uri(),
        settings=train_settings,
    threads: config.get("threads", 1)
    resources:
        gpu=1,
        mem_mb=lambda wildcards, attempt: 4000 * attempt,
        runtime=lambda wildcards, attempt: 120 * attempt,
    script:
        "../scripts/train.py"


rule evaluate:
    input:
        record="results/runs/{dataset}/{method}/{noise_model}-{rate}/bits{bits}/seed{seed}/{protocol}/train.json",
        codes="results/runs/{dataset}/{method}/{noise_model}-{rate}/bits{bits}/seed{seed}/{protocol}/codes",
        labels="results/datasets/{dataset}/labels.npy",
    output:
        metrics="results/runs/{dataset}/{method}/{noise_model}-{rate}/bits{bits}/seed{seed}/{protocol}/metrics.json",
        curves="results/runs/{dataset}/{method}/{noise_model}-{rate}/bits{bits}/seed{seed}/{protocol}/curves.npz",
    log:
        "results/logs/evaluate/{dataset}/{method}/{noise_model}-{rate}/bits{bits}-seed{seed}-{protocol}.log",
    conda:
        "../../envs/cmhash.yaml"
    resources:
        mem_mb=lambda wildcards, attempt: 2000 * attempt,
        runtime=lambda wildcards, attempt: 30 * attempt,
    script:
        "../scripts/evaluate.py"
