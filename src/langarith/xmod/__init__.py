"""The X-MOD arm: modular pre-training, languages added post hoc, and the SHARED baseline.

X-MOD (Pfeiffer et al., 2022) gives every layer one bottleneck module per language, so
capacity grows with the languages while the compute per language stays fixed; a new
language is added later by training only its embeddings and a fresh module per layer.
SHARED is the same model with one module for every language (equal FLOPs and trainable
parameters per language). The arm reuses the core's data, tokenizer training, MLM
masking, training loop, task features and metrics, and writes the core's score CSVs
(scenarios ``xmod`` and ``xmod-shared``), so X-MOD, SHARED and MAD-X meet in one report.

Modules: :mod:`~langarith.xmod.plan` (what a config makes: paths, targets),
:mod:`~langarith.xmod.model` (checkpoints, ISO codes ↔ module keys, module surgery),
:mod:`~langarith.xmod.pretrain` (language sampling and MLM pre-training),
:mod:`~langarith.xmod.adding` (a language added post hoc),
:mod:`~langarith.xmod.finetune` (English fine-tuning through the en module),
:mod:`~langarith.xmod.scoring` (the target's module swapped in; score CSVs). MLQA is a
dataset of the core's :mod:`langarith.data`.
"""
