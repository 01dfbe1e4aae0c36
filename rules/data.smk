# Data: real datasets through `datasets` (or local files), or the offline demo source.
# Both write resources/data/<dataset>/<lang>/{<split>.jsonl,manifest.json}.


localrules:
    prepare_dataset,


rule prepare_dataset:
    output:
        directory(paths.DATA_DIR),
    log:
        paths.log(paths.DATA_DIR),
    benchmark:
        paths.benchmark(paths.DATA_DIR)
    conda:
        "../envs/data.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=120,
    params:
        source=config["data"]["source"],
        options=get_dataset_options,
    script:
        "../workflow/scripts/data.py"
