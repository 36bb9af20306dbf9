"""The Snakemake workflow itself: planning, lint, formatting, config validation, and an
end-to-end run on a tiny synthetic dataset (one network, four folds)."""

import json
import re
import subprocess
import sys

import h5py
import numpy as np
import pandas as pd
import pytest
import yaml

from cellmoa.preprocess.tensors import read_crop_metadata
from tests.helpers.paths import ROOT
from tests.helpers.smk import E2E_CONFIG, planned_jobs, snakemake, write_config
from tests.helpers.smk import write_config as _write_config


@pytest.mark.workflow
def test_real_config_plans_114_gpu_training_jobs(tmp_path):
    proc = snakemake(
        "-n",
        "--cores",
        "8",
        "--directory",
        str(tmp_path),
        f"--configfile={ROOT / 'config/config.yaml'}",
    )
    jobs = planned_jobs(proc.stdout)
    train = [j for j in jobs if j["rule"] == "train"]
    assert len(train) == 114
    assert all(j["resources"].get("gpu") == "1" for j in train)
    # and one all-compound fold per network, predicting the ~75 unannotated compounds
    train_all = [j for j in jobs if j["rule"] == "train_all"]
    assert sorted(j["wildcards"]["network"] for j in train_all) == [
        "InceptionResNetV2",
        "InceptionV3",
        "ResNet50",
    ]
    assert all(j["resources"].get("gpu") == "1" for j in train_all)
    assert "results/tables/unannotated_Ensemble.tsv" in proc.stdout
    assert {j["wildcards"]["network"] for j in train} == {
        "ResNet50",
        "InceptionV3",
        "InceptionResNetV2",
    }
    assert "mevinolin-lovastatin" in {j["wildcards"]["fold"] for j in train}
    assert len([j for j in jobs if j["rule"] == "download_plate"]) == 55


@pytest.mark.workflow
def test_one_fold_target_plans_one_training_job(tmp_path):
    proc = snakemake(
        "-n",
        "--cores",
        "8",
        "--directory",
        str(tmp_path),
        f"--configfile={ROOT / 'config/config.yaml'}",
        "results/models/ResNet50/epothilone-b/predictions.tsv",
    )
    train = [j for j in planned_jobs(proc.stdout) if j["rule"] == "train"]
    assert [j["wildcards"] for j in train] == [{"network": "ResNet50", "fold": "epothilone-b"}]


@pytest.mark.workflow
def test_the_demo_plans_one_training_job_per_network(tmp_path):
    """training.jobs: per_network (the demo): one gpu=1 job per network writes every fold's
    files."""
    proc = snakemake(
        "-n",
        "--cores",
        "2",
        "--directory",
        str(tmp_path),
        f"--configfile={ROOT / 'config/demo.yaml'}",
    )
    jobs = planned_jobs(proc.stdout)
    assert not [j for j in jobs if j["rule"] == "train"]
    per_network = [j for j in jobs if j["rule"] == "train_network"]
    assert sorted(j["wildcards"]["network"] for j in per_network) == [
        "InceptionResNetV2",
        "InceptionV3",
        "ResNet50",
    ]
    assert all(j["resources"].get("gpu") == "1" for j in per_network)
    demo = yaml.safe_load((ROOT / "config/demo.yaml").read_text())
    assert "results/models/InceptionV3/az841/predictions.tsv" in proc.stdout
    assert (
        "results/models/InceptionV3/all/model.keras" in proc.stdout
    )  # the all-compound fold's model is kept
    assert (
        "results/models/InceptionV3/az841/model.keras" not in proc.stdout
    )  # training.fold_models: false
    assert len(demo["training"]["folds"]["compounds"]) == 6


@pytest.mark.workflow
def test_lint_is_clean(tmp_path):
    proc = snakemake("--lint", check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Congratulations" in proc.stdout + proc.stderr
    # a loaddata screen defines other download rules (fetch_plate_images): linted too
    proc = snakemake(
        "--lint",
        "--directory",
        str(tmp_path),
        f"--configfile={ROOT / 'config/demo_screen.yaml'}",
        check=False,
    )
    assert proc.returncode == 0 and "Congratulations" in proc.stdout + proc.stderr, (
        proc.stdout + proc.stderr
    )


@pytest.mark.workflow
def test_screen_settings_are_refused_for_a_published_dataset(tmp_path):
    config = write_config(
        tmp_path / "c.yaml",
        {**E2E_CONFIG, "data": {**E2E_CONFIG["data"], "batch_column": "Metadata_Batch"}},
    )
    proc = snakemake("-n", "--directory", str(tmp_path), f"--configfile={config}", check=False)
    assert proc.returncode != 0
    assert (
        "data.batch_column describe your own screen and apply to dataset: loaddata only"
        in proc.stdout + proc.stderr
    )


@pytest.mark.workflow
def test_snakefmt_is_clean():
    proc = subprocess.run(
        [sys.executable, "-m", "snakefmt", "--check", "."], cwd=ROOT, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.workflow
def test_a_wrong_config_key_is_named(tmp_path):
    config = yaml.safe_load((ROOT / "config" / "demo.yaml").read_text())
    config["training"]["epochz"] = 3
    proc = snakemake(
        "-n",
        "--directory",
        str(tmp_path),
        "--configfile",
        str(_write_config(tmp_path / "c.yaml", config)),
        check=False,
    )
    assert proc.returncode != 0
    assert "epochz" in proc.stdout + proc.stderr


@pytest.mark.workflow
def test_a_wrong_config_type_is_named(tmp_path):
    config = yaml.safe_load((ROOT / "config" / "demo.yaml").read_text())
    config["training"]["batch_size"] = "eight"
    proc = snakemake(
        "-n",
        "--directory",
        str(tmp_path),
        "--configfile",
        str(_write_config(tmp_path / "c.yaml", config)),
        check=False,
    )
    assert proc.returncode != 0
    assert "batch_size" in proc.stdout + proc.stderr and "'eight'" in proc.stdout + proc.stderr


@pytest.mark.workflow
def test_xla_with_deterministic_ops_is_refused_before_any_job(tmp_path):
    """Keras silently drops XLA under deterministic ops; the config check says so up front."""
    config = yaml.safe_load((ROOT / "config" / "demo.yaml").read_text())
    config["training"]["per_network"] = {"InceptionV3": {"jit_compile": True}}
    proc = snakemake(
        "-n",
        "--directory",
        str(tmp_path),
        "--configfile",
        str(_write_config(tmp_path / "c.yaml", config)),
        check=False,
    )
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    assert "training (InceptionV3)" in out and "deterministic: false" in out
    config["training"]["per_network"]["InceptionV3"]["deterministic"] = False
    snakemake(
        "-n",
        "--directory",
        str(tmp_path),
        "--configfile",
        str(_write_config(tmp_path / "c.yaml", config)),
    )


@pytest.mark.e2e
def test_end_to_end_tables_match_the_predictions(e2e_run):
    work, _, _ = e2e_run
    tables = work / "results" / "tables"
    folds = ["nocodazole", "vincristine", "cytochalasin-b", "latrunculin-b"]
    predictions = pd.concat(
        [
            pd.read_csv(work / "results/models/ResNet50" / f / "predictions.tsv", sep="\t")
            for f in folds
        ]
    )
    # recompute the treatment-level accuracy independently of cellmoa.evaluate.accuracy
    prob_cols = [c for c in predictions.columns if c.startswith("prob_")]
    classes = np.array([c[len("prob_") :] for c in prob_cols])
    correct = []
    for _treatment, t in predictions.groupby(["Metadata_Compound", "Metadata_Concentration"]):
        per_rep = np.stack(
            [g[prob_cols].median().to_numpy() for _, g in t.groupby("Metadata_Replicate")]
        )
        correct.append(classes[np.median(per_rep, axis=0).argmax()] == t["Metadata_MoA"].iloc[0])
    summary = pd.read_csv(tables / "summary.tsv", sep="\t")
    # the network, then the CellProfiler baseline (profiles.baseline; its own test below)
    assert summary["Metadata_Network"].tolist() == ["ResNet50", "CellProfiler"]
    assert summary.loc[0, "n_treatments"] == 8 == len(correct)
    assert summary.loc[0, "n_correct"] == sum(correct)
    assert summary.loc[0, "treatment_accuracy"] == pytest.approx(np.mean(correct))
    crop_pred = classes[predictions[prob_cols].to_numpy().argmax(axis=1)]
    assert summary.loc[0, "crop_accuracy"] == pytest.approx(
        np.mean(crop_pred == predictions["Metadata_MoA"].to_numpy())
    )
    treatments = pd.read_csv(tables / "treatments_ResNet50.tsv", sep="\t")
    assert len(treatments) == 8 and treatments["correct"].sum() == sum(correct)
    accuracy = pd.read_csv(tables / "accuracy_ResNet50.tsv", sep="\t").set_index("Metadata_MoA")
    assert accuracy.loc["all", "n_treatments"] == 8
    # every fold predicted exactly its own compound and never trained on it
    for fold, compound in zip(
        folds, ["nocodazole", "vincristine", "cytochalasin B", "latrunculin B"]
    ):
        p = pd.read_csv(work / "results/models/ResNet50" / fold / "predictions.tsv", sep="\t")
        assert set(p["Metadata_Compound"]) == {compound}
        info = yaml.safe_load((work / "results/models/ResNet50" / fold / "fold.json").read_text())
        assert compound not in info["train_compounds"]
    # nearest-neighbour matching: every treatment once per scheme, from its own fold's embeddings
    all_matches = pd.read_csv(tables / "nearest_neighbours_ResNet50.tsv", sep="\t")
    matches = all_matches[all_matches["Metadata_Profiles"] == "raw"]
    assert sorted(matches["Metadata_MatchScheme"].value_counts().tolist()) == [8, 8]
    nsc = matches[matches["Metadata_MatchScheme"] == "nsc"]
    assert (nsc["neighbour_compound"] != nsc["Metadata_Compound"]).all()
    assert summary.loc[0, "nn_nsc_accuracy"] == pytest.approx(nsc["correct"].mean())
    assert summary.loc[0, "nn_nsc_n"] == 8
    # NSCB: each compound lives in one week, and with 2 MoAs over 2 weeks the round-robin puts an
    # MoA's two compounds in the same week, so NSCB finds no same-MoA compound in another batch
    # and scores none here; the summary's count must still be the matches' count
    assert (
        summary.loc[0, "nn_nscb_n"]
        == matches.loc[matches["Metadata_MatchScheme"] == "nscb", "scored"].sum()
    )
    # the default profiles.postprocess (embeddings: standardise, PCA and sphere on the controls):
    # raw and post-processed profiles side by side, what each step did in each fold recorded
    assert set(all_matches["Metadata_Profiles"]) == {"raw", "postprocessed"}
    assert (all_matches.groupby(["Metadata_Profiles", "Metadata_MatchScheme"]).size() == 8).all()
    notes = pd.read_csv(tables / "postprocessing_ResNet50.tsv", sep="\t")
    assert len(notes) == 4 * 3 and set(notes["step"]) == {"normalize", "pca", "spherize"}
    steps = notes.groupby("step")["what"]
    assert steps.get_group("normalize").str.contains("standardize by screen on controls").all()
    assert steps.get_group("pca").str.contains("fit on 8 controls samples").all()
    assert steps.get_group("spherize").str.contains("ZCA, epsilon 1, fit on 8 control").all()
    aps = pd.read_csv(tables / "average_precision_ResNet50.tsv", sep="\t")
    aps = aps[aps["Metadata_Profiles"] == "raw"]
    assert sorted(aps["Metadata_MatchScheme"].value_counts().tolist()) == [8, 8]
    assert {"pp_nn_nsc_accuracy", "pp_nn_nscb_accuracy", "pp_map_nscb"} <= set(summary.columns)
    assert summary.loc[0, "map_nsc"] == pytest.approx(
        aps.loc[aps["Metadata_MatchScheme"] == "nsc", "average_precision"].mean()
    )
    for kind in ("", "exact_"):
        low, high = summary.loc[
            0, [f"treatment_accuracy_{kind}ci_low", f"treatment_accuracy_{kind}ci_high"]
        ]
        assert low <= summary.loc[0, "treatment_accuracy"] <= high
    # the tensors keep the plates' control fields (2 DMSO wells x 1 site x 4 plates, 4 crops each),
    # flagged; every fold embeds them; no prediction, match or score ever covers them
    from cellmoa.preprocess.tensors import read_crop_metadata

    qc = pd.read_csv(work / "results/illumination" / f"{meta_plate(work)}.qc.tsv", sep="\t")
    assert (
        list(qc.columns) == ["channel", "n_fields", "max_min_ratio", "structure", "warnings"]
        and len(qc) == 3
    )
    meta = read_crop_metadata(work / "results/tensors/all.h5")
    assert (meta["is_control"] == 1).sum() == 2 * 4 * 4
    assert set(meta.loc[meta["is_control"] == 1, "compound"]) == {"DMSO"}
    with h5py.File(work / "results/models/ResNet50/nocodazole/embeddings.h5", "r") as f:
        assert f["embeddings"].shape[0] == len(meta)
    assert "DMSO" not in set(predictions["Metadata_Compound"]) | set(
        all_matches["Metadata_Compound"]
    )
    assert "DMSO" not in set(all_matches["neighbour_compound"].dropna())
    per_moa = pd.read_csv(tables / "summary_per_moa.tsv", sep="\t").set_index("Metadata_MoA")
    assert per_moa.loc["all", "ResNet50"] == pytest.approx(np.mean(correct))
    assert (work / "results/plots/accuracy.png").stat().st_size > 1000
    assert (work / "results/plots/confusion_ResNet50.png").stat().st_size > 1000
    # the report's Profiles page: NSC/NSCB/mAP bars, the map of treatment profiles; one network:
    # no ensemble
    assert (work / "results/plots/matching.png").stat().st_size > 1000
    assert (work / "results/plots/profiles_ResNet50.png").stat().st_size > 1000
    assert not (tables / "nearest_neighbours_Ensemble.tsv").exists()
    # the unannotated compound: kept in the tensors (annotated = 0), never trained on or scored,
    # predicted by the all-compound fold, calibrated on the four leave-one-out folds
    unannotated = meta[(meta["annotated"] == 0) & (meta["is_control"] == 0)]
    assert set(unannotated["compound"]) == {"AZ-U1"}
    assert "AZ-U1" not in set(predictions["Metadata_Compound"]) | set(
        treatments["Metadata_Compound"]
    )
    assert "AZ-U1" not in set(all_matches["Metadata_Compound"]) | set(
        all_matches["neighbour_compound"].dropna()
    )
    all_fold = pd.read_csv(work / "results/models/ResNet50/all/predictions.tsv", sep="\t")
    assert set(all_fold["Metadata_Compound"]) == {"AZ-U1"} and len(all_fold) == len(unannotated)
    info = yaml.safe_load((work / "results/models/ResNet50/all/fold.json").read_text())
    assert sorted(info["train_compounds"]) == sorted(
        ["nocodazole", "vincristine", "cytochalasin B", "latrunculin B"]
    )
    table = pd.read_csv(tables / "unannotated_ResNet50.tsv", sep="\t")
    assert list(table.columns[:14]) == [
        "Metadata_Compound",
        "Metadata_Concentration",
        "n_crops",
        "n_wells",
        "n_replicates",
        "top_moa",
        "top_probability",
        "margin",
        "prediction_set",
        "set_size",
        "novel",
        "novel_reason",
        "novelty_p_value",
        "dose_consistent",
    ]
    assert {"neighbour_1_compound", "neighbour_3_similarity", "prob_Actin disruptors"} <= set(
        table.columns
    )
    assert len(table) == 2 and set(table["Metadata_Concentration"]) == {0.3, 3.0}
    assert (table["n_replicates"] == 2).all() and table["top_probability"].between(0, 1).all()
    assert set(table["neighbour_1_compound"]) <= {
        "nocodazole",
        "vincristine",
        "cytochalasin B",
        "latrunculin B",
    }
    calibration = pd.read_csv(tables / "calibration.tsv", sep="\t")
    assert (
        set(calibration["Metadata_Network"]) == {"ResNet50"}
        and calibration["configured"].sum() == 1
    )
    assert (calibration["n_treatments"] == 8).all() and (calibration["n_compounds"] == 4).all()
    assert (work / "results/plots/unannotated.png").stat().st_size > 1000
    assert (work / "results/plots/calibration.png").stat().st_size > 1000
    assert not (tables / "unannotated_Ensemble.tsv").exists()
    # logs per job
    assert (work / "logs/train/ResNet50/all.log").stat().st_size > 0
    assert (work / "logs/train/ResNet50/nocodazole.log").stat().st_size > 0
    assert "epoch 1/1" in (work / "logs/train/ResNet50/nocodazole.log").read_text()


@pytest.mark.e2e
def test_rerunning_one_fold_runs_only_that_fold(e2e_run):
    work, config, _ = e2e_run
    models = work / "results/models/ResNet50"
    before = {f.name: (f / "predictions.tsv").stat().st_mtime_ns for f in models.iterdir()}
    proc = snakemake(
        "--cores",
        "2",
        "--directory",
        str(work),
        f"--configfile={config}",
        "--forcerun",
        "results/models/ResNet50/vincristine/predictions.tsv",
        "results/models/ResNet50/vincristine/predictions.tsv",
    )
    after = {f.name: (f / "predictions.tsv").stat().st_mtime_ns for f in models.iterdir()}
    assert [f for f in before if before[f] != after[f]] == ["vincristine"]
    stats = proc.stdout + proc.stderr
    assert re.search(r"^train\s+1$", stats, re.M), stats[-3000:]
    # nothing else is out of date but the tables that read this fold
    dry = snakemake("-n", "--cores", "2", "--directory", str(work), f"--configfile={config}")
    rules = {j["rule"] for j in planned_jobs(dry.stdout)}
    assert "train" not in rules and rules <= {
        "aggregate",
        "summary",
        "matching_plot",
        "unannotated",
        "all",
    }


@pytest.mark.e2e
def test_a_fold_trains_and_predicts_on_the_jax_backend(e2e_run, tmp_path):
    """training.backend: jax reaches the job (KERAS_BACKEND, numpy input, no TensorFlow in the
    training step): in a copy of the end-to-end workdir the changed setting reruns the fold's
    training, on JAX, and its predictions are a valid table."""
    import shutil

    from tests.helpers.smk import E2E_CONFIG

    work, _, _ = e2e_run
    copy = tmp_path / "work"
    shutil.copytree(work, copy, symlinks=True)
    config = _write_config(
        tmp_path / "jax.yaml",
        {**E2E_CONFIG, "training": {**E2E_CONFIG["training"], "backend": "jax"}},
    )
    target = "results/models/ResNet50/vincristine/predictions.tsv"
    proc = snakemake(
        "--cores", "2", "--directory", str(copy), f"--configfile={config}", target, timeout=900
    )
    assert re.search(r"^train\s+1$", proc.stdout + proc.stderr, re.M), (proc.stdout + proc.stderr)[
        -3000:
    ]
    log = (copy / "logs/train/ResNet50/vincristine.log").read_text()
    assert "JAX " in log and "TensorFlow " not in log, log[-3000:]
    table = pd.read_csv(copy / target, sep="\t")
    probs = table[[c for c in table.columns if c.startswith("prob_")]].to_numpy()
    assert len(table) > 0 and set(table["Metadata_Compound"]) == {"vincristine"}
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)


@pytest.mark.e2e
def test_one_network_trains_and_scores_on_single_cell_crops(e2e_run, tmp_path):
    """preprocessing.crops.mode: cells - in a copy of the end-to-end workdir the tensors are cut
    around the nuclei of the segmentation (the same HDF5 layout, crop = the nucleus's label), and
    training, prediction, embeddings and the tables downstream run unchanged on them."""
    import shutil

    from tests.helpers.smk import E2E_CONFIG

    work, _, _ = e2e_run
    copy = tmp_path / "work"
    shutil.copytree(work, copy, symlinks=True)
    # at most 6 cells a field: 1.5x the grid's crops, so that the test's training stays short
    preprocessing = {"crops": {"mode": "cells", "cell_size": 24, "max_cells": 6}}
    config = _write_config(tmp_path / "cells.yaml", {**E2E_CONFIG, "preprocessing": preprocessing})
    proc = snakemake(
        "--cores",
        "2",
        "--directory",
        str(copy),
        f"--configfile={config}",
        "results/tables/summary.tsv",
        timeout=1200,
    )
    out = proc.stdout + proc.stderr
    assert re.search(r"^tensors\s+\d+$", out, re.M) and re.search(r"^train\s+\d+$", out, re.M)
    meta = read_crop_metadata(copy / "results/tensors/all.h5")
    with h5py.File(copy / "results/tensors/all.h5") as f:
        assert f["images"].shape[1:] == (24, 24, 3)
    fields = meta.groupby(["plate", "image_number"]).size()
    assert fields.max() > 4  # more cells than the 2 x 2 grid's crops a field
    # every crop is a nucleus of the segmentation, once
    for plate, crops in meta.groupby("plate"):
        objects = pd.read_parquet(copy / f"results/segmentation/{plate}.objects.parquet")
        nuclei = objects[objects["kind"] == "nucleus"]
        known = set(zip(nuclei["image_number"], nuclei["label"]))
        ids = list(zip(crops["image_number"], crops["crop"]))
        assert set(ids) <= known and len(ids) == len(set(ids))
    summary = pd.read_csv(copy / "results/tables/summary.tsv", sep="\t")
    row = summary.set_index("Metadata_Network").loc["ResNet50"]
    assert row["n_treatments"] == 8 and 0 <= row["treatment_accuracy"] <= 1
    assert np.isfinite(row["nn_nsc_accuracy"])


def meta_plate(work):
    return sorted(p.stem for p in (work / "results/illumination").glob("*.h5"))[0]


@pytest.mark.e2e
def test_params_are_only_what_changes_outputs(e2e_run, tmp_path):
    """A download timeout or another network's settings change no output: no job reruns for them
    (they used to be params, which Snakemake treats as inputs: 41 GB fetched again, 114 jobs
    retrained). One network's own setting reruns that network's training only."""
    from tests.helpers.smk import E2E_CONFIG

    work, _, _ = e2e_run

    def planned(change):
        config = {
            **E2E_CONFIG,
            "data": dict(E2E_CONFIG["data"]),
            "training": dict(E2E_CONFIG["training"]),
        }
        change(config)
        path = _write_config(tmp_path / "changed.yaml", config)
        dry = snakemake("-n", "--cores", "2", "--directory", str(work), f"--configfile={path}")
        return {j["rule"] for j in planned_jobs(dry.stdout)}

    data_only = planned(lambda c: c["data"].update(timeout=7, retries=9, max_bytes=123456789))
    assert not data_only & {
        "download_metadata",
        "download_plate",
        "extract_plate",
        "train",
        "illumination",
    }, data_only
    other_network = planned(
        lambda c: c["training"].update(
            per_network={"InceptionV3": {"epochs": 3}}, checkpoint_minutes=5
        )
    )
    assert "train" not in other_network, other_network
    own = planned(lambda c: c["training"].update(per_network={"ResNet50": {"epochs": 2}}))
    assert "train" in own and not own & {"download_plate", "extract_plate", "tensors"}, own


@pytest.mark.e2e
def test_the_cellprofiler_baseline_is_scored_like_the_network(e2e_run):
    """profiles.baseline: cellprofiler - the cells segmented and measured per plate, their well
    profiles scored on the network's folds and tables, a CellProfiler row in the summary."""
    work, _, _ = e2e_run
    results = work / "results"
    folds = ["nocodazole", "vincristine", "cytochalasin-b", "latrunculin-b"]
    network = pd.concat(
        [pd.read_csv(results / "models/ResNet50" / f / "predictions.tsv", sep="\t") for f in folds]
    )
    baseline = pd.concat(
        [
            pd.read_csv(results / "models/CellProfiler" / f / "predictions.tsv", sep="\t")
            for f in folds
        ]
    )
    # the same held-out crops, fold by fold, as the network's
    keys = ["Metadata_Fold", "Metadata_Plate", "Metadata_ImageNumber", "Metadata_Crop"]
    assert sorted(map(tuple, baseline[keys].values)) == sorted(map(tuple, network[keys].values))
    # each crop carries its well's call
    calls = baseline.groupby(["Metadata_Plate", "Metadata_Well"])["predicted_moa"]
    assert (calls.nunique() == 1).all()
    summary = pd.read_csv(results / "tables/summary.tsv", sep="\t").set_index("Metadata_Network")
    row = summary.loc["CellProfiler"]
    treatments = pd.read_csv(results / "tables/treatments_CellProfiler.tsv", sep="\t")
    assert row["n_treatments"] == 8 == len(treatments)
    assert row["n_correct"] == treatments["correct"].sum()
    for column in ("treatment_accuracy_ci_low", "treatment_accuracy_exact_ci_high",
                   "nn_nsc_accuracy", "map_nsc", "pp_nn_nsc_accuracy"):  # fmt: skip
        assert np.isfinite(row[column]), column
    # the well profiles in pycytominer's layout: every well of the tensors, CellProfiler's names
    wells = pd.read_parquet(results / "profiles/CellProfiler.parquet")
    meta = read_crop_metadata(results / "tensors/all.h5")
    assert len(wells) == meta.groupby(["plate", "well"]).ngroups
    assert {"Metadata_Plate", "Metadata_Well", "Metadata_MoA"} <= set(wells.columns)
    assert "Cells_Intensity_MeanIntensity_Tubulin" in wells.columns
    assert "Nuclei_AreaShape_Area" in wells.columns
    # segmentation per plate: labels, objects and a QC record per stored field
    plates = sorted(meta["plate"].unique())
    for plate in plates:
        qc = pd.read_csv(results / f"segmentation/{plate}.qc.tsv", sep="\t")
        stored = meta.loc[meta["plate"] == plate, "image_number"].nunique()
        assert len(qc) == stored and (qc["n_nuclei"] > 0).all()
    assert (results / "plots/segmentation.png").stat().st_size > 10000


@pytest.mark.e2e
def test_the_html_report_builds(e2e_run):
    work, config, _ = e2e_run
    snakemake(
        "--directory",
        str(work),
        f"--configfile={config}",
        "--report",
        "results/report.html",
        timeout=600,
    )
    html = (work / "results/report.html").read_text(errors="replace")
    assert len(html) > 10000
    for expected in (
        "summary.tsv",
        "confusion_ResNet50.png",
        "accuracy.png",
        "Kensert",
        "matching.png",
        "profiles_ResNet50.png",
        "unannotated.png",
        "calibration.png",
        "unannotated_ResNet50.tsv",
        "gallery_moas.png",
        "gallery_misclassified.png",
        "gallery_unannotated.png",
        "segmentation.png",
        "confusion_CellProfiler.png",
    ):
        assert expected in html, expected
    # the report opens on the workflow description, which embeds the landing page: the summary
    # table, the accuracy figure and the unannotated calls, without a click
    match = re.search(r"var workflow_desc = (\".*?\");\n", html, re.S)
    assert match, "no workflow description in the report"
    landing = json.loads(match.group(1))
    assert "System Message" not in landing, landing[:2000]
    assert 'class="cellmoa-landing"' in landing
    assert "<h3>Summary</h3>" in landing and "<td>ResNet50</td>" in landing
    assert "<td>CellProfiler</td>" in landing
    assert '<img alt="treatment accuracy of every network" src="data:image/png;base64,' in landing
    assert "<h3>Unannotated compounds (ResNet50)</h3>" in landing and "AZ-U1" in landing


@pytest.mark.workflow
def test_a_restriction_leaves_a_compound_out_of_the_tensors(tmp_path):
    """preprocessing.restrictions (the paper's taxol exception) through the rules: nocodazole kept
    only at 3 uM, cytochalasin B (synthesized in week 2) only in week 1, that is nowhere."""
    import copy

    from cellmoa.preprocess.tensors import read_crop_metadata
    from tests.helpers.smk import E2E_CONFIG

    config = copy.deepcopy(E2E_CONFIG)
    config["preprocessing"] = {
        "restrictions": [
            {"compound": "nocodazole", "concentrations": [3.0]},
            {"compound": "cytochalasin B", "batches": ["Week1"]},
        ]
    }
    path = _write_config(tmp_path / "config.yaml", config)
    snakemake(
        "--cores",
        "2",
        "--directory",
        str(tmp_path),
        f"--configfile={path}",
        "results/tensors/all.h5",
    )
    meta = read_crop_metadata(tmp_path / "results/tensors/all.h5")
    nocodazole = meta[meta["compound"] == "nocodazole"]
    assert len(nocodazole) > 0 and set(nocodazole["concentration"]) == {3.0}
    assert "cytochalasin B" not in set(meta["compound"])
    assert set(meta[meta["compound"] == "vincristine"]["concentration"]) == {0.3, 3.0}
    assert set(meta[meta["compound"] == "latrunculin B"]["concentration"]) == {0.3, 3.0}
    log = "".join(p.read_text() for p in (tmp_path / "logs/tensors").glob("*.log"))
    assert "left out by preprocessing.restrictions" in log
