# Nearest-neighbour MoA matching (NSC, NSCB) and mAP of MoA retrieval of the fold models'
# embeddings, per network and for the ensemble, maps of the treatment profiles, and the
# all-compound model's profiles exported in pycytominer's layout.
# Domain code: cellmoa.profiles.


rule nearest_neighbours:
    input:
        tensors="results/tensors/all.h5",
        plates=plate_tensors(),
        embeddings=expand(
            "results/models/{{network}}/{fold}/embeddings.h5", fold=PLAN.folds
        ),
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
        compounds=list(PLAN.folds.values()),
        postprocess=config["profiles"]["postprocess"],
    script:
        "../scripts/nearest_neighbours.py"


rule ensemble_neighbours:
    input:
        tensors="results/tensors/all.h5",
        plates=plate_tensors(),
        embeddings=expand(
            "results/models/{network}/{fold}/embeddings.h5",
            network=PLAN.networks,
            fold=PLAN.folds,
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
        networks=PLAN.networks,
        folds=PLAN.folds,
        postprocess=config["profiles"]["postprocess"],
    script:
        "../scripts/ensemble_neighbours.py"


rule profile_map:
    input:
        tensors="results/tensors/all.h5",
        plates=plate_tensors(),
        embeddings=f"results/models/{{network}}/{next(iter(PLAN.folds))}/embeddings.h5",
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
        compound=next(iter(PLAN.folds.values())),
        postprocess=config["profiles"]["postprocess"],
    script:
        "../scripts/profile_map.py"


# cellmoa's own profiles in pycytominer's layout, from the all-compound fold's model (trained on
# every annotated compound, it embeds every crop): a default target only where that fold is
# trained (prediction.unannotated; Plan.profile_exports). The tensors' metadata is all it reads
# of results/tensors (no crop images).
rule export_profiles:
    input:
        tensors="results/tensors/all.h5",
        embeddings=f"results/models/{{network}}/{ALL_FOLD}/embeddings.h5",
    output:
        wells="results/profiles/{network}.parquet",
        treatments="results/profiles/{network}_treatments.parquet",
    log:
        "logs/export_profiles/{network}.log",
    localrule: True
    conda:
        "../../envs/evaluate.yaml"
    script:
        "../scripts/export_profiles.py"
