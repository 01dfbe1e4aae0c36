from langarith.warm import handoff

handoff()  # in the warm process when the workflow has it on (config warm_start)

from pathlib import Path

from langarith.backbone.demo import build_demo_backbone
from langarith.backbone.hub import fetch_hub_backbone
from langarith.scripting import rule_step

with rule_step(snakemake):
    spec = snakemake.params.spec
    out_dir = Path(snakemake.output[0])
    if "demo" in spec:
        demo = dict(spec["demo"])
        build_demo_backbone(
            [Path(p) for p in snakemake.input.corpora],
            out_dir,
            arch=demo.pop("arch"),
            spec=demo,
            seed=int(demo.pop("seed", 0)),
        )
    else:
        fetch_hub_backbone(spec["hub"], out_dir)
