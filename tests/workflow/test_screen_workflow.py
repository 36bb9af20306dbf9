"""dataset: loaddata through every stage with Snakemake: a synthesized 5-channel screen on
384-well plates, its images re-laid as many microscopes export them (per-well folders holding the
same file names, ``images/<plate>/<well>/s1_DNA.tiff``), read from its LoadData CSV, plate map
and MoA table, trained with the stem adapter (all five channels into ResNet50), to the accuracy
tables and the report."""

from __future__ import annotations

import re

import h5py
import pandas as pd
import pytest

from cellmoa.data.wells import parse_well
from tests.helpers.screens import relay_per_well
from tests.helpers.smk import snakemake, write_config

pytestmark = pytest.mark.e2e

SCREEN_CONFIG = {
    "dataset": "loaddata",
    "data": {"base_url": "resources/synthetic/screen", "plate_format": "384"},
    "synthetic": {
        "seed": 2,
        "moas": {
            "Microtubule stabilizers": ["taxol", "docetaxel"],
            "Protein synthesis": ["anisomycin", "emetine"],
        },
        "concentrations": [0.3, 3.0],
        "unlabelled_compounds": {"CMPD-U1": "Microtubule stabilizers"},
        "weeks": 2,
        "plates_per_week": 2,
        "dmso_wells_per_plate": 6,
        "plate_format": "384",
        "image_height": 80,
        "image_width": 96,
        "nucleus_radius": 3.0,
        "cells_per_field": 20,
    },
    "preprocessing": {"control_fields_per_plate": 3},
    # no fold list: leave-one-compound-out over every compound of the screen's MoA table
    "training": {
        "networks": ["ResNet50"],
        "folds": {"scheme": "nsc"},
        "jobs": "per_network",
        "channel_adapter": "stem",
        "weights": "none",
        "input_size": 32,
        "epochs": 1,
        "batch_size": 8,
        "optimizer": "adam",
        "learning_rate": 0.001,
    },
    "prediction": {"coverage": 0.75},
}


def test_a_loaddata_screen_runs_through_every_stage(tmp_path):
    work = tmp_path
    config = write_config(work / "config.yaml", SCREEN_CONFIG)
    run = ("--directory", str(work), f"--configfile={config}")
    snakemake("--cores", "1", *run, "synthesize_dataset", timeout=300)
    relay_per_well(work / "resources/synthetic/screen")
    snakemake("--cores", "2", *run, timeout=1500)
    with h5py.File(work / "results/tensors/all.h5") as f:
        assert [str(c) for c in f.attrs["channels"]] == ["DNA", "ER", "RNA", "AGP", "Mito"]
        assert f["images"].shape[-1] == 5
        wells = {w.decode() if isinstance(w, bytes) else str(w) for w in f["metadata"]["well"][:]}
    # no crop grid in the config: the small 80 x 96 fields are kept whole (one crop each)
    plate = sorted((work / "results/tensors").glob("SP*.h5"))[0]
    with h5py.File(plate) as f:
        assert tuple(f.attrs["crop_grid"]) == (1, 1) and tuple(f.attrs["crop_shape"]) == (80, 96)
    # the (sampled) controls down the edge column 1, the treatments from column 2, named as on a
    # 384-well plate
    assert {parse_well(w, "384")[1] for w in wells} >= {0, 1} and "A02" in wells
    tables = work / "results/tables"
    summary = pd.read_csv(tables / "summary.tsv", sep="\t")
    assert (
        summary["Metadata_Dataset"].tolist() == ["loaddata"]
        and summary["n_treatments"].iloc[0] == 8
    )
    treatments = pd.read_csv(tables / "treatments_ResNet50.tsv", sep="\t")
    assert set(treatments["Metadata_Compound"]) == {"taxol", "docetaxel", "anisomycin", "emetine"}
    unannotated = pd.read_csv(tables / "unannotated_ResNet50.tsv", sep="\t")
    assert set(unannotated["Metadata_Compound"]) == {"CMPD-U1"}
    # the images staged and recorded at their path below the plate's folder
    plate_name = plate.stem
    manifest = pd.read_csv(work / f"resources/loaddata/manifests/{plate_name}.tsv", sep="\t")
    dna = [p for p in manifest["path"] if p.endswith("/s1_DNA.tiff")]
    assert len(dna) > 1 and all(
        re.fullmatch(rf"{plate_name}/[A-P]\d\d/s1_DNA\.tiff", p) for p in dna
    )
    assert (work / "resources/loaddata/images" / dna[0]).is_file()
    # every plate's images checked for one size and bit depth as they were fetched
    logs = sorted((work / "logs/download").glob("SP*.log"))
    assert len(logs) == 4 and all("images of 80 x 96 uint16" in p.read_text() for p in logs)
    snakemake(
        "--directory",
        str(work),
        f"--configfile={config}",
        "--report",
        "results/report.html",
        timeout=600,
    )
    html = (work / "results/report.html").read_text(errors="replace")
    assert "summary.tsv" in html and "unannotated_ResNet50.tsv" in html
