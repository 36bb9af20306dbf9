# One job per (network, fold): fine-tune the network on every compound but the held-out one,
# then predict the held-out compound's crops. Tagged gpu=1 so local runs (profiles/default) and
# clusters (profiles/slurm) give each job one GPU.


rule fetch_weights:
    output:
        weights="resources/weights/{network}_imagenet_notop.h5",
    log:
        "logs/fetch_weights/{network}.log",
    localrule: True
    conda:
        "../../envs/download.yaml"
    resources:
        download=1,
    params:
        base_url=config["training"]["imagenet_weights_url"],
        retries=config["data"]["retries"],
        timeout=config["data"]["timeout"],
    script:
        "../scripts/fetch_weights.py"


rule train:
    input:
        unpack(network_weights),
        tensors="results/tensors/all.h5",
        plates=plate_tensors(),
    output:
        model="results/models/{network}/{fold}/model.keras",
        history="results/models/{network}/{fold}/history.tsv",
        predictions="results/models/{network}/{fold}/predictions.tsv",
        fold="results/models/{network}/{fold}/fold.json",
        embeddings="results/models/{network}/{fold}/embeddings.h5",
    log:
        "logs/train/{network}/{fold}.log",
    benchmark:
        "results/benchmarks/train/{network}/{fold}.tsv"
    conda:
        "../../envs/train.yaml"
    threads: 4
    resources:
        gpu=1,
        mem_mb=16000,
        runtime=240,
    params:
        held_out=lambda wildcards: FOLDS[wildcards.fold],
        training=config["training"],
        checkpoint_dir="results/checkpoints/{network}/{fold}",
    script:
        "../scripts/train.py"
