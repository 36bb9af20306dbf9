# One summary across networks with plots for the report (snakemake --report results/report.html).
# Domain code: cellmoa.report.


rule summary:
    input:
        predictions=fold_outputs("predictions.tsv"),
        matches=PLAN.matching_tables("nearest_neighbours"),
        average_precision=PLAN.matching_tables("average_precision"),
        ensemble_matches=PLAN.ensemble_tables("nearest_neighbours"),
        ensemble_average_precision=PLAN.ensemble_tables("average_precision"),
        baseline=expand(
            "results/models/{network}/{fold}/predictions.tsv",
            network=PLAN.scored[len(PLAN.networks) :],
            fold=PLAN.folds,
        ),
        baseline_matches=PLAN.baseline_tables("nearest_neighbours"),
        baseline_average_precision=PLAN.baseline_tables("average_precision"),
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
        networks=PLAN.networks,
        baseline=PLAN.baseline,
        scheme=PLAN.fold_scheme,
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


# The report's landing page (embedded by workflow/report/workflow.rst): the summary, the accuracy
# figure and the unannotated calls, first thing on opening the report. Domain code:
# cellmoa.report.landing.
rule landing:
    input:
        summary="results/tables/summary.tsv",
        plot="results/plots/accuracy.png",
        calls=PLAN.landing_calls,
    output:
        page=report(
            "results/report/landing.html",
            caption="../report/landing.rst",
            category="Summary",
            labels={"page": "landing"},
        ),
    log:
        "logs/landing.log",
    localrule: True
    conda:
        "../../envs/evaluate.yaml"
    params:
        dataset=config["dataset"],
    script:
        "../scripts/landing.py"


# Pictures of the cells behind the calls: each MoA's typical crops, each misclassified
# treatment's beside its true and called MoA's, each unannotated treatment's beside its nearest
# annotated treatment's and its top MoA's. Domain code: cellmoa.report.gallery.
rule galleries:
    input:
        tensors="results/tensors/all.h5",
        plates=plate_tensors(),
        embeddings=PLAN.gallery_embeddings,
        treatments=f"results/tables/treatments_{PLAN.networks[0]}.tsv",
        calls=PLAN.landing_calls,
    output:
        moas=report(
            PLAN.GALLERIES[0],
            caption="../report/gallery_moas.rst",
            category="Cells",
            labels={"gallery": "MoAs"},
        ),
        misclassified=report(
            PLAN.GALLERIES[1],
            caption="../report/gallery_misclassified.rst",
            category="Cells",
            labels={"gallery": "misclassified treatments"},
        ),
        unannotated=report(
            PLAN.GALLERIES[2],
            caption="../report/gallery_unannotated.rst",
            category="Cells",
            labels={"gallery": "unannotated treatments"},
        ),
    log:
        "logs/galleries.log",
    localrule: True
    conda:
        "../../envs/evaluate.yaml"
    params:
        network=PLAN.networks[0],
    script:
        "../scripts/galleries.py"
