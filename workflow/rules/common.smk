# What every .smk file shares: the config validated and resolved into PLAN (cellmoa.config.plan:
# the dataset, plates, networks, folds, training settings and outputs, every cross-key check), the
# wildcard constraints, and the input functions and targets the rules name. The rules read a
# setting as the config gives it from `config`, and what the plan resolves from PLAN.

import re
import sys
from pathlib import Path
from types import SimpleNamespace

from snakemake.utils import validate

# The domain logic lives in the cellmoa package (src/). It is installed in the project's venv;
# this line keeps it importable without an install too (rule scripts do the same through
# workflow/scripts/rule_setup.py).
sys.path.insert(0, str(Path(workflow.basedir) / "src"))

from cellmoa.config import plan
from cellmoa.columns import ENSEMBLE
from cellmoa.train.folds import ALL_FOLD
from cellmoa.train.networks import (
    NETWORKS as PRETRAINED,
    imagenet_weights_file,
    training_cost,
)

validate(config, schema="../schemas/config.schema.yaml", set_default=True)
PLAN = plan(config)


def _alternatives(values):
    return "|".join(re.escape(v) for v in values)


wildcard_constraints:
    plate=_alternatives(PLAN.plates),
    network=_alternatives(PLAN.scored),
    fold=_alternatives(PLAN.trained_folds),


#: where a plate's archive is downloaded to (deleted after extraction unless data.keep_archives)
PLATE_ARCHIVE = f"{PLAN.resources}/archives/{{plate}}.zip"


def plate_archive_output():
    return PLATE_ARCHIVE if PLAN.data["keep_archives"] else temp(PLATE_ARCHIVE)


def plate_images(wildcards):
    """The folder holding a plate's TIFFs: downloaded under resources/, or in data.raw_dir as
    <raw_dir>/<plate> or <raw_dir>/<batch>/<plate> (BBBC021: <raw_dir>/Week1/Week1_22123).
    """
    if not PLAN.raw_dir:
        return f"{PLAN.resources}/images/{wildcards.plate}"
    candidates = [
        Path(PLAN.raw_dir) / wildcards.plate,
        Path(PLAN.raw_dir) / PLAN.dataset.batch_of(wildcards.plate) / wildcards.plate,
    ]
    for folder in candidates:
        if folder.is_dir():
            return str(folder)
    raise ValueError(
        f"data.raw_dir: plate {wildcards.plate} is in neither {candidates[0]} nor {candidates[1]}"
    )


def first_plate_images(wildcards):
    """The first plate's image folder: the QC figure outlines a few of its fields."""
    return plate_images(SimpleNamespace(plate=PLAN.plates[0]))


def cell_crop_inputs(wildcards):
    """With single-cell crops (preprocessing.crops.mode: cells), the plate's segmentation: its
    nuclei are what the tensors crop around."""
    if PLAN.crops.get("mode") != "cells":
        return {}
    return {
        "objects": f"results/segmentation/{wildcards.plate}.objects.parquet",
        "segmentation_qc": f"results/segmentation/{wildcards.plate}.qc.tsv",
    }


def plate_manifest(wildcards):
    """The manifest the plate's files are checked against (from the download or the raw check)."""
    if PLAN.raw_dir:
        return f"{PLAN.resources}/manifests/raw/{wildcards.plate}.tsv"
    return f"{PLAN.resources}/manifests/{wildcards.plate}.tsv"


def synthetic_source(wildcards=None):
    """The synthesized dataset folder, when the config asks for one (the download rules read it)."""
    return [PLAN.base_url] if PLAN.synthetic else []


def training_priority(wildcards):
    """Longest training jobs first (their relative cost), so the cores stay busy to the end."""
    settings = PLAN.training[wildcards.network]
    return int(
        training_cost(settings.network, settings.input_size, settings.epochs) // 1000
    )


def network_weights(wildcards):
    """The ImageNet weights file a training job needs (fetched beforehand by fetch_weights)."""
    weights = PLAN.training[wildcards.network].weights
    if weights == "imagenet" and wildcards.network in PRETRAINED:
        return {"weights": imagenet_weights_file(wildcards.network)}
    return {}


def network_training(wildcards):
    """A training job's params: its network's resolved settings that change outputs (so that
    changing one network's settings reruns only that network's jobs)."""
    return PLAN.training[wildcards.network].output_settings()


def plate_tensors():
    return expand("results/tensors/{plate}.h5", plate=PLAN.plates)


def fold_outputs(name):
    return expand(
        f"results/models/{{network}}/{{fold}}/{name}",
        network=PLAN.networks,
        fold=PLAN.folds,
    )


def network_fold_outputs(name, folds=None):
    """One file of every trained fold (or of ``folds``) of the {network} wildcard (outputs of a
    per-network job)."""
    return expand(
        f"results/models/{{{{network}}}}/{{fold}}/{name}",
        fold=PLAN.trained_folds if folds is None else folds,
    )


def fold_model_output():
    """The per-fold train rule's model output, where training.fold_models keeps it."""
    if not config["training"]["fold_models"]:
        return {}
    return {"model": "results/models/{network}/{fold}/model.keras"}


def all_outputs():
    """Every file the run makes by default (the all rule's input)."""
    return PLAN.outputs
