# Analysis of language vectors (ACL appendix E): cosine similarity between all language
# vectors of a backbone and their sparsity, over every language adapter and seed.


import langarith.analysis_plan as analysis_plan


rule language_vector_analysis:
    input:
        unpack(lambda wc: analysis_plan.analysis_inputs(config, wc.model)),
    output:
        cosine=paths.ANALYSIS_COSINE,
        sparsity=paths.ANALYSIS_SPARSITY,
    log:
        paths.log(paths.ANALYSIS_COSINE),
    benchmark:
        paths.benchmark(paths.ANALYSIS_COSINE)
    conda:
        "../envs/train.yaml"
    threads: 1
    resources:
        mem_mb=8000,
        runtime=60,
    params:
        adapters=lambda wc: analysis_plan.analysis_adapters(config, wc.model),
    script:
        "../workflow/scripts/analysis.py"


# Task vectors (ACL appendix E, Ilharco et al.'s contrast): cosine between the task
# adapters' τ = θ − θ_init, θ_init redrawn from each adapter's seed on its backbone.
rule task_vector_analysis:
    input:
        unpack(lambda wc: analysis_plan.task_analysis_inputs(config, wc.model)),
    output:
        cosine=paths.ANALYSIS_TASK_COSINE,
    log:
        paths.log(paths.ANALYSIS_TASK_COSINE),
    benchmark:
        paths.benchmark(paths.ANALYSIS_TASK_COSINE)
    conda:
        "../envs/train.yaml"
    threads: 1
    resources:
        mem_mb=8000,
        runtime=60,
    params:
        adapters=lambda wc: analysis_plan.task_analysis_adapters(config, wc.model),
    script:
        "../workflow/scripts/analysis_tasks.py"
