# Data: real datasets through `datasets` (or local files), or the offline demo source.
# Both write resources/data/<dataset>/<lang>/{<split>.jsonl,manifest.json}; a real
# Wikipedia train split is written in shards (train-00000.jsonl, ...) under a
# .<lang>.partial/ work folder, so a failed download retried here resumes from its last
# finished shard (docs/interfaces.md).


localrules:
    prepare_dataset,


rule prepare_dataset:
    input:
        unpack(lambda wc: plan.dataset_inputs(config, wc.dataset, wc.lang)),
    output:
        directory(paths.DATA_DIR),
    log:
        paths.log(paths.DATA_DIR),
    benchmark:
        paths.benchmark(paths.DATA_DIR)
    retries: 2
    conda:
        "../envs/data.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=lambda wc, attempt: 24 * 60 * attempt,
    params:
        source=config["data"]["source"],
        options=get_dataset_options,
    script:
        "../workflow/scripts/data.py"
