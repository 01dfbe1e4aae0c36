# Backbones: a hub model saved locally, or a tiny demo model pre-trained offline.


# Hub backbones are downloads: they run on the submit host, never on a compute node
# without internet.
if not any("demo" in model for model in config["models"]):

    localrules:
        backbone,


rule backbone:
    input:
        corpora=get_backbone_corpora,
    output:
        directory(paths.BACKBONE_DIR),
    log:
        paths.log(paths.BACKBONE_DIR),
    benchmark:
        paths.benchmark(paths.BACKBONE_DIR)
    conda:
        "../envs/train.yaml"
    threads: get_threads("train")
    resources:
        mem_mb=8000,
        runtime=60,
    params:
        spec=get_model_spec,
    script:
        "../workflow/scripts/backbone.py"
