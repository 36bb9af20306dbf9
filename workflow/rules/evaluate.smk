# Treatment-level accuracy per network (median over crops within a replicate, median across
# replicates, argmax) and the calibrated calls for the unannotated compounds. Control rows never
# count as treatments. Domain code: cellmoa.evaluate.


rule aggregate:
    input:
        predictions=expand(
            "results/models/{{network}}/{fold}/predictions.tsv", fold=PLAN.folds
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


# MoA predictions for the unannotated compounds (prediction.unannotated): each network's
# all-compound fold predicts them, the leave-one-compound-out treatment tables calibrate the
# conformal prediction sets
rule unannotated:
    input:
        tensors="results/tensors/all.h5",
        plates=plate_tensors(),
        treatments=expand(
            "results/tables/treatments_{network}.tsv", network=PLAN.networks
        ),
        predictions=expand(
            "results/models/{network}/{fold}/predictions.tsv",
            network=PLAN.networks,
            fold=ALL_FOLD,
        ),
        embeddings=expand(
            "results/models/{network}/{fold}/embeddings.h5",
            network=PLAN.networks,
            fold=ALL_FOLD,
        ),
        matches=[
            *PLAN.matching_tables("nearest_neighbours"),
            *PLAN.ensemble_tables("nearest_neighbours"),
        ],
    output:
        tables=[
            report(
                f"results/tables/unannotated_{name}.tsv",
                caption="../report/unannotated.rst",
                category="Unannotated compounds",
                labels={"network": name, "table": "unannotated treatments"},
            )
            for name in PLAN.prediction_names
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
        networks=PLAN.networks,
        ensemble=PLAN.ensemble,
        coverage=config["prediction"]["coverage"],
        score=config["prediction"]["score"],
        neighbours=config["prediction"]["neighbours"],
        postprocess=config["profiles"]["postprocess"],
    script:
        "../scripts/unannotated.py"
