"""Predictions for unannotated compounds (cellmoa.evaluate.unannotated).

The treatment aggregate, the calibration, the prediction sets' coverage on new compounds, the
novel flag, the neighbours and the table's columns; and that no unannotated crop is ever trained
on or scored."""

import numpy as np
import pandas as pd
import pytest

from cellmoa.evaluate.accuracy import treatment_predictions
from cellmoa.evaluate.calibration import Calibration
from cellmoa.evaluate.unannotated import (
    nearest_annotated,
    predict,
    predict_screen,
    unannotated_treatments,
)
from cellmoa.train.folds import ALL_FOLD, select_fold, trainable

pytestmark = pytest.mark.unit

CLASSES = ["A", "B", "C"]
COLUMNS = [
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


def simulated_treatments(
    rng, n_compounds, moas, doses=2, strength=2.0, noise=1.0, moa_labels=CLASSES
):
    """Treatment probabilities of compounds of the given MoAs: a softmax of logits where the true
    MoA gets ``strength`` plus a compound effect shared by the compound's doses (so treatments of
    one compound are not exchangeable) plus dose noise."""
    rows = []
    for c in range(n_compounds):
        moa = moas[c % len(moas)]
        compound_effect = rng.normal(0, noise, len(moa_labels))
        for d in range(doses):
            logits = compound_effect + rng.normal(0, 0.3 * noise, len(moa_labels))
            if moa in moa_labels:
                logits[moa_labels.index(moa)] += strength
            p = np.exp(logits - logits.max())
            p /= p.sum()
            rows.append(
                {
                    "Metadata_Compound": f"c{c}",
                    "Metadata_Concentration": [0.3, 3.0][d],
                    "Metadata_MoA": moa,
                    **{f"prob_{m}": v for m, v in zip(moa_labels, p)},
                }
            )
    return pd.DataFrame(rows)


@pytest.mark.parametrize("score", ["lac", "aps"])
def test_the_sets_hold_a_new_compounds_moa_at_the_promised_rate(score):
    """Calibrated at the compound level on 30 compounds (two doses each, sharing a compound
    effect), the sets of a new compound's treatments hold its MoA at the nominal rate within
    binomial error over many draws: not below it (the guarantee), and not far above (useful
    sets)."""
    rng = np.random.default_rng(0 if score == "lac" else 1)
    coverage, hits, n = 0.8, 0, 0
    prob_cols = [f"prob_{m}" for m in CLASSES]
    for draw in range(400):
        calibration = Calibration(simulated_treatments(rng, 30, CLASSES), coverage, score)
        new = simulated_treatments(rng, 1, [CLASSES[draw % 3]])
        sets = calibration.sets(new[prob_cols].to_numpy())
        hits += int(
            sets[rng.integers(0, 2), CLASSES.index(new["Metadata_MoA"].iloc[0])]
        )  # one dose per draw
        n += 1
    sd = np.sqrt(coverage * (1 - coverage) / n)
    assert coverage - 3 * sd <= hits / n <= coverage + 3 * sd + 0.05, hits / n


def test_a_compound_of_an_unseen_moa_is_flagged_novel():
    """A compound whose MoA is none of the annotated ones (its logits favour no class) gets an
    empty set or a top probability below every annotated treatment's: flagged, with the reason."""
    rng = np.random.default_rng(2)
    calibration = Calibration(
        simulated_treatments(rng, 30, CLASSES, strength=4.0, noise=0.5), 0.8, "lac"
    )
    unseen = simulated_treatments(rng, 1, ["D"], strength=0.0, noise=0.1).drop(
        columns="Metadata_MoA"
    )
    # a compound of a known MoA as sure as the surest calibration treatments
    known = pd.DataFrame(
        {
            "Metadata_Compound": ["k", "k"],
            "Metadata_Concentration": [0.3, 3.0],
            "prob_A": [0.005, 0.01],
            "prob_B": [0.99, 0.98],
            "prob_C": [0.005, 0.01],
        }
    )
    new = pd.concat([unseen, known], ignore_index=True).assign(n_crops=4, n_wells=1, n_replicates=1)
    table = predict(new, calibration)
    assert list(table.columns[: len(COLUMNS)]) == COLUMNS
    flagged = table.set_index("Metadata_Compound")["novel"].groupby(level=0).all()
    assert flagged["c0"] and not table.set_index("Metadata_Compound").loc["k", "novel"].any()
    assert table[table["novel"]]["novel_reason"].str.len().gt(0).all()
    assert (table.loc[table["Metadata_Compound"] == "k", "top_moa"] == "B").all()
    # most confident first: the novel rows last
    assert list(table["novel"]) == sorted(table["novel"])


def test_novel_by_distance_and_dose_consistency():
    """A treatment whose nearest annotated profile is so far that its conformal p-value among the
    calibration similarities is at most 1 - coverage is novel even when its probabilities look
    sure; dose_consistent says whether a compound's concentrations share their top MoA."""
    treatments = pd.DataFrame(
        {
            "Metadata_Compound": list("abcd"),
            "Metadata_MoA": list("AABB"),
            "prob_A": [0.9, 0.8, 0.1, 0.2],
            "prob_B": [0.1, 0.2, 0.9, 0.8],
        }
    )
    # compound a's two treatments share a weight of 1; d's similarity is missing
    calibration = Calibration(
        treatments,
        0.75,
        "lac",
        similarities=np.array([0.8, 0.82, 0.9, 0.85, np.nan]),
        similarity_compounds=["a", "a", "b", "c", "d"],
    )
    # 3 compounds: below all -> 1/4; above a's two (weight 1) -> 2/4; above all -> 4/4
    np.testing.assert_allclose(
        calibration.novelty_p_values([0.5, 0.81, 0.86, 0.95]), [0.25, 0.375, 0.75, 1.0]
    )
    new = pd.DataFrame(
        {
            "Metadata_Compound": ["x", "x", "y", "y"],
            "Metadata_Concentration": [0.3, 3.0, 0.3, 3.0],
            "n_crops": 4,
            "n_wells": 1,
            "n_replicates": 1,
            "prob_A": [0.95, 0.9, 0.95, 0.1],
            "prob_B": [0.05, 0.1, 0.05, 0.9],
        }
    )
    near = pd.DataFrame(
        {
            "Metadata_Compound": ["x", "x", "y", "y"],
            "Metadata_Concentration": [0.3, 3.0, 0.3, 3.0],
            "neighbour_1_similarity": [0.95, 0.5, 0.9, 0.9],
        }
    )
    table = predict(new, calibration, near).set_index(
        ["Metadata_Compound", "Metadata_Concentration"]
    )
    assert not table.loc[("x", 0.3), "novel"] and table.loc[("x", 3.0), "novel"]
    assert "far from every annotated treatment" in table.loc[("x", 3.0), "novel_reason"]
    assert table.loc[("x", 0.3), "dose_consistent"] and not table.loc[("y", 0.3), "dose_consistent"]


def test_calibration_table_reports_honest_coverage_and_set_size():
    rng = np.random.default_rng(3)
    calibration = Calibration(simulated_treatments(rng, 20, CLASSES), 0.8, "aps")
    table = calibration.table(name="net")
    assert {
        "nominal_coverage",
        "empirical_coverage",
        "coverage_ci_low",
        "coverage_ci_high",
        "compound_coverage",
        "mean_set_size",
        "empty_sets",
        "n_treatments",
        "n_compounds",
        "configured",
    } <= set(table.columns)
    assert (
        table["configured"].sum() == 1
        and (table["n_treatments"] == 40).all()
        and (table["n_compounds"] == 20).all()
    )
    assert (table["coverage_ci_low"] <= table["empirical_coverage"]).all()
    # larger nominal coverage, larger sets
    assert np.all(
        np.diff(table.sort_values("nominal_coverage")["mean_set_size"].to_numpy()) >= -1e-9
    )


def test_unannotated_treatments_aggregate_like_the_paper():
    """Median within each replicate, then across replicates; crops, wells and replicates counted."""
    crops = pd.DataFrame(
        {
            "Metadata_Compound": ["u"] * 5,
            "Metadata_Concentration": ["0.3", "0.300000", 0.3, 0.3, 0.3],
            "Metadata_Replicate": [1, 1, 1, 2, 3],
            "Metadata_Plate": ["p1", "p1", "p1", "p2", "p3"],
            "Metadata_Well": ["B02", "B02", "B03", "B02", "B02"],
            "Metadata_MoA": [""] * 5,
            "prob_A": [0.9, 0.1, 0.8, 0.6, 0.2],
            "prob_B": [0.1, 0.9, 0.2, 0.4, 0.8],
        }
    )
    out = unannotated_treatments(crops)
    assert len(out) == 1
    row = out.iloc[0]
    assert (row["n_crops"], row["n_wells"], row["n_replicates"]) == (5, 4, 3)
    # replicate medians of A: 0.8, 0.6, 0.2 -> 0.6; of B: 0.2, 0.4, 0.8 -> 0.4
    assert row["prob_A"] == pytest.approx(0.6) and row["prob_B"] == pytest.approx(0.4)


def test_nearest_annotated_lists_the_most_similar_annotated_treatments():
    profiles = pd.DataFrame(
        {
            "Metadata_Compound": ["a", "b", "c", "new"],
            "Metadata_Concentration": [1.0, 1.0, 1.0, 1.0],
            "Metadata_MoA": ["A", "B", "A", "(unannotated)"],
            "f0": [1.0, 0.0, 0.7, 0.9],
            "f1": [0.0, 1.0, 0.7, 0.1],
        }
    )
    near = nearest_annotated(profiles, k=2)
    assert len(near) == 1
    row = near.iloc[0]
    assert (row["neighbour_1_compound"], row["neighbour_2_compound"]) == ("a", "c")
    assert row["neighbour_1_similarity"] >= row["neighbour_2_similarity"]
    assert row["neighbour_1_moa"] == "A"


def test_no_unannotated_crop_is_trained_on_or_scored(tmp_path):
    """The all-compound fold and every leave-one-out fold train on annotated treatments only; the
    all-compound fold predicts exactly the unannotated ones; a scoring table never holds them."""
    meta = pd.DataFrame(
        {
            "compound": ["a", "a", "b", "b", "u", "u", "DMSO"],
            "moa": ["A", "A", "B", "B", "", "", ""],
            "is_control": [0, 0, 0, 0, 0, 0, 1],
            "annotated": [1, 1, 1, 1, 0, 0, 0],
            "batch": ["w1"] * 7,
            "cell_line": ["MCF7"] * 7,
        }
    )
    unannotated = set(np.flatnonzero(meta["annotated"].eq(0) & meta["is_control"].eq(0)))
    for held_out in ("a", "b", ALL_FOLD):
        fold = select_fold(meta, held_out, "nsc")
        assert not set(fold.train_index) & unannotated and not set(fold.train_index) & {6}
    assert set(select_fold(meta, ALL_FOLD).test_index) == unannotated
    assert (
        set(select_fold(meta, ALL_FOLD).train_index)
        == set(np.flatnonzero(trainable(meta)))
        == {0, 1, 2, 3}
    )
    # an unannotated row with a label by mistake is still not trainable: the flag decides
    assert not trainable(meta.assign(moa=["A", "A", "B", "B", "A", "A", ""]))[4:].any()


def test_predict_screen_gives_every_network_and_the_ensemble_a_table():
    rng = np.random.default_rng(4)
    cal = simulated_treatments(rng, 6, CLASSES)
    cal = cal.assign(n_replicates=3, n_crops=12)
    crops = []
    for compound, moa in (("U1", "A"), ("U2", "D")):
        for conc in (0.3, 3.0):
            for rep in (1, 2, 3):
                p = np.array([0.8, 0.1, 0.1]) if moa == "A" else np.array([0.34, 0.33, 0.33])
                crops.append(
                    {
                        "Metadata_Compound": compound,
                        "Metadata_Concentration": conc,
                        "Metadata_Replicate": rep,
                        "Metadata_Plate": f"p{rep}",
                        "Metadata_Well": "B02",
                        "Metadata_MoA": "",
                        **{f"prob_{m}": v for m, v in zip(CLASSES, p)},
                    }
                )
    crops = pd.DataFrame(crops)
    networks = {
        n: {"treatments": cal, "predictions": crops, "embeddings": None, "matches": None}
        for n in ("n1", "n2")
    }
    tables, calibration = predict_screen(pd.DataFrame(), networks, coverage=0.8, score="lac")
    assert set(tables) == {"n1", "n2", "Ensemble"}
    assert set(calibration["Metadata_Network"]) == {"n1", "n2", "Ensemble"}
    ens = tables["Ensemble"].set_index("Metadata_Compound")
    assert (ens.loc["U1", "top_moa"] == "A").all()
    assert ens.loc["U2", "novel"].all()
    # the accuracy tables of the folds never see an unannotated compound: their MoA is missing
    with pytest.raises(Exception, match="Metadata_MoA"):
        treatment_predictions(crops.assign(Metadata_MoA=np.nan))
