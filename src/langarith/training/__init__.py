"""The machinery every training run shares: backbone pre-training and adapter training.

This package sits below both :mod:`langarith.backbone` and :mod:`langarith.train` (the
adapter stage) and imports neither, so the two can use one loop and one MLM objective
without importing each other:

* :mod:`~langarith.training.seeding` — seeds derived from ``(seed, purpose, counter)``
  and the epoch-by-epoch data order (:class:`EpochStream`);
* :mod:`~langarith.training.hparams` — defaults + overrides with unknown keys refused;
* :mod:`~langarith.training.inputs` — the dataset folders a run reads;
* :mod:`~langarith.training.checkpoints` — resumable, atomically written checkpoints;
* :mod:`~langarith.training.loop` — the one PyTorch loop (:func:`run_training_loop`);
* :mod:`~langarith.training.mlm` — the one masked-language-modelling objective
  (packing, masking, loss, validation);
* :mod:`~langarith.training.token_files` — a corpus tokenized once, on disk (resumable
  writer, verified memory-mapped reader);
* :mod:`~langarith.training.blocks` — MLM blocks cut from a token file, whitespace-token
  budgets and the seeded O(1)-memory block order (:class:`BlockOrder`).
"""
