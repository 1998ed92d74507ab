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
        image=f"{layout.DATASET}/image.npy",
        text=f"{layout.DATASET}/text.npy",
        labels=f"{layout.DATASET}/labels.npy",
        splits=f"{layout.DATASET}/splits.json",
        meta=f"{layout.DATASET}/meta.json",
    log:
        "results/logs/assemble/{dataset}.log",
    conda:
        "../../envs/cmhash.yaml"
    params:
        cfg=data_cfg,
    script:
        "../scripts/assemble.py"
