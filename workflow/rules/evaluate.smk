# Treatment-level accuracy per network (median over crops within a replicate, median across
# replicates, argmax), nearest-neighbour matching and mAP of MoA retrieval of the fold models'
# embeddings, and one summary across networks with plots for the report
# (snakemake --report results/report.html). Control rows never count as treatments.


rule aggregate:
    input:
        predictions=expand(
            "results/models/{{network}}/{fold}/predictions.tsv", fold=FOLDS
        ),
    output:
        treatments=report(
            "results/tables/treatments_{network}.tsv",
            caption="../report/treatments.rst",
            category="Tables",
            labels={"network": "{network}", "table": "treatments"},
        ),
        accuracy=report(
            "results/tables/accuracy_{network}.tsv",
            caption="../report/accuracy.rst",
            category="Tables",
            labels={"network": "{network}", "table": "accuracy per MoA"},
        ),
        by_fold=report(
            "results/tables/accuracy_by_fold_{network}.tsv",
            caption="../report/accuracy_by_fold.rst",
            category="Tables",
            labels={"network": "{network}", "table": "accuracy per fold"},
        ),
        confusion=report(
            "results/plots/confusion_{network}.png",
            caption="../report/confusion.rst",
            category="Confusion matrices",
            labels={"network": "{network}"},
        ),
    log:
        "logs/aggregate/{network}.log",
    localrule: True
    conda:
        "../../envs/evaluate.yaml"
    script:
        "../scripts/aggregate.py"


rule nearest_neighbours:
    input:
        tensors="results/tensors/all.h5",
        plates=plate_tensors(),
        embeddings=expand("results/models/{{network}}/{fold}/embeddings.h5", fold=FOLDS),
    output:
        matches=report(
            "results/tables/nearest_neighbours_{network}.tsv",
            caption="../report/nearest_neighbours.rst",
            category="Tables",
            labels={"network": "{network}", "table": "nearest neighbours"},
        ),
        average_precision=report(
            "results/tables/average_precision_{network}.tsv",
            caption="../report/average_precision.rst",
            category="Tables",
            labels={"network": "{network}", "table": "average precision"},
        ),
        postprocessing=report(
            "results/tables/postprocessing_{network}.tsv",
            caption="../report/postprocessing.rst",
            category="Tables",
            labels={"network": "{network}", "table": "post-processing"},
        ),
    log:
        "logs/nearest_neighbours/{network}.log",
    localrule: True
    conda:
        "../../envs/evaluate.yaml"
    params:
        compounds=list(FOLDS.values()),
        postprocess=config["profiles"]["postprocess"],
    script:
        "../scripts/nearest_neighbours.py"


rule ensemble_neighbours:
    input:
        tensors="results/tensors/all.h5",
        plates=plate_tensors(),
        embeddings=expand(
            "results/models/{network}/{fold}/embeddings.h5",
            network=NETWORKS,
            fold=FOLDS,
        ),
    output:
        matches=report(
            f"results/tables/nearest_neighbours_{ENSEMBLE}.tsv",
            caption="../report/nearest_neighbours.rst",
            category="Tables",
            labels={"network": ENSEMBLE, "table": "nearest neighbours"},
        ),
        average_precision=report(
            f"results/tables/average_precision_{ENSEMBLE}.tsv",
            caption="../report/average_precision.rst",
            category="Tables",
            labels={"network": ENSEMBLE, "table": "average precision"},
        ),
        postprocessing=f"results/tables/postprocessing_{ENSEMBLE}.tsv",
    log:
        f"logs/nearest_neighbours/{ENSEMBLE}.log",
    localrule: True
    conda:
        "../../envs/evaluate.yaml"
    params:
        networks=NETWORKS,
        folds=FOLDS,
        postprocess=config["profiles"]["postprocess"],
    script:
        "../scripts/ensemble_neighbours.py"


rule profile_map:
    input:
        tensors="results/tensors/all.h5",
        plates=plate_tensors(),
        embeddings=f"results/models/{{network}}/{next(iter(FOLDS))}/embeddings.h5",
    output:
        plot=report(
            "results/plots/profiles_{network}.png",
            caption="../report/profile_map.rst",
            category="Profiles",
            labels={"figure": "treatment profiles", "network": "{network}"},
        ),
    log:
        "logs/profile_map/{network}.log",
    localrule: True
    conda:
        "../../envs/evaluate.yaml"
    params:
        compound=next(iter(FOLDS.values())),
        postprocess=config["profiles"]["postprocess"],
    script:
        "../scripts/profile_map.py"


rule summary:
    input:
        predictions=fold_outputs("predictions.tsv"),
        matches=nearest_neighbour_tables(),
        average_precision=average_precision_tables(),
        ensemble_matches=ensemble_tables("nearest_neighbours"),
        ensemble_average_precision=ensemble_tables("average_precision"),
    output:
        summary=report(
            "results/tables/summary.tsv",
            caption="../report/summary.rst",
            category="Tables",
            labels={"network": "all", "table": "summary"},
        ),
        per_moa=report(
            "results/tables/summary_per_moa.tsv",
            caption="../report/summary_per_moa.rst",
            category="Tables",
            labels={"network": "all", "table": "accuracy per MoA"},
        ),
        plot=report(
            "results/plots/accuracy.png",
            caption="../report/accuracy_plot.rst",
            category="Accuracy",
            labels={"figure": "accuracy across networks"},
        ),
    log:
        "logs/summary.log",
    localrule: True
    conda:
        "../../envs/evaluate.yaml"
    params:
        networks=NETWORKS,
        scheme=FOLD_SCHEME,
        dataset=config["dataset"],
        seed=config["training"]["seed"],
    script:
        "../scripts/summary.py"


rule matching_plot:
    input:
        summary="results/tables/summary.tsv",
    output:
        plot=report(
            "results/plots/matching.png",
            caption="../report/matching_plot.rst",
            category="Profiles",
            labels={"figure": "NSC, NSCB and mAP", "network": "all"},
        ),
    log:
        "logs/matching_plot.log",
    localrule: True
    conda:
        "../../envs/evaluate.yaml"
    script:
        "../scripts/matching_plot.py"


# MoA predictions for the unannotated compounds (prediction.unannotated): each network's
# all-compound fold predicts them, the leave-one-compound-out treatment tables calibrate the
# conformal prediction sets
rule unannotated:
    input:
        tensors="results/tensors/all.h5",
        plates=plate_tensors(),
        treatments=expand("results/tables/treatments_{network}.tsv", network=NETWORKS),
        predictions=expand(
            "results/models/{network}/{fold}/predictions.tsv",
            network=NETWORKS,
            fold=ALL_FOLD,
        ),
        embeddings=expand(
            "results/models/{network}/{fold}/embeddings.h5",
            network=NETWORKS,
            fold=ALL_FOLD,
        ),
        matches=[*nearest_neighbour_tables(), *ensemble_tables("nearest_neighbours")],
    output:
        tables=[
            report(
                f"results/tables/unannotated_{name}.tsv",
                caption="../report/unannotated.rst",
                category="Unannotated compounds",
                labels={"network": name, "table": "unannotated treatments"},
            )
            for name in prediction_names()
        ],
        calibration=report(
            "results/tables/calibration.tsv",
            caption="../report/calibration.rst",
            category="Unannotated compounds",
            labels={"network": "all", "table": "calibration"},
        ),
        heatmap=report(
            "results/plots/unannotated.png",
            caption="../report/unannotated_plot.rst",
            category="Unannotated compounds",
            labels={"network": "ensemble", "table": "heat map"},
        ),
        calibration_plot=report(
            "results/plots/calibration.png",
            caption="../report/calibration_plot.rst",
            category="Unannotated compounds",
            labels={"network": "all", "table": "calibration plot"},
        ),
    log:
        "logs/unannotated.log",
    localrule: True
    conda:
        "../../envs/evaluate.yaml"
    params:
        networks=NETWORKS,
        ensemble=ENSEMBLE if len(NETWORKS) > 1 else None,
        coverage=config["prediction"]["coverage"],
        score=config["prediction"]["score"],
        neighbours=config["prediction"]["neighbours"],
        postprocess=config["profiles"]["postprocess"],
    script:
        "../scripts/unannotated.py"
