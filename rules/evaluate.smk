# Evaluation: one job per (scenario, model, task, target, seed) runs the whole λ grid of
# a target (backbone, heads and data loaded once) and writes one tidy score CSV. The
# jobs and their inputs are planned by langarith.evaluate.scenarios (one planner per
# scenario, registered in SCENARIOS).


import langarith.evaluate.scenarios as scenarios


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
        scenario="|".join(scenarios.SCENARIOS),
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
