# Helpers shared by all .smk files (config validation, constants, paths, wildcard constraints).

import re
import sys
from pathlib import Path

from snakemake.utils import validate

# The domain logic lives in the cellmoa package (src/). It is installed in the project's venv;
# this line keeps it importable without an install too (rule scripts do the same through
# workflow/scripts/rule_setup.py).
sys.path.insert(0, str(Path(workflow.basedir) / "src"))

from cellmoa.data.datasets import DATASETS, dataset_from_config
from cellmoa.train.folds import ALL_FOLD, folds_from_config
from cellmoa.train import models
from cellmoa.train.models import NETWORKS as PRETRAINED, imagenet_weights_file
from cellmoa.preprocess.jobs import TensorSettings
from cellmoa.data.synthetic import spec_for
from cellmoa.train.training import TrainSettings

validate(config, schema="../schemas/config.schema.yaml", set_default=True)

SYNTHETIC = "synthetic" in config
# data: settings only a configured adapter (dataset: loaddata) reads
_SCREEN_KEYS = sorted(
    set(config["data"])
    & {
        "loaddata",
        "treatments",
        "moas",
        "control",
        "batch_column",
        "columns",
        "channels",
        "image_root",
        "plate_format",
        "unimaged_wells",
        "link_local",
    }
)
if _SCREEN_KEYS and config["dataset"] != "loaddata":
    raise ValueError(
        f"config: data.{', data.'.join(_SCREEN_KEYS)} describe your own screen and apply to "
        f"dataset: loaddata only, not {config['dataset']}; remove them or set dataset: loaddata"
    )
if SYNTHETIC and not DATASETS[config["dataset"]].archives:
    # a synthesized screen: the data: settings that read what the synthesizer writes
    if "base_url" not in config["data"]:
        raise ValueError(
            "config: a synthetic screen (dataset: loaddata) needs data.base_url, the folder to write it to"
        )
    _defaults = spec_for(config["dataset"], config["synthetic"]).data_defaults(
        config["data"]["base_url"]
    )
    for _key, _value in _defaults.items():
        config["data"].setdefault(_key, _value)
DATASET = dataset_from_config(config)
config["data"].setdefault("base_url", DATASET.base_url)
if "plates" in config["data"]:
    PLATES = list(config["data"]["plates"])
elif SYNTHETIC:
    PLATES = spec_for(DATASET.name, config["synthetic"]).plates()
elif not DATASET.archives:
    PLATES = DATASET.local_plates()
else:
    raise ValueError(
        "config: data.plates is required (the plates to process) unless a synthetic: section is given"
    )
if not DATASET.archives and "raw_dir" in config["data"]:
    raise ValueError(
        "config: data.raw_dir does not apply to dataset loaddata: its images are where the LoadData "
        "CSV's PathName_/FileName_ columns say (relative folders from data.image_root)"
    )
if SYNTHETIC and "://" in config["data"]["base_url"]:
    raise ValueError(
        "config: with a synthetic: section, data.base_url must be a local folder to write the "
        f"synthesized dataset to, not the URL {config['data']['base_url']!r}"
    )
NETWORKS = list(config["training"]["networks"])
for _network in NETWORKS:
    # the training settings each job will use, checked before any job runs
    try:
        TrainSettings.from_config(config["training"], _network)
    except (TypeError, ValueError) as error:
        raise ValueError(f"config: training ({_network}): {error}") from error


_folds = config["training"]["folds"]
if not (_folds.get("held_out") or _folds.get("compounds")) and _folds.get(
    "scheme", DATASET.fold_schemes[0]
) in ("nsc", "nscb"):
    # leave-one-compound-out over every annotated compound, where they are known before the run
    _annotated = (
        spec_for(DATASET.name, config["synthetic"]).compounds
        if SYNTHETIC
        else DATASET.annotated_compounds()
    )
    if _annotated:
        _folds["compounds"] = list(_annotated)
FOLDS = folds_from_config(
    config["training"]["folds"], DATASET
)  # slug -> held-out value
FOLD_SCHEME = config["training"]["folds"]["scheme"]
PREDICT_UNANNOTATED = config["prediction"]["unannotated"]
if PREDICT_UNANNOTATED is None:
    PREDICT_UNANNOTATED = DATASET.predicts_unannotated and FOLD_SCHEME in (
        "nsc",
        "nscb",
    )
elif PREDICT_UNANNOTATED and FOLD_SCHEME not in ("nsc", "nscb"):
    raise ValueError(
        f"config: prediction.unannotated needs a leave-one-compound-out fold scheme (nsc, nscb), "
        f"not {FOLD_SCHEME}; set prediction.unannotated: false"
    )
# the folds a training job trains: the leave-one-out ones, then the all-compound fold that
# predicts the unannotated compounds
TRAINED_FOLDS = {**FOLDS, **({ALL_FOLD: ALL_FOLD} if PREDICT_UNANNOTATED else {})}
# the folds whose trained model is kept (training.fold_models; the all-compound one always)
MODEL_FOLDS = [
    f for f in TRAINED_FOLDS if f == ALL_FOLD or config["training"]["fold_models"]
]
# what the dataset decides unless the config says otherwise
config["training"].setdefault("head", DATASET.head)
config["training"].setdefault("input_channels", list(DATASET.network_channels))
# the tensors settings, checked before any job runs; crop geometry defaults from the dataset
_geometry = TensorSettings.from_config(config["preprocessing"], DATASET).crops
CROPS = {
    "rows": _geometry.rows,
    "cols": _geometry.cols,
    "resize": list(_geometry.field_size) if _geometry.field_size else None,
}

RESOURCES = f"resources/{DATASET.name}"
METADATA_FILES = {
    name: f"{RESOURCES}/metadata/{name}" for name in DATASET.metadata_files()
}


def _alternatives(values):
    return "|".join(re.escape(v) for v in values)


wildcard_constraints:
    plate=_alternatives(PLATES),
    network=_alternatives(NETWORKS),
    fold=_alternatives(TRAINED_FOLDS),


RAW_DIR = config["data"].get("raw_dir")


#: where a plate's archive is downloaded to (deleted after extraction unless data.keep_archives)
PLATE_ARCHIVE = f"{RESOURCES}/archives/{{plate}}.zip"


def plate_archive_output():
    return PLATE_ARCHIVE if config["data"]["keep_archives"] else temp(PLATE_ARCHIVE)


def plate_images(wildcards):
    """The folder holding a plate's TIFFs: downloaded under resources/, or in data.raw_dir as
    <raw_dir>/<plate> or <raw_dir>/<batch>/<plate> (BBBC021: <raw_dir>/Week1/Week1_22123).
    """
    if not RAW_DIR:
        return f"{RESOURCES}/images/{wildcards.plate}"
    candidates = [
        Path(RAW_DIR) / wildcards.plate,
        Path(RAW_DIR) / DATASET.batch_of(wildcards.plate) / wildcards.plate,
    ]
    for folder in candidates:
        if folder.is_dir():
            return str(folder)
    raise ValueError(
        f"data.raw_dir: plate {wildcards.plate} is in neither {candidates[0]} nor {candidates[1]}"
    )


def plate_manifest(wildcards):
    """The manifest the plate's files are checked against (from the download or the raw check)."""
    if RAW_DIR:
        return f"{RESOURCES}/manifests/raw/{wildcards.plate}.tsv"
    return f"{RESOURCES}/manifests/{wildcards.plate}.tsv"


def synthetic_source(wildcards=None):
    """The synthesized dataset folder, when the config asks for one (the download rules read it)."""
    return [config["data"]["base_url"]] if SYNTHETIC else []


def training_priority(wildcards):
    """Longest training jobs first (their relative cost), so the cores stay busy to the end."""
    settings = TrainSettings.from_config(config["training"], wildcards.network)
    return int(
        models.training_cost(settings.network, settings.input_size, settings.epochs)
        // 1000
    )


def network_weights(wildcards):
    """The ImageNet weights file a training job needs (fetched beforehand by fetch_weights)."""
    settings = {
        **config["training"],
        **config["training"]["per_network"].get(wildcards.network, {}),
    }
    if settings["weights"] == "imagenet" and wildcards.network in PRETRAINED:
        return {"weights": imagenet_weights_file(wildcards.network)}
    return {}


def plate_tensors():
    return expand("results/tensors/{plate}.h5", plate=PLATES)


def fold_outputs(name):
    return expand(
        f"results/models/{{network}}/{{fold}}/{name}", network=NETWORKS, fold=FOLDS
    )


def network_fold_outputs(name, folds=None):
    """One file of every trained fold (or of ``folds``) of the {network} wildcard (outputs of a
    per-network job)."""
    return expand(
        f"results/models/{{{{network}}}}/{{fold}}/{name}",
        fold=TRAINED_FOLDS if folds is None else folds,
    )


def fold_model_output():
    """The per-fold train rule's model output, where training.fold_models keeps it."""
    if not config["training"]["fold_models"]:
        return {}
    return {"model": "results/models/{network}/{fold}/model.keras"}


def prediction_names():
    """The unannotated tables' names: every network, and the ensemble of several."""
    return [*NETWORKS, *([ENSEMBLE] if len(NETWORKS) > 1 else [])]


def unannotated_outputs():
    """The unannotated compounds' tables and figures (prediction.unannotated), else nothing."""
    if not PREDICT_UNANNOTATED:
        return []
    return [
        *expand("results/tables/unannotated_{name}.tsv", name=prediction_names()),
        "results/tables/calibration.tsv",
        "results/plots/unannotated.png",
        "results/plots/calibration.png",
    ]


def nearest_neighbour_tables():
    """Nearest-neighbour matching tables, for datasets with more than one compound to match."""
    if not DATASET.nearest_neighbours:
        return []
    return expand("results/tables/nearest_neighbours_{network}.tsv", network=NETWORKS)


def network_training(wildcards):
    """A training job's params: its network's resolved settings that change outputs (so that
    changing one network's settings reruns only that network's jobs)."""
    return TrainSettings.from_config(
        config["training"], wildcards.network
    ).output_settings()


def average_precision_tables():
    """Average precision of MoA retrieval per treatment, beside the nearest-neighbour tables."""
    if not DATASET.nearest_neighbours:
        return []
    return expand("results/tables/average_precision_{network}.tsv", network=NETWORKS)


ENSEMBLE = "Ensemble"


def ensemble_tables(kind):
    """The ensemble's matching table of ``kind`` (nearest_neighbours, average_precision), where
    there are several networks and compounds to match; else nothing."""
    if not DATASET.nearest_neighbours or len(NETWORKS) < 2:
        return []
    return [f"results/tables/{kind}_{ENSEMBLE}.tsv"]


def profile_maps():
    """The report's Profiles page, where there is matching: NSC, NSCB and mAP of every network
    (raw and post-processed) and a map of treatment profiles per network."""
    if not DATASET.nearest_neighbours:
        return []
    return [
        "results/plots/matching.png",
        *expand("results/plots/profiles_{network}.png", network=NETWORKS),
    ]


def all_outputs():
    return [
        *expand("results/tables/accuracy_{network}.tsv", network=NETWORKS),
        *expand("results/tables/accuracy_by_fold_{network}.tsv", network=NETWORKS),
        *expand("results/tables/treatments_{network}.tsv", network=NETWORKS),
        "results/tables/summary.tsv",
        "results/plots/accuracy.png",
        *profile_maps(),
        *unannotated_outputs(),
    ]
