# Evaluation: one job per (scenario, model, task, target, seed) runs the whole λ grid of
# a target (backbone, heads and data loaded once) and writes one tidy score CSV. The
# jobs and their inputs are planned by langarith.evaluate.scenarios (one planner per
# scenario, registered in SCENARIOS). Jobs of the scenarios in label_free.scenarios run
# under lambda_grid_label_free: the same job and score CSV, plus the λ that label-free
# selectors choose (langarith.evaluate.label_free).


import langarith.evaluate.scenarios as scenarios
import langarith.evaluate.label_free as label_free


rule lambda_grid:
    input:
        unpack(lambda wc: scenarios.job_inputs(config, wc)),
    output:
        paths.in_setup(paths.SCORE_CSV, config),
    log:
        paths.log(paths.in_setup(paths.SCORE_CSV, config)),
    benchmark:
        paths.benchmark(paths.in_setup(paths.SCORE_CSV, config))
    wildcard_constraints:
        scenario=label_free.scenario_constraint(label_free.other_scenarios(config)),
        target="[a-z]{2,3}",
    conda:
        "../envs/train.yaml"
    threads: get_threads("evaluate")
    resources:
        mem_mb=8000,
        runtime=lambda wc, attempt: 120 * attempt,
        gpu=1,
    params:
        job=lambda wc: scenarios.job_params(config, wc),
    script:
        "../workflow/scripts/evaluate.py"


rule lambda_grid_label_free:
    input:
        unpack(lambda wc: label_free.label_free_inputs(config, wc)),
    output:
        scores=paths.in_setup(paths.SCORE_CSV, config),
        label_free=paths.in_setup(paths.LABEL_FREE_CSV, config),
    log:
        paths.log(paths.in_setup(paths.SCORE_CSV, config)),
    benchmark:
        paths.benchmark(paths.in_setup(paths.SCORE_CSV, config))
    wildcard_constraints:
        scenario=label_free.scenario_constraint(label_free.label_free_scenarios(config)),
        target="[a-z]{2,3}",
    conda:
        "../envs/train.yaml"
    threads: get_threads("evaluate")
    resources:
        mem_mb=8000,
        runtime=lambda wc, attempt: 120 * attempt,
        gpu=1,
    params:
        job=lambda wc: scenarios.job_params(config, wc),
        label_free=lambda wc: label_free.label_free_params(config, wc),
    script:
        "../workflow/scripts/evaluate.py"
