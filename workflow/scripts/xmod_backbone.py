from langarith.warm import handoff

handoff()  # in the warm process when the workflow has it on (config warm_start)

from pathlib import Path

from langarith.scripting import rule_step
from langarith.xmod.pretrain import fetch_hub_checkpoint, pretrain_xmod

with rule_step(snakemake):
    spec = snakemake.params.spec
    out_dir = Path(snakemake.output[0])
    if spec.get("hub"):
        fetch_hub_checkpoint(spec["hub"], spec.get("tokenizer") or spec["hub"], out_dir)
    else:
        pretrain_xmod(
            Path(snakemake.input.base),
            [Path(p) for p in snakemake.input.corpora],
            out_dir,
            shared=snakemake.wildcards.arm == "shared",
            settings=dict(spec["pretrain"]),
        )
