# The classical baseline (profiles.baseline: cellprofiler). Per plate: nuclei and cells of every
# stored field (segment), CellProfiler's measurements of every cell aggregated per well (features);
# then the well profiles scored as a network's outputs on the same folds (baseline), and a QC
# figure of the segmentation (segmentation_qc).


rule segment:
    input:
        images=plate_images,
        function="results/illumination/{plate}.h5",
        skipped_before="results/illumination/{plate}.skipped.tsv",
        metadata=PLAN.metadata_files.values(),
    output:
        labels="results/segmentation/{plate}.h5",
        objects="results/segmentation/{plate}.objects.parquet",
        qc="results/segmentation/{plate}.qc.tsv",
    log:
        "logs/segment/{plate}.log",
    benchmark:
        "results/benchmarks/segment/{plate}.tsv"
    conda:
        "../../envs/segment.yaml"
    # the main thread and one reader thread (reads the next field while this one is segmented)
    threads: 2
    resources:
        mem_mb=2000,
    params:
        dataset=config["dataset"],
        segmentation=config["segmentation"],
        restrictions=config["preprocessing"]["restrictions"],
        control_fields=config["preprocessing"]["control_fields_per_plate"],
        unannotated=PLAN.predict_unannotated,
        on_bad_image=config["preprocessing"]["normalization"]["on_bad_image"],
    script:
        "../scripts/segment.py"


rule features:
    input:
        images=plate_images,
        function="results/illumination/{plate}.h5",
        labels="results/segmentation/{plate}.h5",
        qc="results/segmentation/{plate}.qc.tsv",
        metadata=PLAN.metadata_files.values(),
    output:
        wells="results/features/{plate}.parquet",
    log:
        "logs/features/{plate}.log",
    benchmark:
        "results/benchmarks/features/{plate}.tsv"
    conda:
        "../../envs/segment.yaml"
    threads: 1
    resources:
        mem_mb=4000,
    params:
        dataset=config["dataset"],
        features=config["features"],
        restrictions=config["preprocessing"]["restrictions"],
        control_fields=config["preprocessing"]["control_fields_per_plate"],
        unannotated=PLAN.predict_unannotated,
    script:
        "../scripts/features.py"


# the baseline's fold outputs stand where a network's would (results/models/CellProfiler/...)
if PLAN.baseline:

    rule baseline:
        input:
            tensors="results/tensors/all.h5",
            plates=plate_tensors(),
            wells=expand("results/features/{plate}.parquet", plate=PLAN.plates),
        output:
            predictions=expand(
                f"results/models/{PLAN.baseline}/{{fold}}/predictions.tsv",
                fold=PLAN.folds,
            ),
            embeddings=expand(
                f"results/models/{PLAN.baseline}/{{fold}}/embeddings.h5",
                fold=PLAN.folds,
            ),
            profiles=f"results/profiles/{PLAN.baseline}.parquet",
        log:
            "logs/baseline.log",
        benchmark:
            "results/benchmarks/baseline.tsv"
        conda:
            "../../envs/evaluate.yaml"
        resources:
            mem_mb=4000,
        params:
            folds=PLAN.folds,
            scheme=PLAN.fold_scheme,
        script:
            "../scripts/baseline.py"


rule segmentation_qc:
    input:
        images=first_plate_images,
        function=f"results/illumination/{PLAN.plates[0]}.h5",
        labels=f"results/segmentation/{PLAN.plates[0]}.h5",
        qc=expand("results/segmentation/{plate}.qc.tsv", plate=PLAN.plates),
        objects=expand(
            "results/segmentation/{plate}.objects.parquet", plate=PLAN.plates
        ),
        metadata=PLAN.metadata_files.values(),
    output:
        plot=report(
            "results/plots/segmentation.png",
            caption="../report/segmentation.rst",
            category="Cells",
            labels={"figure": "segmentation QC"},
        ),
    log:
        "logs/segmentation_qc.log",
    localrule: True
    conda:
        "../../envs/segment.yaml"
    script:
        "../scripts/segmentation_qc.py"
