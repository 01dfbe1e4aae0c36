from langarith.warm import handoff

handoff()  # in the warm process when the workflow has it on (config warm_start)

from langarith.scripting import rule_step
from langarith.xmod.scoring import score_targets

with rule_step(snakemake):
    job = snakemake.params.job
    for task, spec in job["tasks"].items():
        score_targets(
            spec["model"],
            spec["targets"],
            spec["scores"],
            model=snakemake.wildcards.xset,
            task=task,
            seed=int(snakemake.wildcards.seed),
            added=job["added"],
            settings=dict(spec["settings"]),
        )
