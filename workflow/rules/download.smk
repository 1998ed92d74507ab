# Published raw archives -> verified, safely extracted raw folder (cmhash.data.sources_catalog).
# A dataset opts in with `download: true` (or a `download:` mapping of options); its raw folder
# is then results/downloads/{dataset}. Archives are kept in download.archive_dir (resumable,
# re-used across runs and datasets); their SHA-256s are pinned in download.lock_file.


rule download_raw:
    output:
        directory("results/downloads/{dataset}"),
    log:
        "results/logs/download/{dataset}.log",
    conda:
        "../../envs/cmhash.yaml"
    params:
        cfg=data_cfg,
        settings=config.get("download", {}),
    resources:
        downloads=1,
    script:
        "../scripts/download.py"
