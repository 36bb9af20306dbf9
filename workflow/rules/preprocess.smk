# Per plate: the illumination function of every channel, then the HDF5 tensors (corrected,
# DMSO-standardised crops, well by well); finally all plates assembled as one virtual dataset.


rule illumination:
    input:
        images=plate_images,
        manifest=plate_manifest,
        metadata_manifest=f"{PLAN.resources}/manifests/metadata.tsv",
        metadata=PLAN.metadata_files.values(),
    output:
        function="results/illumination/{plate}.h5",
        qc=report(
            "results/illumination/{plate}.png",
            caption="../report/illumination.rst",
            category="Illumination",
            labels={"plate": "{plate}"},
        ),
        skipped="results/illumination/{plate}.skipped.tsv",
        checks=report(
            "results/illumination/{plate}.qc.tsv",
            caption="../report/illumination_qc.rst",
            category="Illumination",
            labels={"plate": "{plate}", "table": "QC"},
        ),
    log:
        "logs/illumination/{plate}.log",
    benchmark:
        "results/benchmarks/illumination/{plate}.tsv"
    conda:
        "../../envs/preprocess.yaml"
    # the main thread and one reader thread (reads the next fields while this one is processed)
    threads: 2
    resources:
        mem_mb=2000,
    params:
        dataset=config["dataset"],
        illumination=config["preprocessing"]["illumination"],
        on_bad_image=config["preprocessing"]["normalization"]["on_bad_image"],
    script:
        "../scripts/illumination.py"


rule tensors:
    input:
        unpack(cell_crop_inputs),
        images=plate_images,
        function="results/illumination/{plate}.h5",
        skipped_before="results/illumination/{plate}.skipped.tsv",
        metadata=PLAN.metadata_files.values(),
    output:
        tensors="results/tensors/{plate}.h5",
        skipped="results/tensors/{plate}.skipped.tsv",
    log:
        "logs/tensors/{plate}.log",
    benchmark:
        "results/benchmarks/tensors/{plate}.tsv"
    conda:
        "../../envs/preprocess.yaml"
    # the main thread (writes HDF5) and one thread preparing the next fields
    threads: 2
    resources:
        mem_mb=2000,
    params:
        dataset=config["dataset"],
        crops=PLAN.crops,
        restrictions=config["preprocessing"]["restrictions"],
        normalization=config["preprocessing"]["normalization"],
        control_fields=config["preprocessing"]["control_fields_per_plate"],
        unannotated=PLAN.predict_unannotated,
    script:
        "../scripts/tensors.py"


rule assemble_tensors:
    input:
        plates=plate_tensors(),
    output:
        tensors="results/tensors/all.h5",
    log:
        "logs/tensors/assemble.log",
    conda:
        "../../envs/preprocess.yaml"
    script:
        "../scripts/assemble_tensors.py"
