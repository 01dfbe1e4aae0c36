# Related languages: the closest language with an adapter, by URIEL features.


rule related_languages:
    output:
        plan.RELATED_TSV,
    log:
        "logs/related/related_languages.log",
    benchmark:
        "benchmarks/related/related_languages.tsv"
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
