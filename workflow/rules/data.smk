# Raw data: the metadata CSVs and one archive per plate, fetched from data.base_url (or from the
# synthesized dataset) into resources/<dataset>/archives/ (temporary unless data.keep_archives)
# and extracted under resources/, each with a manifest (size and sha256 of every file) that later
# jobs check. With data.raw_dir, plates already on disk are checked and
# given a manifest instead of being downloaded. Local rules: cluster nodes are often offline.


if PLAN.synthetic:

    rule synthesize_dataset:
        output:
            directory(PLAN.base_url),
        log:
            "logs/synthesize_dataset.log",
        localrule: True
        conda:
            "../../envs/preprocess.yaml"
        params:
            dataset=config["dataset"],
            spec=config["synthetic"],
        script:
            "../scripts/synthesize_dataset.py"


rule download_metadata:
    input:
        synthetic_source,
    output:
        **PLAN.metadata_files,
        manifest=f"{PLAN.resources}/manifests/metadata.tsv",
    log:
        "logs/download/metadata.log",
    localrule: True
    conda:
        "../../envs/download.yaml"
    resources:
        download=1,
    # only what changes the files (data.retries, timeout and max_bytes are read from the config
    # by the script: changing them must not fetch 41 GB again)
    params:
        sources=PLAN.dataset.metadata_sources(PLAN.base_url),
    script:
        "../scripts/download_metadata.py"


if PLAN.dataset.archives:

    rule download_plate:
        input:
            synthetic_source,
        output:
            archive=plate_archive_output(),
        log:
            "logs/download/{plate}.log",
        localrule: True
        conda:
            "../../envs/download.yaml"
        resources:
            download=1,
        params:
            dataset=config["dataset"],
            base_url=PLAN.base_url,
        script:
            "../scripts/download_plate.py"

    rule extract_plate:
        input:
            archive=PLATE_ARCHIVE,
            metadata=PLAN.metadata_files.values(),
        output:
            images=directory(f"{PLAN.resources}/images/{{plate}}"),
            manifest=f"{PLAN.resources}/manifests/{{plate}}.tsv",
        log:
            "logs/download/{plate}.extract.log",
        localrule: True
        conda:
            "../../envs/download.yaml"
        params:
            dataset=config["dataset"],
            base_url=PLAN.base_url,
            on_bad_image=config["preprocessing"]["normalization"]["on_bad_image"],
        script:
            "../scripts/extract_plate.py"

else:

    rule fetch_plate_images:
        input:
            synthetic_source,
            metadata=PLAN.metadata_files.values(),
        output:
            images=directory(f"{PLAN.resources}/images/{{plate}}"),
            manifest=f"{PLAN.resources}/manifests/{{plate}}.tsv",
        log:
            "logs/download/{plate}.log",
        localrule: True
        conda:
            "../../envs/download.yaml"
        resources:
            download=1,
        params:
            staging=f"{PLAN.resources}/staging/{{plate}}",
            link_local=PLAN.data.get("link_local", True),
            on_bad_image=config["preprocessing"]["normalization"]["on_bad_image"],
        script:
            "../scripts/fetch_plate_images.py"


rule check_raw_plate:
    input:
        images=plate_images,
        metadata=PLAN.metadata_files.values(),
    output:
        manifest=f"{PLAN.resources}/manifests/raw/{{plate}}.tsv",
    log:
        "logs/download/{plate}.check.log",
    localrule: True
    conda:
        "../../envs/download.yaml"
    params:
        dataset=config["dataset"],
        on_bad_image=config["preprocessing"]["normalization"]["on_bad_image"],
    script:
        "../scripts/check_raw_plate.py"
