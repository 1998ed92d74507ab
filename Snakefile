# cmhash: noisy-label cross-modal hashing, from raw data to LaTeX tables.
# Run:   snakemake --cores 8 --resources gpu=2            (config/config.yaml)
#        snakemake --cores 2 --configfile config/demo.yaml (the embedded demo)
from snakemake.utils import min_version

min_version("9.0")


# The full grid unless a --configfile is given: that replaces it instead of being merged into
# it, so a small config never inherits the real datasets' cells (--config key=value still
# overrides either).
if not workflow.config_settings.configfiles:

    configfile: "config/config.yaml"



include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/download.smk"
include: "workflow/rules/features.smk"
include: "workflow/rules/noise.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/report.smk"


rule all:
    input:
        rules.report.output,
        # the robustness outputs of every grid dataset, when the config asks for them (report.robustness)
        expand(rules.robustness.output, dataset=robustness_datasets(config)),
    default_target: True
