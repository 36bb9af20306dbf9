# Raw data: the metadata CSVs and one archive per plate, fetched from data.base_url (or from the
# synthesized dataset) and extracted under resources/. Local rules: cluster nodes are often offline.


if SYNTHETIC:

    rule synthesize_dataset:
        output:
            directory(config["data"]["base_url"]),
        log:
            "logs/synthesize_dataset.log",
        localrule: True
        conda:
            "../../envs/preprocess.yaml"
        params:
            spec=config["synthetic"],
        script:
            "../scripts/synthesize_dataset.py"


rule download_metadata:
    input:
        synthetic_source,
    output:
        **METADATA_FILES,
    log:
        "logs/download/metadata.log",
    localrule: True
    conda:
        "../../envs/download.yaml"
    resources:
        download=1,
    params:
        base_url=config["data"]["base_url"],
        retries=config["data"]["retries"],
        timeout=config["data"]["timeout"],
        max_bytes=config["data"]["max_bytes"],
    script:
        "../scripts/download_metadata.py"


rule download_plate:
    input:
        synthetic_source,
        metadata=METADATA_FILES.values(),
    output:
        images=directory(f"{RESOURCES}/images/{{plate}}"),
    log:
        "logs/download/{plate}.log",
    localrule: True
    conda:
        "../../envs/download.yaml"
    resources:
        download=1,
    params:
        dataset=config["dataset"],
        base_url=config["data"]["base_url"],
        retries=config["data"]["retries"],
        timeout=config["data"]["timeout"],
        max_bytes=config["data"]["max_bytes"],
        keep_archives=config["data"]["keep_archives"],
        archives_dir=f"{RESOURCES}/archives",
    script:
        "../scripts/download_plate.py"
