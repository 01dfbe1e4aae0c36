"""Task arithmetic with full fine-tuning: the full-model counterpart of language arithmetic.

task-arithmetic-crosslingual fine-tunes the whole pretrained model θ0 once per language
(MLM) and once per task, and builds a target-language task model as
θ' = θ0 + τ^T + λ_s·τ^src + λ_t·τ^tgt (five variants, :data:`~langarith.fullft.vectors.VARIANTS`).

* :mod:`~langarith.fullft.vectors` — fine-tuned model folders (θ0 checksum), the variants
  and the merge of one tensor at a time (the core's ``task-arithmetic``);
* :mod:`~langarith.fullft.train` — full-model MLM and task fine-tuning on the core's loop;
* :mod:`~langarith.fullft.evaluate` — the λ engine on whole models, λ per (variant,
  dataset), score files and sparsity curves;
* :mod:`~langarith.fullft.plan` — what a config's ``fullft`` section makes (paths, jobs);
* :mod:`~langarith.fullft.report` — its tables and figure, registered in the report.

The core never imports this package; ``rules/fullft.smk`` and :mod:`langarith.arms` do.
"""
