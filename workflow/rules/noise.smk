# Seeded label noise on the training rows; shared by every cell with the same
# (dataset, noise model, rate, seed). The noise model `published` reads NRCH's published
# noisy-label file for the rate instead (datasets.<name>.published_noise). A model that reads
# the training features (`instance`, `classcond` on single-label data) has the dataset's
# image.npy and text.npy as inputs too.


rule noise:
    input:
        unpack(noise_features_input),
        labels=rules.assemble_dataset.output.labels,
        splits=rules.assemble_dataset.output.splits,
        published=published_noise_input,
    output:
        noisy=f"{layout.NOISE}/noisy_labels.npy",
        corrupted=f"{layout.NOISE}/corrupted.npy",
        meta=f"{layout.NOISE}/noise.json",
    log:
        layout.NOISE_LOG,
    conda:
        "../../envs/cmhash.yaml"
    script:
        "../scripts/noise.py"
