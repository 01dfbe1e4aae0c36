"""The TLR arm: target language-ready task adapters (issue 17).

A task adapter trained over a cycle of frozen language adapters, one per optimiser step
(``target-language-ready-adapters.txt``), compared with MAD-X and language arithmetic.
Modules, bottom layer first: :mod:`~langarith.tlr.metrics` (LAS, labels as O, paired
t-test), :mod:`~langarith.tlr.variants` (the variants' language lists, what a config
makes), :mod:`~langarith.tlr.trainer` (the cycling trainer), :mod:`~langarith.tlr.scoring`
(test scores and t-tests) and :mod:`~langarith.tlr.register` (the arm's table, figures
and job counts in the core's registries). The core never imports this package.
"""
