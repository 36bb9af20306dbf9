"""The workflow's exported profiles (rule export_profiles) taken round the field's tools: `cellmoa
evaluate-profiles` on results/profiles/<network>.parquet scores what the workflow's own code path
scores from the same all-compound embeddings."""

from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest

from cellmoa.cli import main
from cellmoa.columns import (
    BATCH,
    COMPOUND,
    CONCENTRATION,
    CROPS,
    IS_CONTROL,
    MATCH_SCHEME,
    MOA,
    PLATE,
    WELL,
)
from cellmoa.files import read_tsv
from cellmoa.preprocess.tensors import read_crop_metadata
from cellmoa.profiles.nearest import match_and_rank
from cellmoa.profiles.tables import fold_profiles

#: the exported tables' leading columns (docs/outputs.md)
WELL_COLUMNS = [PLATE, WELL, COMPOUND, CONCENTRATION, MOA, BATCH, IS_CONTROL, CROPS]
TREATMENT_COLUMNS = [COMPOUND, CONCENTRATION, MOA, BATCH, CROPS]


def check_export(work: Path, out: Path) -> None:
    """The exported tables of a finished run in ``work``, evaluated into ``out``."""
    profiles = work / "results/profiles"
    wells = pd.read_parquet(profiles / "ResNet50.parquet")
    treatments = pd.read_parquet(profiles / "ResNet50_treatments.parquet")
    metadata = read_crop_metadata(work / "results/tensors/all.h5")
    with h5py.File(work / "results/models/ResNet50/all/embeddings.h5", "r") as f:
        embeddings = f["embeddings"][()]
    features = [f"f{i}" for i in range(embeddings.shape[1])]
    assert list(wells.columns) == WELL_COLUMNS + features
    assert list(treatments.columns) == TREATMENT_COLUMNS + features
    # every well once, controls and the unannotated compound's included: 8 on each Week1 plate
    # (2 DMSO; 2 compounds and the unannotated AZ-U1 at 2 concentrations), 6 on each Week2 plate
    assert len(wells) == len(metadata[["plate", "well"]].drop_duplicates()) == 28
    assert (wells[IS_CONTROL] == 1).sum() == 8 and set(wells.loc[wells[IS_CONTROL] == 1, MOA]) == {
        "DMSO"
    }
    assert set(wells.loc[wells[MOA].isna(), COMPOUND]) == {"AZ-U1"}
    assert wells[CROPS].sum() == len(metadata)
    assert set(treatments.loc[treatments[MOA].isna(), COMPOUND]) == {"AZ-U1"}
    assert "DMSO" not in set(treatments[COMPOUND]) and len(treatments) == 8 + 2

    code = main(
        [
            "evaluate-profiles",
            str(profiles / "ResNet50.parquet"),
            "--out",
            str(out),
            "--control",
            "DMSO",
            "--postprocess",
            "none",
        ]
    )
    assert code == 0
    # the workflow's code path on the same embeddings: raw treatment profiles (the unannotated
    # compound is not among them), 1-NN per scheme
    (name, raw), *_ = fold_profiles(metadata, embeddings, control="DMSO")[0]
    assert name == "raw"
    matches, _ = match_and_rank(raw)
    # (in this tiny screen each MoA's two compounds share their week: NSCB may score nothing, and
    # then both sides say (0, 0))
    summary = read_tsv(out / "summary.tsv").set_index(MATCH_SCHEME)
    for scheme in ("nsc", "nscb"):
        ours = matches[(matches[MATCH_SCHEME] == scheme) & matches["scored"].astype(bool)]
        assert (summary.loc[scheme, "n_correct"], summary.loc[scheme, "n"]) == (
            int(ours["correct"].astype(bool).sum()),
            len(ours),
        ), scheme
        assert summary.loc[scheme, "n_treatments"] == 8  # AZ-U1 never scored
    # The treatment parquet holds the workflow's treatment profile, the mean over the
    # treatment's crops; evaluate-profiles averages the well profiles. The two agree because
    # every well here has the same number of crops (one site, one crop grid): the mean of equal-
    # sized well means is the mean over crops. With unequal wells they would differ.
    assert wells.loc[wells[IS_CONTROL] == 0, CROPS].nunique() == 1
    evaluated = read_tsv(out / "profiles.tsv")
    annotated = treatments[treatments[MOA].notna()].reset_index(drop=True)
    keys = [COMPOUND, CONCENTRATION, MOA, BATCH]
    assert evaluated[keys].values.tolist() == annotated[keys].values.tolist()
    np.testing.assert_allclose(
        evaluated[features].to_numpy(), annotated[features].to_numpy(), rtol=1e-5, atol=1e-6
    )
    np.testing.assert_allclose(annotated[features].to_numpy(), raw[features].to_numpy(), rtol=1e-6)


@pytest.mark.e2e
def test_exported_profiles_score_as_the_workflow_does(e2e_run, tmp_path):
    work, _, _ = e2e_run
    check_export(work, tmp_path / "evaluated")
    log = (work / "logs/export_profiles/ResNet50.log").read_text()
    assert "28 wells (8 of them controls), 10 treatments (2 unannotated)" in log
