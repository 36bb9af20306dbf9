"""cellmoa's CNN profiles exported in pycytominer's layout (cellmoa.profiles.export), and the
exported tables read back by `cellmoa evaluate-profiles` (an empty MoA is unannotated there)."""

import logging

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
    MOA,
    PLATE,
    WELL,
)
from cellmoa.files import read_table, read_tsv, write_parquet
from cellmoa.profiles.annotate import annotate_profiles
from cellmoa.profiles.export import export_treatments, export_wells
from cellmoa.profiles.tables import UNANNOTATED, fold_profiles, treatment_profiles
from cellmoa.validation import TableError

pytestmark = pytest.mark.unit

#: (well, compound, concentration, MoA, crops per well): the same layout on both plates
WELLS = [
    ("A01", "DMSO", 0.0, "DMSO", 3),
    ("A02", "DMSO", 0.0, "DMSO", 2),
    ("B01", "taxol", 0.3, "Microtubule stabilizers", 2),
    ("B02", "taxol", 3.0, "Microtubule stabilizers", 3),
    ("C01", "docetaxel", 0.3, "Microtubule stabilizers", 1),
    ("D01", "emetine", 1.0, "Protein synthesis", 2),
    ("D02", "anisomycin", 1.0, "Protein synthesis", 2),
    ("E01", "AZ-U1", 1.0, "", 3),  # unannotated: the tensors leave its MoA empty
]
PLATES = [("P1", "Week1"), ("P2", "Week2")]


def crop_metadata() -> pd.DataFrame:
    """The tensors' crop metadata (read_crop_metadata's columns), crops per well unequal."""
    rows = []
    for plate, batch in PLATES:
        for well, compound, concentration, moa, n in WELLS:
            for crop in range(n):
                rows.append(
                    {
                        "plate": plate,
                        "batch": batch,
                        "cell_line": "MCF-7",
                        "well": well,
                        "site": 1,
                        "crop": crop,
                        "replicate": 1,
                        "compound": compound,
                        "concentration": concentration,
                        "moa": moa,
                        "image_number": 1,
                        "is_control": int(compound == "DMSO"),
                        "annotated": int(compound != "DMSO" and moa != ""),
                    }
                )
    return pd.DataFrame(rows)


@pytest.fixture
def crops():
    metadata = crop_metadata()
    embeddings = np.random.default_rng(0).normal(size=(len(metadata), 5)).astype(np.float16)
    return metadata, embeddings


def test_one_row_per_well_controls_and_unannotated_included(crops, tmp_path):
    metadata, embeddings = crops
    wells = export_wells(metadata, embeddings)
    features = [f"f{i}" for i in range(5)]
    assert list(wells.columns) == [
        PLATE,
        WELL,
        COMPOUND,
        CONCENTRATION,
        MOA,
        BATCH,
        IS_CONTROL,
        CROPS,
        *features,
    ]
    assert (
        len(wells) == len(PLATES) * len(WELLS) == len(metadata[["plate", "well"]].drop_duplicates())
    )
    assert not wells.duplicated([PLATE, WELL]).any()
    assert (wells[features].dtypes == np.float32).all()
    # the means over each well's crops, and how many crops they are
    values = pd.DataFrame(embeddings.astype(np.float64), columns=features)
    expected = values.groupby([metadata["plate"], metadata["well"]]).mean()
    got = wells.set_index([PLATE, WELL])[features]
    np.testing.assert_allclose(got.to_numpy(), expected.loc[got.index].to_numpy(), rtol=1e-5)
    sizes = metadata.groupby(["plate", "well"]).size()
    assert (wells.set_index([PLATE, WELL])[CROPS] == sizes.loc[got.index]).all()
    # controls kept and flagged, their MoA the control's name; the unannotated MoA missing
    controls = wells[wells[COMPOUND] == "DMSO"]
    assert len(controls) == 4 and (controls[IS_CONTROL] == 1).all()
    assert (controls[MOA] == "DMSO").all()
    unannotated = wells[wells[COMPOUND] == "AZ-U1"]
    assert len(unannotated) == 2 and unannotated[MOA].isna().all()
    assert (unannotated[IS_CONTROL] == 0).all()
    assert wells.loc[wells[COMPOUND] != "AZ-U1", MOA].notna().all()
    assert UNANNOTATED not in set(wells[MOA].dropna())
    assert set(wells[BATCH]) == {"Week1", "Week2"}
    # through Parquet and back: same columns, order, values; the missing MoA a null
    path = write_parquet(wells, tmp_path / "profiles.parquet")
    back = read_table(path)
    assert list(back.columns) == list(wells.columns)
    assert back[MOA].isna().sum() == 2
    np.testing.assert_array_equal(back[features].to_numpy(), wells[features].to_numpy())


def test_treatment_profiles_are_the_workflows_raw_ones_with_unannotated(crops):
    metadata, embeddings = crops
    treatments = export_treatments(metadata, embeddings)
    features = [f"f{i}" for i in range(5)]
    assert list(treatments.columns) == [COMPOUND, CONCENTRATION, MOA, BATCH, CROPS, *features]
    # controls left out; the unannotated compound in, with a missing MoA
    assert "DMSO" not in set(treatments[COMPOUND])
    assert len(treatments) == len(WELLS) - 2
    assert treatments.loc[treatments[COMPOUND] == "AZ-U1", MOA].isna().all()
    assert treatments.set_index(COMPOUND).loc["taxol", BATCH].tolist() == ["Week1;Week2"] * 2
    # the workflow's raw treatment profiles of the same embeddings: the mean over crops
    (name, raw), *_ = fold_profiles(metadata, embeddings, unannotated=True)[0]
    assert name == "raw"
    np.testing.assert_allclose(treatments[features], raw[features], rtol=1e-6)
    assert (
        raw[MOA].where(raw[MOA] != UNANNOTATED).isna().tolist() == treatments[MOA].isna().tolist()
    )
    taxol = (metadata["compound"] == "taxol") & (metadata["concentration"] == 3.0)
    row = treatments[(treatments[COMPOUND] == "taxol") & (treatments[CONCENTRATION] == 3.0)]
    assert row[CROPS].item() == taxol.sum() == 6
    np.testing.assert_allclose(
        row[features].to_numpy()[0],
        embeddings[taxol.to_numpy()].astype(np.float64).mean(0),
        rtol=1e-5,
    )


def test_a_well_with_two_treatments_is_refused(crops):
    metadata, embeddings = crops
    metadata = metadata.copy()
    metadata.loc[(metadata["well"] == "B01") & (metadata["crop"] == 0), "concentration"] = 9.0
    with pytest.raises(ValueError, match="well.*P1 B01.*P2 B01"):
        export_wells(metadata, embeddings)


def test_evaluate_profiles_leaves_the_unannotated_wells_out(crops, tmp_path, capsys, caplog):
    """An exported well table as it is: the unannotated wells (MoA null) are listed in the log
    and never scored; the controls are left out by --control."""
    metadata, embeddings = crops
    path = write_parquet(export_wells(metadata, embeddings), tmp_path / "wells.parquet")
    out = tmp_path / "out"
    args = ["evaluate-profiles", str(path), "--postprocess", "none", "--out", str(out)]
    with caplog.at_level(logging.WARNING):
        assert main([*args, "--control", "DMSO"]) == 0, capsys.readouterr()
    assert "1 treatment(s) (2 rows) have no Metadata_MoA and are left out of scoring" in caplog.text
    assert "AZ-U1 1" in caplog.text
    profiles = read_tsv(out / "profiles.tsv")
    assert set(profiles[COMPOUND]) == {"taxol", "docetaxel", "emetine", "anisomycin"}
    matches = read_tsv(out / "matches.tsv")
    assert "AZ-U1" not in set(matches[COMPOUND]) | set(matches["neighbour_compound"].dropna())
    summary = read_tsv(out / "summary.tsv").set_index("Metadata_MatchScheme")
    assert summary.loc["nsc", "n_treatments"] == 5
    # without --control an empty MoA might be a control's: still an error naming the rows
    assert main(args) == 1
    assert "Metadata_MoA is empty or missing in 2" in capsys.readouterr().err


def test_annotate_profiles_splits_off_an_empty_moa_only_beside_a_control():
    table = pd.DataFrame(
        {
            COMPOUND: ["DMSO", "a", "u", "u"],
            CONCENTRATION: ["0", "1", "0.5", "0.500000"],
            MOA: [None, "X", None, " "],
            "f": [0.0, 1.0, 2.0, 3.0],
        }
    )
    kept, unannotated = annotate_profiles(table, control="DMSO")
    assert kept[COMPOUND].tolist() == ["DMSO", "a"]
    assert unannotated[[COMPOUND, CONCENTRATION, "n_rows", "first_line"]].values.tolist() == [
        ["u", 0.5, 2, 4]
    ]
    # to call their MoA (predict-profiles) they are kept, labelled, and listed all the same
    labelled, listed = annotate_profiles(table, control="DMSO", unannotated_label=UNANNOTATED)
    assert labelled[MOA].tolist()[1:] == ["X", UNANNOTATED, UNANNOTATED]
    assert listed[COMPOUND].tolist() == ["u"]
    same, none = annotate_profiles(table)
    assert same is table and none.empty
    with pytest.raises(TableError, match="Metadata_MoA"):
        treatment_profiles(same)
