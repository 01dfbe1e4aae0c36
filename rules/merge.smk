# Kept merged adapters: for each (scenario, model, target) in merge.keep, the merged
# language adapter at the λ its evaluation chose, as an AdapterHub folder with
# metadata.json and a README.md model card (langarith.export; `langarith export` does
# the same from a finished run).


import langarith.export_plan as export


rule export_adapter:
    input:
        unpack(lambda wc: export.keep_inputs(config, wc)),
    output:
        directory(paths.in_setup(paths.EXPORT_DIR, config)),
    log:
        paths.log(paths.in_setup(paths.EXPORT_DIR, config)),
    benchmark:
        paths.benchmark(paths.in_setup(paths.EXPORT_DIR, config))
    wildcard_constraints:
        scenario="|".join(scenarios.SCENARIOS),
        target="[a-z]{2,3}",
    conda:
        "../envs/train.yaml"
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        method=lambda wc: export.keep_method(config, wc),
    script:
        "../workflow/scripts/export_adapter.py"
