"""The config resolved in Python (:func:`cellmoa.config.plan`), without running Snakemake.

The shipped configs' plans, every cross-key check's message, and a config that is never changed.
"""

from __future__ import annotations

import copy

import pytest
import yaml
from snakemake.utils import validate

from cellmoa.config import plan
from cellmoa.data.datasets import BBBC021
from cellmoa.data.resolve import resolve_data, resolve_dataset
from cellmoa.preprocess.settings import TensorSettings
from cellmoa.train.folds import ALL_FOLD
from tests.helpers.paths import ROOT

pytestmark = pytest.mark.unit

SCHEMA = ROOT / "workflow" / "schemas" / "config.schema.yaml"
CONFIGS = ("config", "demo", "demo_bbbc014", "demo_screen", "bbbc014")


def validated(config: dict) -> dict:
    """``config`` as Snakemake leaves it before common.smk plans it: validated, defaults filled."""
    config = copy.deepcopy(config)
    validate(config, str(SCHEMA), set_default=True)
    return config


def shipped(name: str) -> dict:
    """A config of config/, unvalidated."""
    return yaml.safe_load((ROOT / "config" / f"{name}.yaml").read_text())


@pytest.mark.parametrize("name", CONFIGS)
def test_planning_never_changes_the_config(name):
    config = validated(shipped(name))
    before = copy.deepcopy(config)
    run = plan(config)
    resolve_dataset(config)
    assert config == before
    # the plan's lists and dicts are its own: changing them changes nothing in the config
    run.data["base_url"] = "elsewhere"
    run.networks.append("VGG16")
    assert config == before


def test_the_papers_bbbc021_run():
    run = plan(validated(shipped("config")))
    assert run.dataset.name == "bbbc021" and run.data["base_url"] == BBBC021.base_url
    assert len(run.plates) == 55 and run.networks == [
        "ResNet50",
        "InceptionV3",
        "InceptionResNetV2",
    ]
    assert len(run.folds) == 38 and run.folds["mevinolin-lovastatin"] == "mevinolin/lovastatin"
    assert run.fold_scheme == "nsc" and run.predict_unannotated
    assert list(run.trained_folds) == [*run.folds, ALL_FOLD]
    assert run.model_folds == list(run.trained_folds)  # training.fold_models: true
    settings = run.training["ResNet50"]
    assert settings.head == "softmax" and settings.input_channels == ["DAPI", "Tubulin", "Actin"]
    assert settings.fold_scheme == "nsc" and settings.input_size == 224
    assert run.crops == {"rows": 2, "cols": 2, "resize": None}
    assert run.resources == "resources/bbbc021"
    assert (
        run.metadata_files["BBBC021_v1_moa.csv"] == "resources/bbbc021/metadata/BBBC021_v1_moa.csv"
    )
    assert run.raw_dir is None and not run.synthetic
    assert run.ensemble == "Ensemble"
    assert run.matching_tables("average_precision") == [
        f"results/tables/average_precision_{n}.tsv" for n in run.networks
    ]
    assert run.ensemble_tables("nearest_neighbours") == [
        "results/tables/nearest_neighbours_Ensemble.tsv"
    ]
    # the all-compound fold's profiles, well and treatment tables per network
    assert run.profile_exports[:2] == [
        "results/profiles/ResNet50.parquet",
        "results/profiles/ResNet50_treatments.parquet",
    ]
    # the CellProfiler baseline (profiles.baseline): its 3 tables, its well profiles, the
    # segmentation QC figure; scored like a network, never one of the ensemble's
    assert run.baseline == "CellProfiler" and run.scored == [*run.networks, "CellProfiler"]
    assert run.baseline_tables("nearest_neighbours") == [
        "results/tables/nearest_neighbours_CellProfiler.tsv"
    ]
    assert {"results/profiles/CellProfiler.parquet", "results/plots/segmentation.png"} <= set(
        run.outputs
    )
    # + the landing page, the 3 galleries and the baseline's 5 files
    assert len(run.outputs) == 22 + 2 * 3 + 1 + 3 + 5
    assert run.landing_calls == ["results/tables/unannotated_Ensemble.tsv"]
    assert run.gallery_embeddings == "results/models/ResNet50/all/embeddings.h5"
    assert {"results/tables/unannotated_Ensemble.tsv", "results/plots/matching.png"} <= set(
        run.outputs
    )


def test_the_demo_trains_the_all_compound_fold_and_keeps_only_its_model():
    run = plan(validated(shipped("demo")))
    assert run.synthetic and run.data["base_url"] == "resources/synthetic/bbbc021-demo"
    assert len(run.plates) == 6
    assert list(run.folds) == ["taxol", "docetaxel", "anisomycin", "emetine", "az258", "az841"]
    assert run.folds["az841"] == "AZ841"
    assert list(run.trained_folds)[-1] == ALL_FOLD and run.model_folds == [ALL_FOLD]
    # per_network overrides win over the section
    assert run.training["ResNet50"].input_size == 56 and run.training["ResNet50"].epochs == 4
    assert run.training["InceptionV3"].input_size == 75
    assert run.prediction_names == [*run.networks, "Ensemble"]
    assert run.unannotated_outputs[-3:] == [
        "results/tables/calibration.tsv",
        "results/plots/unannotated.png",
        "results/plots/calibration.png",
    ]


def test_bbbc014_takes_its_head_channels_and_cell_line_folds_from_the_dataset():
    config = validated(shipped("demo_bbbc014"))
    del config["training"]["head"]
    run = plan(config)
    assert run.fold_scheme == "cell_line" and run.folds == {"mcf7": "MCF7", "a549": "A549"}
    assert not run.predict_unannotated and run.trained_folds == run.folds
    for settings in run.training.values():
        assert settings.head == "sigmoid" and settings.input_channels == [None, "NFkB", "DAPI"]
        assert settings.fold_scheme == "cell_line"
    assert run.crops == {"rows": 2, "cols": 2, "resize": [128, 128]}
    assert not run.matching and not run.profile_maps and not run.unannotated_outputs
    assert run.matching_tables("nearest_neighbours") == run.ensemble_tables("average_precision")
    assert run.ensemble_tables("average_precision") == []
    assert len(run.outputs) == 15  # with the landing page and the 3 galleries
    # the real BBBC014 run: the published geometry
    real = plan(validated(shipped("bbbc014")))
    assert real.crops == {"rows": 4, "cols": 4, "resize": [1024, 1024]}


def test_a_config_head_or_per_network_setting_wins_over_the_datasets():
    config = validated(shipped("demo_bbbc014"))
    config["training"]["per_network"] = {"InceptionV3": {"head": "softmax"}}
    config["training"]["input_channels"] = ["DAPI", "NFkB", None]
    run = plan(config)
    assert run.training["InceptionV3"].head == "softmax"
    assert run.training["ResNet50"].head == "sigmoid"
    assert run.training["ResNet50"].input_channels == ["DAPI", "NFkB", None]


def test_a_synthetic_screen_reads_what_the_synthesizer_writes():
    config = validated(shipped("demo_screen"))
    run = plan(config)
    base = "resources/synthetic/screen-demo"
    assert run.data["loaddata"] == f"{base}/loaddata.csv"
    assert run.data["treatments"] == f"{base}/platemap.csv"
    assert run.data["moas"] == f"{base}/moas.csv"
    assert run.data["control"] == "DMSO" and run.data["batch_column"] == "Metadata_Batch"
    assert run.data["channels"] == ["DNA", "ER", "RNA", "AGP", "Mito"]
    assert run.dataset.name == "loaddata" and run.resources == "resources/loaddata"
    assert resolve_data(config) == run.data
    assert resolve_dataset(config).sources == run.dataset.sources
    # the folds are the synthesized screen's annotated compounds, left out in turn
    assert list(run.folds.values()) == [
        "taxol",
        "docetaxel",
        "anisomycin",
        "emetine",
        "AZ258",
        "AZ841",
    ]
    assert len(run.plates) == 4 and run.predict_unannotated
    # channel_adapter stem: every stored channel feeds the network
    assert run.training["ResNet50"].input_channels is None
    assert run.prediction_names == ["ResNet50"] and run.ensemble is None
    assert run.ensemble_tables("nearest_neighbours") == []


def test_a_set_data_setting_is_kept_over_the_synthesizers_default():
    config = validated(shipped("demo_screen"))
    config["data"]["control"] = "Vehicle"
    assert plan(config).data["control"] == "Vehicle"


def test_the_default_compound_folds_are_every_annotated_compound():
    config = validated(shipped("demo"))
    del config["training"]["folds"]["compounds"]
    run = plan(config)
    assert list(run.folds.values()) == [
        "taxol",
        "docetaxel",
        "anisomycin",
        "emetine",
        "AZ258",
        "AZ841",
    ]
    assert "compounds" not in config["training"]["folds"]


def test_prediction_unannotated_false_trains_no_all_compound_fold():
    config = validated(shipped("demo"))
    config["prediction"]["unannotated"] = False
    run = plan(config)
    assert ALL_FOLD not in run.trained_folds and run.model_folds == []
    assert (
        not run.unannotated_outputs and len(run.outputs) == 19 + 5
    )  # the landing page and galleries among them, and the CellProfiler baseline's 5 files
    assert not run.profile_exports  # no all-compound model to export profiles of


def errors(config: dict) -> str:
    """The message of the ValueError that planning ``config`` raises."""
    with pytest.raises(ValueError) as error:
        plan(config)
    return str(error.value)


def test_screen_settings_are_refused_for_a_published_dataset():
    config = validated(shipped("demo"))
    config["data"]["batch_column"] = "Metadata_Batch"
    assert "data.batch_column describe your own screen and apply to dataset: loaddata only" in (
        errors(config)
    )


def test_a_synthetic_screen_needs_a_folder_to_write_to():
    config = validated(shipped("demo_screen"))
    del config["data"]["base_url"]
    assert "a synthetic screen (dataset: loaddata) needs data.base_url" in errors(config)


def test_a_synthetic_dataset_is_written_to_a_local_folder_not_a_url():
    config = validated(shipped("demo"))
    config["data"]["base_url"] = "https://example.org/bbbc021"
    message = errors(config)
    assert "data.base_url must be a local folder" in message
    assert "'https://example.org/bbbc021'" in message


def test_plates_are_required_without_a_synthetic_section():
    config = validated(shipped("config"))
    del config["data"]["plates"]
    assert "config: data.plates is required" in errors(config)


def test_raw_dir_does_not_apply_to_a_loaddata_screen():
    config = validated(shipped("demo_screen"))
    config["data"]["raw_dir"] = "/data/plates"
    assert "data.raw_dir does not apply to dataset loaddata" in errors(config)


def test_xla_with_deterministic_ops_is_refused_naming_the_network():
    config = validated(shipped("demo"))
    config["training"]["per_network"] = {"InceptionV3": {"jit_compile": True}}
    message = errors(config)
    assert "config: training (InceptionV3)" in message and "deterministic: false" in message
    config["training"]["per_network"]["InceptionV3"]["deterministic"] = False
    assert plan(config).training["InceptionV3"].jit_compile


def test_an_unknown_per_network_setting_is_named():
    config = validated(shipped("demo"))
    config["training"]["per_network"] = {"ResNet50": {"epochz": 3}}
    message = errors(config)
    assert "training (ResNet50)" in message and "epochz" in message


def test_a_compound_scheme_on_bbbc014_is_refused_naming_it():
    config = validated(shipped("demo_bbbc014"))
    config["training"]["folds"] = {"scheme": "nsc", "compounds": ["TNF-alpha"]}
    assert "fold scheme 'nsc' does not apply to bbbc014" in errors(config)


def test_held_out_and_compounds_together_are_refused():
    config = validated(shipped("demo"))
    config["training"]["folds"]["held_out"] = ["taxol"]
    assert "give training.folds.held_out or training.folds.compounds, not both" in errors(config)


def test_cell_line_folds_are_given_as_held_out():
    config = validated(shipped("demo_bbbc014"))
    config["training"]["folds"] = {"scheme": "cell_line", "compounds": ["MCF7"]}
    assert "the cell_line scheme holds out cell lines" in errors(config)


def test_unannotated_predictions_need_a_compound_scheme():
    config = validated(shipped("demo_bbbc014"))
    config["prediction"]["unannotated"] = True
    message = errors(config)
    assert "prediction.unannotated needs a leave-one-compound-out fold scheme" in message
    assert "not cell_line; set prediction.unannotated: false" in message


def test_single_cell_crops_are_a_tensors_param_only_when_asked_for():
    """crops.mode: cells adds its settings to the tensors' params (a change reruns the tensors);
    the paper's fields keep the params they had (no rerun of existing runs)."""
    fields = plan(validated(shipped("demo")))
    assert fields.crops == {"rows": 2, "cols": 2, "resize": None}
    config = shipped("demo")
    config["preprocessing"]["crops"] = {"mode": "cells", "cell_size": 48, "max_cells": 20}
    cells = plan(validated(config))
    assert cells.crops == {
        "rows": 2,
        "cols": 2,
        "resize": None,
        "mode": "cells",
        "cell_size": 48,
        "max_cells": 20,
    }
    settings = TensorSettings.from_config({"crops": cells.crops}, BBBC021())
    assert settings.cells.size == 48 and settings.cells.max_cells == 20
    assert TensorSettings.from_config({"crops": fields.crops}, BBBC021()).cells is None


def test_the_cells_demo_is_the_demo_on_single_cell_crops():
    """config/demo_cells.yaml changes config/demo.yaml (make demo-cells gives both, in order)."""
    from snakemake.utils import update_config

    config = shipped("demo")
    update_config(config, shipped("demo_cells"))
    run = plan(validated(config))
    assert run.crops["mode"] == "cells" and run.crops["cell_size"] == 48
    assert run.networks == ["ResNet50"] and run.baseline == "CellProfiler"
    assert run.folds == plan(validated(shipped("demo"))).folds
