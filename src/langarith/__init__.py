"""langarith: training-free merging of language adapters (language arithmetic).

The package holds all the logic of the workflow; the Snakemake rules only call it.
Each stage of the pipeline is one module: ``config``, ``data``, ``backbone``,
``related``, ``train``, ``merge``, ``metrics``, ``evaluate``, ``analysis`` and
``report``.
"""

__version__ = "0.1.0"


class LangarithError(Exception):
    """An error caused by user input (config, files, arguments).

    The command line and the Snakemake scripts print its message alone, without a
    traceback, because the message is written to be acted on.
    """
