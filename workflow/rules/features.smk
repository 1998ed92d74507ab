# Image (VGG19 fc7) and text (bag-of-words or Doc2Vec) features of a prepared dataset.


rule image_features:
    input:
        prepared="results/prepared/{dataset}/images.txt",
    output:
        npy="results/features/{dataset}/image.npy",
        meta="results/features/{dataset}/image.json",
    log:
        "results/logs/features/{dataset}-image.log",
    conda:
        "../../envs/cmhash.yaml"
    params:
        cfg=data_cfg,
        device=config.get("device", "auto"),
    threads: config.get("threads", 1)
    resources:
        gpu=1,
    script:
        "../scripts/image_features.py"


rule text_features:
    input:
        prepared="results/prepared/{dataset}/texts.json",
    output:
        npy="results/features/{dataset}/text.npy",
        meta="results/features/{dataset}/text.json",
    log:
        "results/logs/features/{dataset}-text.log",
    conda:
        "../../envs/cmhash.yaml"
    params:
        hashseed=HASHSEED,
        options=lambda wildcards: json.dumps(ds_cfg(wildcards).get("text_features") or {"kind": "bow"}),
    threads: 1
    # PYTHONHASHSEED must be set before the interpreter starts for Doc2Vec to be reproducible.
    shell:
        "PYTHONHASHSEED={params.hashseed} python -m cmhash.cli text-features --prepared $(dirname {input.prepared}) --out {output.npy} --options {params.options:q} > {log} 2>&1"
