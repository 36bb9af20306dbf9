import numpy as np
import pandas as pd
import pytest

from cellmoa.profiles.nearest import nearest_neighbour_accuracy, nearest_neighbours
from cellmoa.profiles.tables import treatment_profiles

pytestmark = pytest.mark.unit


def table(rows):
    return pd.DataFrame(
        rows,
        columns=[
            "Metadata_Compound",
            "Metadata_Concentration",
            "Metadata_MoA",
            "Metadata_Batch",
            "f1",
            "f2",
        ],
    )


def test_nsc_excludes_same_compound_neighbours():
    # a@1 and a@2 (MoA X) are each other's closest profiles; with them excluded, a's nearest other
    # compound is c (MoA Y) -> wrong. Including same-compound neighbours would make it right.
    rows = [
        ("a", 1.0, "X", "w1", 1.0, 0.00),
        ("a", 2.0, "X", "w1", 1.0, 0.01),
        ("b", 1.0, "X", "w2", 0.0, 1.00),
        ("c", 1.0, "Y", "w2", 1.0, 0.20),
    ]
    profiles = treatment_profiles(table(rows))
    matches = nearest_neighbours(profiles, "nsc").set_index(
        ["Metadata_Compound", "Metadata_Concentration"]
    )
    assert matches.loc[("a", 1.0), "neighbour_compound"] == "c"
    assert not matches.loc[("a", 1.0), "correct"]
    # what including them would have given: a@1's most similar profile overall is a@2 (same MoA)
    x = profiles[["f1", "f2"]].to_numpy()
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    sim = x @ x.T
    np.fill_diagonal(sim, -np.inf)
    assert profiles.iloc[sim[0].argmax()]["Metadata_Compound"] == "a"


def test_nscb_also_excludes_shared_batches():
    rows = [
        ("a", 1.0, "X", "w1", 1.0, 0.0),
        ("b", 1.0, "X", "w1", 1.0, 0.05),  # same MoA but same batch as a
        ("c", 1.0, "Y", "w2", 1.0, 0.3),
        ("d", 1.0, "X", "w3", 0.0, 1.0),
    ]
    nsc = nearest_neighbours(treatment_profiles(table(rows)), "nsc").set_index("Metadata_Compound")
    nscb = nearest_neighbours(treatment_profiles(table(rows)), "nscb").set_index(
        "Metadata_Compound"
    )
    assert nsc.loc["a", "neighbour_compound"] == "b" and nsc.loc["a", "correct"]
    assert nscb.loc["a", "neighbour_compound"] == "c" and not nscb.loc["a", "correct"]


def test_profiles_are_means_over_rows_and_accuracy():
    rows = [
        ("a", 1.0, "X", "w1", 2.0, 0.0),
        ("a", 1.0, "X", "w1", 0.0, 0.0),
        ("b", 1.0, "X", "w2", 1.0, 0.1),
        ("c", 1.0, "Y", "w2", 0.0, 1.0),
        ("d", 1.0, "Y", "w1", 0.1, 1.0),
    ]
    profiles = treatment_profiles(table(rows)).set_index("Metadata_Compound")
    assert profiles.loc["a", "f1"] == 1.0
    assert nearest_neighbour_accuracy(table(rows), "nsc") == 1.0


def test_any_profile_table_needs_metadata_and_features():
    with pytest.raises(ValueError, match="Metadata_MoA"):
        treatment_profiles(
            pd.DataFrame({"Metadata_Compound": ["a"], "Metadata_Concentration": [1.0], "f": [1.0]})
        )
    with pytest.raises(ValueError, match="numeric feature"):
        treatment_profiles(
            pd.DataFrame(
                {"Metadata_Compound": ["a"], "Metadata_Concentration": [1.0], "Metadata_MoA": ["X"]}
            )
        )
    with pytest.raises(ValueError, match="unknown matching scheme"):
        nearest_neighbours(treatment_profiles(table([("a", 1.0, "X", "w", 1.0, 0.0)])), "loo")
