# One training job per cell, then its evaluation. MLflow's experiment is created once,
# before the parallel training jobs, so that none of them races to create it.


rule mlflow_experiment:
    output:
        "results/mlflow/experiment.json",
    log:
        "results/logs/mlflow_experiment.log",
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
        experiment="results/mlflow/experiment.json",
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
    threads: config.get("threads", 1)
    resources:
        gpu=1,
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
    script:
        "../scripts/evaluate.py"
