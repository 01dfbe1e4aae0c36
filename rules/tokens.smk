# Token files: each language's Wikipedia tokenized once per backbone (uint32 ids,
# document offsets, whitespace-token counts), read by memory map by every seed and
# every token-budget adapter. Resumable per corpus shard (.<name>.partial/ is kept
# when a job is killed), and the folder appears only when complete.


rule tokenize_corpus:
    input:
        backbone=paths.BACKBONE_DIR,
        data=paths.DATA_DIR.format(dataset="wikipedia", lang="{lang}"),
    output:
        directory(paths.TOKENS_DIR),
    log:
        paths.log(paths.TOKENS_DIR),
    benchmark:
        paths.benchmark(paths.TOKENS_DIR)
    conda:
        "../envs/train.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=lambda wc, attempt: 6 * 60 * attempt,
    script:
        "../workflow/scripts/tokenize_corpus.py"
