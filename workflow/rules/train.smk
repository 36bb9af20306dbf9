# One job per (network, fold) (training.jobs: per_fold, the default), or one per network that
# trains its folds one after the other (per_network): fine-tune the network on every compound but
# the held-out one, then predict the held-out compound's crops; with prediction.unannotated one
# more fold per network, "all", trains on every annotated compound and predicts the unannotated ones. Tagged gpu=1 so local runs
# (profiles/default) and clusters (profiles/slurm) give each job one GPU.


rule fetch_weights:
    output:
        weights="resources/weights/{network}_imagenet_notop.h5",
    log:
        "logs/fetch_weights/{network}.log",
    # the same file for every workflow: with --cache, fetched once per machine
    cache: "omit-software"
    localrule: True
    conda:
        "../../envs/train.yaml"
    resources:
        download=1,
    params:
        base_url=config["training"]["imagenet_weights_url"],
    script:
        "../scripts/fetch_weights.py"


if config["training"]["jobs"] == "per_fold":

    rule train:
        input:
            unpack(network_weights),
            tensors="results/tensors/all.h5",
            plates=plate_tensors(),
        output:
            # kept with training.fold_models (the all-compound fold's always: rule train_all)
            **fold_model_output(),
            history="results/models/{network}/{fold}/history.tsv",
            predictions="results/models/{network}/{fold}/predictions.tsv",
            fold="results/models/{network}/{fold}/fold.json",
            embeddings="results/models/{network}/{fold}/embeddings.h5",
        log:
            "logs/train/{network}/{fold}.log",
        benchmark:
            "results/benchmarks/train/{network}/{fold}.tsv"
        # a network (the baseline's fold outputs are the baseline rule's)
        wildcard_constraints:
            fold=_alternatives(PLAN.folds),
            network=_alternatives(PLAN.networks),
        priority: training_priority
        conda:
            "../../envs/train.yaml"
        threads: 4
        resources:
            gpu=1,
            mem_mb=16000,
            runtime=240,
        params:
            held_out=lambda wildcards: [PLAN.folds[wildcards.fold]],
            training=network_training,
            checkpoint_dir=lambda wildcards: [
                f"results/checkpoints/{wildcards.network}/{wildcards.fold}"
            ],
        script:
            "../scripts/train.py"

    # the all-compound fold (prediction.unannotated): trains on every annotated compound and
    # predicts (and embeds) the unannotated ones; its model is always kept
    use rule train as train_all with:
        output:
            model=f"results/models/{{network}}/{ALL_FOLD}/model.keras",
            history=f"results/models/{{network}}/{ALL_FOLD}/history.tsv",
            predictions=f"results/models/{{network}}/{ALL_FOLD}/predictions.tsv",
            fold=f"results/models/{{network}}/{ALL_FOLD}/fold.json",
            embeddings=f"results/models/{{network}}/{ALL_FOLD}/embeddings.h5",
        log:
            f"logs/train/{{network}}/{ALL_FOLD}.log",
        benchmark:
            f"results/benchmarks/train/{{network}}/{ALL_FOLD}.tsv"
        params:
            held_out=[ALL_FOLD],
            training=network_training,
            checkpoint_dir=lambda wildcards: [
                f"results/checkpoints/{wildcards.network}/{ALL_FOLD}"
            ],

else:

    # training.jobs: per_network - the folds of a network in one process (the model is built
    # and its steps traced once), the all-compound fold last; the same outputs as the per-fold jobs
    rule train_network:
        input:
            unpack(network_weights),
            tensors="results/tensors/all.h5",
            plates=plate_tensors(),
        output:
            model=network_fold_outputs("model.keras", PLAN.model_folds),
            history=network_fold_outputs("history.tsv"),
            predictions=network_fold_outputs("predictions.tsv"),
            fold=network_fold_outputs("fold.json"),
            embeddings=network_fold_outputs("embeddings.h5"),
        log:
            "logs/train/{network}.log",
        benchmark:
            "results/benchmarks/train/{network}.tsv"
        # a network (the baseline's fold outputs are the baseline rule's)
        wildcard_constraints:
            network=_alternatives(PLAN.networks),
        priority: training_priority
        conda:
            "../../envs/train.yaml"
        threads: 4
        resources:
            gpu=1,
            mem_mb=16000,
            runtime=240 * len(PLAN.trained_folds),
        params:
            held_out=list(PLAN.trained_folds.values()),
            training=network_training,
            checkpoint_dir=lambda wildcards: [
                f"results/checkpoints/{wildcards.network}/{fold}"
                for fold in PLAN.trained_folds
            ],
        script:
            "../scripts/train.py"
