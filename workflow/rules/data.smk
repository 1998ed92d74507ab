# Raw data -> prepared (parsed) folder -> assembled dataset folder.


rule generate_embedded:
    output:
        directory("results/raw/{dataset}"),
    log:
        "results/logs/generate/{dataset}.log",
    conda:
        "../../envs/cmhash.yaml"
    params:
        cfg=data_cfg,
    script:
        "../scripts/generate.py"


rule prepare:
    input:
        raw=raw_input,
    output:
        labels="results/prepared/{dataset}/labels.npy",
        texts="results/prepared/{dataset}/texts.json",
        images="results/prepared/{dataset}/images.txt",
        splits="results/prepared/{dataset}/splits.json",
        meta="results/prepared/{dataset}/meta.json",
    log:
        "results/logs/prepare/{dataset}.log",
    conda:
        "../../envs/cmhash.yaml"
    params:
        cfg=data_cfg,
    script:
        "../scripts/prepare.py"


rule assemble_dataset:
    input:
        unpack(assemble_input),
    output:
        image="results/datasets/{dataset}/image.npy",
        text="results/datasets/{dataset}/text.npy",
        labels="results/datasets/{dataset}/labels.npy",
        splits="results/datasets/{dataset}/splits.json",
        meta="results/datasets/{dataset}/meta.json",
    log:
        "results/logs/assemble/{dataset}.log",
    conda:
        "../../envs/cmhash.yaml"
    params:
        cfg=data_cfg,
    script:
        "../scripts/assemble.py"
