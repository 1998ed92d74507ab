# Seeded label noise on the training rows; shared by every cell with the same
# (dataset, noise model, rate, seed). The noise model `published` reads NRCH's published
# noisy-label file for the rate instead (datasets.<name>.published_noise).


rule noise:
    input:
        labels="results/datasets/{dataset}/labels.npy",
        splits="results/datasets/{dataset}/splits.json",
        published=published_noise_input,
    output:
        noisy="results/noise/{dataset}/{noise_model}-{rate}/seed{seed}/noisy_labels.npy",
        corrupted="results/noise/{dataset}/{noise_model}-{rate}/seed{seed}/corrupted.npy",
        meta="results/noise/{dataset}/{noise_model}-{rate}/seed{seed}/noise.json",
    log:
        "results/logs/noise/{dataset}/{noise_model}-{rate}-seed{seed}.log",
    conda:
        "../../envs/cmhash.yaml"
    script:
        "../scripts/noise.py"
