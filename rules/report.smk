# Tables (results/tables/) and figures (figures/) from the score and analysis CSVs.
# Inputs come from langarith.report.inputs; every table and figure is registered with
# report(), so `snakemake --report report.zip` gives a browsable report. The jobs are
# seconds of pandas and matplotlib: they run locally, not as cluster jobs.
from langarith.report import inputs as report_inputs
from langarith.report.tables import SCENARIO_TABLES


localrules:
    scenario_table,
    gains_table,
    related_languages_table,
    token_budget_table,
    paper_comparison_table,
    lambda_curves_figure,
    cosine_similarity_figure,
    sparsity_figure,
    token_budget_figure,


rule scenario_table:
    input:
        scores=lambda wc: report_inputs.table_inputs(config, wc.scenario)["scores"],
    output:
        csv=report(
            "results/tables/{scenario}.csv",
            caption="../workflow/report/scenario_table.rst",
            category="Tables",
            subcategory="Scenarios",
            labels={"table": "{scenario}"},
        ),
        md="results/tables/{scenario}.md",
        tex="results/tables/{scenario}.tex",
    log:
        "logs/report/tables/{scenario}.log",
    benchmark:
        "benchmarks/report/tables/{scenario}.tsv"
    wildcard_constraints:
        scenario="|".join(SCENARIO_TABLES),
    conda:
        "../envs/report.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        table="{scenario}",
        options={},
    script:
        "../workflow/scripts/report_tables.py"


rule gains_table:
    input:
        scores=lambda wc: report_inputs.table_inputs(config, "gains")["scores"],
    output:
        csv=report(
            "results/tables/gains.csv",
            caption="../workflow/report/gains.rst",
            category="Tables",
            subcategory="Gains",
            labels={"table": "gains"},
        ),
        md="results/tables/gains.md",
    log:
        "logs/report/tables/gains.log",
    benchmark:
        "benchmarks/report/tables/gains.tsv"
    conda:
        "../envs/report.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        table="gains",
        options={},
    script:
        "../workflow/scripts/report_tables.py"


rule related_languages_table:
    input:
        related=lambda wc: report_inputs.table_inputs(config, "related_languages")[
            "related"
        ],
    output:
        csv=report(
            "results/tables/related_languages.csv",
            caption="../workflow/report/related_languages.rst",
            category="Tables",
            subcategory="Related languages",
            labels={"table": "related_languages"},
        ),
        md="results/tables/related_languages.md",
    log:
        "logs/report/tables/related_languages.log",
    benchmark:
        "benchmarks/report/tables/related_languages.tsv"
    conda:
        "../envs/report.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        table="related_languages",
        options={},
    script:
        "../workflow/scripts/report_tables.py"


rule token_budget_table:
    input:
        unpack(lambda wc: report_inputs.table_inputs(config, "token_budget")),
    output:
        csv=report(
            "results/tables/token_budget.csv",
            caption="../workflow/report/token_budget_table.rst",
            category="Tables",
            subcategory="Token budget",
            labels={"table": "token_budget"},
        ),
        md="results/tables/token_budget.md",
    log:
        "logs/report/tables/token_budget.log",
    benchmark:
        "benchmarks/report/tables/token_budget.tsv"
    conda:
        "../envs/report.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        table="token_budget",
        options={},
    script:
        "../workflow/scripts/report_tables.py"


rule paper_comparison_table:
    input:
        scores=lambda wc: report_inputs.table_inputs(config, "paper_comparison")[
            "scores"
        ],
    output:
        csv=report(
            "results/tables/paper_comparison.csv",
            caption="../workflow/report/paper_comparison.rst",
            category="Tables",
            subcategory="Paper comparison",
            labels={"table": "paper_comparison"},
        ),
        md="results/tables/paper_comparison.md",
    log:
        "logs/report/tables/paper_comparison.log",
    benchmark:
        "benchmarks/report/tables/paper_comparison.tsv"
    conda:
        "../envs/report.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        table="paper_comparison",
        options={"backbones": report_inputs.paper_backbones(config)},
    script:
        "../workflow/scripts/report_tables.py"


rule lambda_curves_figure:
    input:
        scores=lambda wc: report_inputs.score_paths(
            config, ["zero_shot"], model=wc.model, task=wc.task
        ),
    output:
        png=report(
            "figures/lambda_curves_{task}_{model}.png",
            caption="../workflow/report/lambda_curves.rst",
            category="Figures",
            subcategory="λ curves",
            labels={"task": "{task}", "model": "{model}"},
        ),
        pdf="figures/lambda_curves_{task}_{model}.pdf",
    log:
        "logs/report/figures/lambda_curves_{task}_{model}.log",
    benchmark:
        "benchmarks/report/figures/lambda_curves_{task}_{model}.tsv"
    conda:
        "../envs/report.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        figure="lambda_curves",
    script:
        "../workflow/scripts/report_figures.py"


rule cosine_similarity_figure:
    input:
        cosine=report_inputs.ANALYSIS_COSINE,
    output:
        png=report(
            "figures/cosine_similarity_{model}.png",
            caption="../workflow/report/cosine_similarity.rst",
            category="Figures",
            subcategory="Language vectors",
            labels={"figure": "cosine similarity", "model": "{model}"},
        ),
        pdf="figures/cosine_similarity_{model}.pdf",
    log:
        "logs/report/figures/cosine_similarity_{model}.log",
    benchmark:
        "benchmarks/report/figures/cosine_similarity_{model}.tsv"
    conda:
        "../envs/report.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        figure="cosine_similarity",
    script:
        "../workflow/scripts/report_figures.py"


rule sparsity_figure:
    input:
        sparsity=report_inputs.ANALYSIS_SPARSITY,
    output:
        png=report(
            "figures/sparsity_{model}.png",
            caption="../workflow/report/sparsity.rst",
            category="Figures",
            subcategory="Language vectors",
            labels={"figure": "sparsity", "model": "{model}"},
        ),
        pdf="figures/sparsity_{model}.pdf",
    log:
        "logs/report/figures/sparsity_{model}.log",
    benchmark:
        "benchmarks/report/figures/sparsity_{model}.tsv"
    conda:
        "../envs/report.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        figure="sparsity",
    script:
        "../workflow/scripts/report_figures.py"


rule token_budget_figure:
    input:
        scores=lambda wc: report_inputs.score_paths(
            config, report_inputs.BUDGET_SCENARIOS, model=wc.model, task=wc.task
        ),
        adapters=lambda wc: report_inputs.budget_adapter_dirs(
            config, model=wc.model, task=wc.task
        ),
    output:
        png=report(
            "figures/token_budget_{task}_{model}.png",
            caption="../workflow/report/token_budget.rst",
            category="Figures",
            subcategory="Token budget",
            labels={"task": "{task}", "model": "{model}"},
        ),
        pdf="figures/token_budget_{task}_{model}.pdf",
    log:
        "logs/report/figures/token_budget_{task}_{model}.log",
    benchmark:
        "benchmarks/report/figures/token_budget_{task}_{model}.tsv"
    conda:
        "../envs/report.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        figure="token_budget",
    script:
        "../workflow/scripts/report_figures.py"
