import numpy as np
import pandas as pd
import pytest

from cellmoa.evaluate import accuracy
from cellmoa.report.tables import format_table, summarize

pytestmark = pytest.mark.unit


def crops(compound, conc, moa, replicate, probs):
    """One field per crop here (so field accuracy equals crop accuracy in this example)."""
    return [
        {
            "Metadata_Compound": compound,
            "Metadata_Concentration": conc,
            "Metadata_MoA": moa,
            "Metadata_Replicate": replicate,
            "Metadata_Fold": compound,
            "Metadata_Plate": f"P{replicate}",
            "Metadata_Well": f"{compound}{conc}",
            "Metadata_Site": site,
            "prob_A": p[0],
            "prob_B": p[1],
        }
        for site, p in enumerate(probs)
    ]


@pytest.fixture()
def example():
    rows = []
    # x@1 (true A): replicate 1 median A = 0.7, replicate 2 median A = 0.4 (B 0.6), replicate 3 has
    # no crops at all; median over replicates A = 0.55 > B 0.45 -> A, correct
    rows += crops("x", 1.0, "A", 1, [(0.9, 0.1), (0.7, 0.3), (0.2, 0.8)])
    rows += crops("x", 1.0, "A", 2, [(0.4, 0.6)])
    # x@3 (true A): B wins in every replicate -> B, wrong; at crop level 1 of 4 crops right
    rows += crops("x", 3.0, "A", 1, [(0.45, 0.55), (0.6, 0.4)])
    rows += crops("x", 3.0, "A", 2, [(0.3, 0.7), (0.2, 0.8)])
    # y@1 (true B): replicate 1 median B = 0.9 (one crop), replicate 2 median B = 0.525
    rows += crops("y", 1.0, "B", 1, [(0.1, 0.9)])
    rows += crops("y", 1.0, "B", 2, [(0.55, 0.45), (0.4, 0.6)])
    return pd.DataFrame(rows)


def test_treatment_level_by_hand(example):
    table = accuracy.treatment_predictions(example).set_index(
        ["Metadata_Compound", "Metadata_Concentration"]
    )
    assert table.loc[("x", 1.0), "prob_A"] == pytest.approx(0.55)
    assert table.loc[("x", 1.0), "predicted_moa"] == "A"
    assert table.loc[("x", 1.0), "n_replicates"] == 2
    assert table.loc[("x", 1.0), "n_crops"] == 4
    assert table.loc[("x", 3.0), "predicted_moa"] == "B"
    # y@1: replicate medians B = 0.9 and 0.525 -> median 0.7125 -> B (correct)
    assert table.loc[("y", 1.0), "prob_B"] == pytest.approx(0.7125)
    assert bool(table.loc[("y", 1.0), "correct"]) is True
    assert table["correct"].tolist() == [True, False, True]


def test_accuracy_tables(example):
    treatments = accuracy.treatment_predictions(example)
    acc = accuracy.accuracy_by_moa(treatments).set_index("Metadata_MoA")
    assert acc.loc["A", "n_treatments"] == 2 and acc.loc["A", "n_correct"] == 1
    assert acc.loc["B", "accuracy"] == 1.0
    assert acc.loc["all", "accuracy"] == pytest.approx(2 / 3)
    # crop level: x@1 2 of 4 right (0.9, 0.7); x@3 1 of 4 (0.6); y@1 2 of 3 (0.1, 0.4)
    assert accuracy.crop_accuracy(example) == pytest.approx((2 + 1 + 2) / 11)


def test_summary_has_paper_reference_only_where_comparable(example):
    ref = "reference_kensert2019_treatment_accuracy"
    matching = pd.DataFrame(
        [
            {
                "Metadata_MatchScheme": "nsc",
                "n": 4,
                "accuracy": 0.5,
                "ci_low": 0.1,
                "ci_high": 0.9,
                "exact_ci_low": 0.07,
                "exact_ci_high": 0.93,
                "mean_average_precision": 0.6,
                "n_map": 4,
            },
            {
                "Metadata_MatchScheme": "nscb",
                "n": 2,
                "accuracy": 0.25,
                "ci_low": 0.0,
                "ci_high": 0.5,
                "exact_ci_low": 0.0,
                "exact_ci_high": 0.8,
                "mean_average_precision": 0.4,
                "n_map": 2,
            },
        ]
    )
    summary = summarize(
        {"ResNet50": example, "Custom": example}, "nsc", "bbbc021", {"ResNet50": matching}
    ).set_index("Metadata_Network")
    assert summary.loc["ResNet50", ref] == pytest.approx(0.971)
    assert np.isnan(summary.loc["Custom", ref])
    assert summary.loc["ResNet50", "n_treatments"] == 3
    assert summary.loc["ResNet50", "chance_accuracy"] == 0.5
    assert (
        summary.loc["ResNet50", "nn_nscb_accuracy"] == 0.25
        and summary.loc["ResNet50", "nn_nscb_n"] == 2
    )
    assert summary.loc["ResNet50", "map_nsc"] == 0.6 and summary.loc["ResNet50", "map_nscb_n"] == 2
    assert (
        np.isnan(summary.loc["Custom", "nn_nsc_accuracy"])
        and summary.loc["Custom", "nn_nsc_n"] == 0
    )
    for kind in ("", "exact_"):
        low, high = summary.loc[
            "ResNet50", [f"treatment_accuracy_{kind}ci_low", f"treatment_accuracy_{kind}ci_high"]
        ]
        assert 0 <= low <= 2 / 3 <= high <= 1
    nscb = summarize({"ResNet50": example}, "nscb", "bbbc021")
    assert np.isnan(nscb.loc[0, ref])
    text = format_table(summary.reset_index())
    assert "66.7%" in text and "0.600" in text


def test_field_level_accuracy():
    rows = []
    for site, probs in [(1, [(0.9, 0.1), (0.2, 0.8), (0.7, 0.3)]), (2, [(0.4, 0.6), (0.3, 0.7)])]:
        for p in probs:
            rows.append(
                {
                    "Metadata_Plate": "P",
                    "Metadata_Well": "B02",
                    "Metadata_Site": site,
                    "Metadata_MoA": "A",
                    "prob_A": p[0],
                    "prob_B": p[1],
                }
            )
    # site 1: median A 0.7 -> A (right); site 2: median A 0.35 -> B (wrong)
    assert accuracy.field_accuracy(pd.DataFrame(rows)) == 0.5


def test_missing_probability_columns_are_named():
    with pytest.raises(ValueError, match="prob_"):
        accuracy.treatment_predictions(pd.DataFrame({"Metadata_Compound": ["x"]}))


def test_confusion_matrix_and_plots(example, tmp_path):
    from cellmoa.report.plots import confusion_matrix, plot_accuracy, plot_confusion

    treatments = accuracy.treatment_predictions(example)
    matrix = confusion_matrix(treatments, ["A", "B"])
    assert matrix.tolist() == [[1, 1], [0, 1]]
    plot_confusion(treatments, ["A", "B"], "t", tmp_path / "c.png")
    plot_accuracy(summarize({"ResNet50": example}, "nsc", "bbbc021"), tmp_path / "a.png")
    assert (tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG" and (
        tmp_path / "a.png"
    ).stat().st_size > 1000


def test_the_ensemble_averages_the_networks_treatment_probabilities(example):
    # network B is A's predictions with B and A swapped for x@1: alone A gets x@1 right, B wrong;
    # averaged, x@1's probabilities are 0.5 / 0.5 and the tie goes to A (alphabetical): right
    other = example.copy()
    x1 = (other["Metadata_Compound"] == "x") & (other["Metadata_Concentration"] == 1.0)
    other.loc[x1, ["prob_A", "prob_B"]] = other.loc[x1, ["prob_B", "prob_A"]].to_numpy()
    ta = accuracy.treatment_predictions(example)
    tb = accuracy.treatment_predictions(other)
    ens = accuracy.ensemble_treatments({"a": ta, "b": tb})
    np.testing.assert_allclose(ens["prob_A"], (ta["prob_A"] + tb["prob_A"]) / 2)
    assert (
        ens.set_index(["Metadata_Compound", "Metadata_Concentration"]).loc[
            ("x", 1.0), "predicted_moa"
        ]
        == "A"
    )
    summary = summarize({"a": example, "b": other}, "nsc", "bbbc021").set_index("Metadata_Network")
    assert list(summary.index) == ["a", "b", "Ensemble"]
    assert summary.loc["Ensemble", "n_correct"] == ens["correct"].sum()
    assert (
        0
        <= summary.loc["Ensemble", "treatment_accuracy_exact_ci_low"]
        <= summary.loc["Ensemble", "treatment_accuracy"]
    )
    assert summary.loc["Ensemble", "nn_nsc_n"] == 0


def test_cellmoa_tables_shows_only_the_runs_own_tables(tmp_path, capsys):
    """Another config's run in the same results folder (make demo, then make demo-screen) leaves
    tables of networks the new run does not have: they are named, never printed as its results."""
    from cellmoa.cli import main

    summary = pd.DataFrame(
        [
            {
                "Metadata_Network": "ResNet50",
                "n_correct": 3,
                "n_treatments": 4,
                "treatment_accuracy": 0.75,
                "treatment_accuracy_ci_low": 0.5,
                "treatment_accuracy_ci_high": 1.0,
                "treatment_accuracy_exact_ci_low": 0.19,
                "treatment_accuracy_exact_ci_high": 0.99,
                "crop_accuracy": 0.7,
            }
        ]
    )
    summary.to_csv(tmp_path / "summary.tsv", sep="\t", index=False)
    accuracy = pd.DataFrame(
        {"Metadata_MoA": ["A", "all"], "n_treatments": [4, 4], "accuracy": [0.75, 0.75]}
    )
    accuracy.to_csv(tmp_path / "accuracy_ResNet50.tsv", sep="\t", index=False)
    accuracy.assign(accuracy=0.123).to_csv(
        tmp_path / "accuracy_InceptionV3.tsv", sep="\t", index=False
    )
    unannotated = pd.DataFrame(
        {"Metadata_Compound": ["new"], "Metadata_Concentration": [1.0], "top_moa": ["A"]}
    )
    unannotated.to_csv(tmp_path / "unannotated_ResNet50.tsv", sep="\t", index=False)
    unannotated.assign(Metadata_Compound="stale-compound").to_csv(
        tmp_path / "unannotated_Ensemble.tsv", sep="\t", index=False
    )
    assert main(["tables", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert (
        "== ResNet50: treatment-level accuracy" in out
        and "== ResNet50: unannotated compounds" in out
    )
    assert (
        "InceptionV3: treatment" not in out and "12.3%" not in out and "stale-compound" not in out
    )
    assert "not shown: tables of Ensemble, InceptionV3" in out
