# Related languages: the closest language with an adapter, by URIEL features.


rule related_languages:
    output:
        paths.in_setup(paths.RELATED_TSV, config),
    log:
        paths.log(paths.in_setup(paths.RELATED_TSV, config)),
    benchmark:
        paths.benchmark(paths.in_setup(paths.RELATED_TSV, config))
    conda:
        "../envs/data.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        targets=plan.related_targets(config),
        pool=plan.related_pool(config),
        overrides=config.get("related", {}).get("overrides", {}),
    script:
        "../workflow/scripts/related.py"
