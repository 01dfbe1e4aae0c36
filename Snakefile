# langarith: language arithmetic for training-free language adapter merging.
# Stages and paths: docs/interfaces.md; configuration: workflow/schemas/config.schema.yaml.


from snakemake.utils import min_version

min_version("9.0")


# The paper's setup is the default; a --configfile replaces it instead of being
# merged into it (a merge would add the paper's tasks and languages to the demo).
if not workflow.overwrite_configfiles:

    configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/related.smk"
include: "rules/backbone.smk"
include: "rules/tokens.smk"
include: "rules/train.smk"
include: "rules/evaluate.smk"
include: "rules/merge.smk"
include: "rules/tlr.smk"
include: "rules/analysis.smk"
include: "rules/fullft.smk"
include: "rules/xmod.smk"
include: "rules/report.smk"


rule all:
    default_target: True
    input:
        get_final_outputs(),
