"""The checked joins of cellmoa.profiles.annotate: every unmatched or conflicting row is named."""

import logging

import numpy as np
import pandas as pd
import pytest

from cellmoa.columns import BATCH, COMPOUND, CONCENTRATION, MOA, PLATE, WELL
from cellmoa.profiles.annotate import (
    annotate_profiles,
    batch_from_plate,
    join_moas,
    join_platemap,
    join_report,
)
from cellmoa.profiles.lookups import moa_annotations, normalized_wells, platemap_treatments
from cellmoa.validation import TableError

pytestmark = pytest.mark.unit


def profiles() -> pd.DataFrame:
    """Four wells of two plates, wells spelled without zero padding."""
    return pd.DataFrame(
        {
            PLATE: ["Week1_11", "Week1_11", "Week2_22", "Week2_22"],
            WELL: ["B2", "B3", "b2", "C4"],
            "f": [1.0, 2.0, 3.0, 4.0],
        }
    )


def platemap() -> pd.DataFrame:
    """One row per field: each well twice, identical; concentrations spelled differently."""
    rows = [
        ("Week1_11", "B02", "taxol", "0.3"),
        ("Week1_11", "B02", "taxol", 0.300000),
        ("Week1_11", "B03", "DMSO", 0.0),
        ("Week2_22", "B02", "taxol", 1.0),
        ("Week2_22", "C04", "mystery", 1.0),
        ("Week3_33", "A01", "unused", 1.0),
    ]
    return pd.DataFrame(rows, columns=[PLATE, WELL, COMPOUND, CONCENTRATION])


def moas() -> pd.DataFrame:
    return pd.DataFrame(
        {
            COMPOUND: ["taxol", "taxol", "taxol"],
            CONCENTRATION: ["0.300000", 1, 0.3],
            MOA: ["Microtubule stabilizers"] * 3,
        }
    )


def test_platemap_keeps_identical_repeats_once_and_normalises_keys():
    treatments = platemap_treatments(platemap(), "image.csv")
    assert len(treatments) == 5
    assert treatments.loc[0].tolist() == ["Week1_11", "B02", "taxol", 0.3]


def test_conflicting_platemap_rows_name_both_lines():
    table = platemap()
    table.loc[1, COMPOUND] = "colchicine"
    with pytest.raises(TableError) as e:
        platemap_treatments(table, "image.csv")
    message = str(e.value)
    assert message.startswith("image.csv lines 2 and 3: plate Week1_11 well B02")
    assert "taxol 0.3, colchicine 0.3" in message


def test_an_empty_platemap_key_or_bad_well_names_the_line():
    table = platemap()
    table.loc[3, COMPOUND] = np.nan
    with pytest.raises(TableError, match=r"image.csv: Metadata_Compound is empty .*line\(s\) 5"):
        platemap_treatments(table, "image.csv")
    with pytest.raises(TableError, match=r"wells.csv line 3: well 'Q99' is not"):
        normalized_wells(pd.Series(["A01", "Q99"]), "wells.csv")


def test_join_platemap_gives_every_row_its_treatment():
    table = join_platemap(profiles(), platemap(), "wells.csv", "image.csv")
    assert table[WELL].tolist() == ["B02", "B03", "B02", "C04"]
    assert table[COMPOUND].tolist() == ["taxol", "DMSO", "taxol", "mystery"]
    assert table[CONCENTRATION].tolist() == [0.3, 0.0, 1.0, 1.0]
    assert table["f"].tolist() == [1.0, 2.0, 3.0, 4.0]


def test_an_unmatched_well_is_an_error_naming_file_line_plate_and_well():
    table = profiles()
    table.loc[2, PLATE] = "Week9_99"
    with pytest.raises(TableError) as e:
        join_platemap(table, platemap(), "wells.csv", "image.csv")
    message = str(e.value)
    assert "wells.csv: 1 of 4 rows (1 well(s)) have no row in the plate map image.csv" in message
    assert "line 4 (plate Week9_99, well B02)" in message


def test_join_platemap_refuses_to_replace_a_column():
    table = profiles().assign(**{COMPOUND: "x"})
    with pytest.raises(TableError, match="wells.csv already has Metadata_Compound"):
        join_platemap(table, platemap(), "wells.csv", "image.csv")


def test_join_moas_on_compound_and_concentration_reports_the_unannotated(caplog):
    table = join_platemap(profiles(), platemap(), "wells.csv", "image.csv")
    with caplog.at_level(logging.WARNING):
        annotated, unannotated = join_moas(table, moas(), "DMSO", "wells.csv", "moa.csv")
    # the control needs no MoA row: its MoA is the control's name
    assert annotated[MOA].tolist() == ["Microtubule stabilizers", "DMSO", "Microtubule stabilizers"]
    assert annotated.index.tolist() == [0, 1, 2]
    assert unannotated.values.tolist() == [["mystery", 1.0, 1, "Week2_22", 5]]
    assert (
        "wells.csv: 1 treatment(s) (1 rows) have no row in the MoA table moa.csv and are left out "
        "of scoring (unannotated): mystery 1 (line 5)" in caplog.text
    )


def test_a_missing_moa_at_another_concentration_is_unannotated():
    table = join_platemap(profiles(), platemap(), "wells.csv", "image.csv")
    only_low = moas().iloc[[0]]
    annotated, unannotated = join_moas(table, only_low, "DMSO", "wells.csv", "moa.csv")
    assert annotated[COMPOUND].tolist() == ["taxol", "DMSO"]
    assert unannotated[[COMPOUND, CONCENTRATION, "first_line"]].values.tolist() == [
        ["mystery", 1.0, 5],
        ["taxol", 1.0, 4],
    ]
    # a MoA table without concentrations annotates the compound at every concentration
    annotated, _ = join_moas(table, only_low.drop(columns=CONCENTRATION), "DMSO")
    assert annotated[COMPOUND].tolist() == ["taxol", "DMSO", "taxol"]
    # without a control, the control's rows are unannotated too, and said so
    _, unannotated = join_moas(table, moas(), None, "wells.csv", "moa.csv")
    assert unannotated[COMPOUND].tolist() == ["DMSO", "mystery"]


def test_conflicting_moa_rows_name_both_lines():
    table = moas()
    table.loc[2, MOA] = "Actin disruptors"
    with pytest.raises(TableError) as e:
        moa_annotations(table, "moa.csv")
    assert str(e.value).startswith("moa.csv lines 2 and 4: Metadata_Compound=taxol")
    assert "(Microtubule stabilizers, Actin disruptors)" in str(e.value)


def test_batch_from_plate_and_a_plate_it_does_not_match():
    table = batch_from_plate(profiles(), "Week[0-9]+", "wells.csv")
    assert table[BATCH].tolist() == ["Week1", "Week1", "Week2", "Week2"]
    with pytest.raises(TableError) as e:
        batch_from_plate(profiles(), "Week1", "wells.csv")
    assert str(e.value) == (
        "wells.csv: the batch pattern 'Week1' does not match 1 plate name(s): Week2_22 (line 4)"
    )
    with pytest.raises(TableError, match="is not a regular expression"):
        batch_from_plate(profiles(), "Week[", "wells.csv")
    with pytest.raises(TableError, match="already has Metadata_Batch"):
        batch_from_plate(table, "Week[0-9]+", "wells.csv")


def test_annotate_profiles_and_its_report():
    sources = {"profiles": "wells.csv", "platemap": "image.csv", "moas": "moa.csv"}
    table, unannotated = annotate_profiles(
        profiles(), platemap(), moas(), "DMSO", "Week[0-9]+", sources
    )
    assert table[BATCH].tolist() == ["Week1", "Week1", "Week2"]
    lines = join_report(4, table, unannotated, "DMSO", sources)
    assert lines[0] == "wells.csv: all 4 rows joined to their well in the plate map image.csv"
    assert lines[1].startswith("moa.csv: 3 of 4 rows annotated, 1 of them DMSO rows; wells.csv: 1")
