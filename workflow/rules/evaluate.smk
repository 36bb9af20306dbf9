# Treatment-level accuracy per network (median over crops within a replicate, median across
# replicates, argmax) and one summary across networks.


localrules:
    aggregate,
    summary,


rule aggregate:
    input:
        predictions=expand(
            "results/models/{{network}}/{fold}/predictions.tsv", fold=FOLDS
        ),
    output:
        treatments="results/tables/treatments_{network}.tsv",
        accuracy="results/tables/accuracy_{network}.tsv",
    log:
        "logs/aggregate/{network}.log",
    conda:
        "../../envs/evaluate.yaml"
    script:
        "../scripts/aggregate.py"


rule summary:
    input:
        predictions=fold_outputs("predictions.tsv"),
    output:
        summary="results/tables/summary.tsv",
    log:
        "logs/summary.log",
    conda:
        "../../envs/evaluate.yaml"
    params:
        networks=NETWORKS,
        scheme=config["training"]["folds"]["scheme"],
        dataset=config["dataset"],
    script:
        "../scripts/summary.py"
