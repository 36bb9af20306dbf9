# Raw data: the metadata CSVs and one archive per plate, fetched from data.base_url (or from the
# synthesized dataset) and extracted under resources/. Local rules: cluster nodes are often offline.


localrules:
    synthesize_dataset,
    download_metadata,
    download_plate,


if SYNTHETIC:

    rule synthesize_dataset:
        output:
            directory(config["data"]["base_url"]),
        params:
            spec=config["synthetic"],
        log:
            "logs/synthesize_dataset.log",
        conda:
            "../../envs/preprocess.yaml"
        script:
            "../scripts/synthesize_dataset.py"


rule download_metadata:
    input:
        synthetic_source,
    output:
        **METADATA_FILES,
    params:
        base_url=config["data"]["base_url"],
        retries=config["data"]["retries"],
        timeout=config["data"]["timeout"],
        max_bytes=config["data"]["max_bytes"],
    resources:
        download=1,
    log:
        "logs/download/metadata.log",
    conda:
        "../../envs/download.yaml"
    script:
        "../scripts/download_metadata.py"


rule download_plate:
    input:
        synthetic_source,
        metadata=METADATA_FILES.values(),
    output:
        images=directory(f"{RESOURCES}/images/{{plate}}"),
    params:
        dataset=config["dataset"],
        base_url=config["data"]["base_url"],
        retries=config["data"]["retries"],
        timeout=config["data"]["timeout"],
        max_bytes=config["data"]["max_bytes"],
        keep_archives=config["data"]["keep_archives"],
        archives_dir=f"{RESOURCES}/archives",
    resources:
        download=1,
    log:
        "logs/download/{plate}.log",
    conda:
        "../../envs/download.yaml"
    script:
        "../scripts/download_plate.py"
