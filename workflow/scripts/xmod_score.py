from langarith.scripting import rule_step
from langarith.xmod.scoring import score_targets

with rule_step(snakemake):
    for task, task_dir in snakemake.params.tasks.items():
        score_targets(
            task_dir,
            snakemake.params.targets[task],
            snakemake.params.scores[task],
            model=snakemake.wildcards.xset,
            task=task,
            seed=int(snakemake.wildcards.seed),
            added=snakemake.params.added,
            settings=dict(snakemake.params.settings[task]),
        )
