from langarith.warm import handoff

handoff()  # in the warm process when the workflow has it on (config warm_start)

from langarith.scripting import rule_step
from langarith.xmod.la import score_la_targets

with rule_step(snakemake):
    job = snakemake.params.job
    for task, spec in job["tasks"].items():
        score_la_targets(
            spec["model"],
            spec["targets"],
            spec["scores"],
            model=snakemake.wildcards.xset,
            task=task,
            seed=int(snakemake.wildcards.seed),
            grid=job["grid"],
            search=job["search"],
            source=job["source"],
            overrides=dict(job["related"]),
            settings=dict(spec["settings"]),
        )
