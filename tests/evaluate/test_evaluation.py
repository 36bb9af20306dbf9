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


#: MoA names as long as real ones and longer (the last is shortened on the terminal)
MOAS = [
    "Aurora kinase inhibitors",
    "Microtubule destabilizers",
    "Protein synthesis",
    "Cholesterol-lowering (HMG-CoA reductase inhibitors)",
]
NETWORKS = ["InceptionResNetV2", "ResNet50", "InceptionV3", "Ensemble"]


def realistic_tables(folder):
    """A finished run's tables with their real columns: three networks and the ensemble, four
    long MoA names, 26 unannotated treatments with long prediction sets and novelty reasons."""
    from cellmoa.report.tables import REFERENCE_COLUMN

    rng = np.random.default_rng(0)
    rows = []
    for network in NETWORKS:
        row = {"Metadata_Network": network, "Metadata_Dataset": "bbbc021", "n_folds": 38}
        row.update({"n_treatments": 103, "n_correct": 96, "treatment_accuracy": 0.932})
        for kind, low, high in (("", 0.88, 0.97), ("exact_", 0.865, 0.972)):
            row[f"treatment_accuracy_{kind}ci_low"] = low
            row[f"treatment_accuracy_{kind}ci_high"] = high
        row.update({"field_accuracy": 0.81, "well_accuracy": 0.85, "crop_accuracy": 0.78})
        for prefix in ("", "pp_"):
            for nn in ("nsc", "nscb"):
                row[f"{prefix}nn_{nn}_n"] = 103 if nn == "nsc" else 92
                row[f"{prefix}nn_{nn}_accuracy"] = 0.874
                for kind in ("", "exact_"):
                    row[f"{prefix}nn_{nn}_{kind}ci_low"] = 0.79
                    row[f"{prefix}nn_{nn}_{kind}ci_high"] = 0.93
                row[f"{prefix}map_{nn}"], row[f"{prefix}map_{nn}_n"] = 0.6123, 103
                if prefix:
                    row[f"pp_nn_{nn}_lift"], row[f"pp_nn_{nn}_lift_p_value"] = 0.117, 0.01
                    row[f"pp_nn_{nn}_lift_ci_low"], row[f"pp_nn_{nn}_lift_ci_high"] = 0.02, 0.22
        row["chance_accuracy"] = 1 / 12
        row[REFERENCE_COLUMN] = float("nan") if network == "Ensemble" else 0.971
        rows.append(row)
    pd.DataFrame(rows).to_csv(folder / "summary.tsv", sep="\t", index=False)
    per_moa = pd.DataFrame({"Metadata_MoA": MOAS + ["all"], "n_treatments": [4, 8, 6, 6, 24]})
    for network in NETWORKS:
        per_moa[network] = rng.uniform(0.5, 1, len(per_moa))
    per_moa.to_csv(folder / "summary_per_moa.tsv", sep="\t", index=False)
    for network in NETWORKS[:-1]:
        pd.DataFrame(
            {
                "Metadata_MoA": MOAS + ["all"],
                "n_treatments": [4, 8, 6, 6, 24],
                "n_correct": [4, 7, 6, 5, 22],
                "accuracy": [1.0, 0.875, 1.0, 5 / 6, 22 / 24],
                "exact_ci_low": [0.398, 0.473, 0.541, 0.359, 0.730],
                "exact_ci_high": [1.0, 0.997, 1.0, 0.996, 0.990],
            }
        ).to_csv(folder / f"accuracy_{network}.tsv", sep="\t", index=False)
        pd.DataFrame(
            {
                "Metadata_Fold": ["cytochalasin B", "PP-2", "all"],
                "n_crops": [96, 48, 144],
                "crop_accuracy": [0.8, 0.7, 0.77],
                "n_wells": [24, 12, 36],
                "well_accuracy": [0.9, 0.75, 0.85],
                "n_treatments": [2, 1, 3],
                "treatment_accuracy": [1.0, 1.0, 1.0],
            }
        ).to_csv(folder / f"accuracy_by_fold_{network}.tsv", sep="\t", index=False)
    reason = (
        "top probability below every annotated treatment's (0.532); far from every annotated "
        "treatment (novelty p = 0.01)"
    )
    unannotated = pd.DataFrame(
        {
            "Metadata_Compound": [f"methyl-compound-with-a-long-name-{i}" for i in range(26)],
            "Metadata_Concentration": 0.3,
            "n_crops": 12,
            "top_moa": MOAS[3],
            "top_probability": np.linspace(0.9, 0.3, 26),
            "margin": np.linspace(0.5, 0.01, 26),
            "prediction_set": "; ".join(MOAS),
            "set_size": 4,
            "novel": [i % 2 == 0 for i in range(26)],
            "novel_reason": [reason if i % 2 == 0 else "" for i in range(26)],
            "novelty_p_value": 0.01,
            "dose_consistent": True,
            "neighbour_1_compound": "mevastatin",
            "neighbour_1_moa": MOAS[3],
            "neighbour_1_similarity": 0.93,
        }
    )
    for network in NETWORKS:
        unannotated.to_csv(folder / f"unannotated_{network}.tsv", sep="\t", index=False)
    calibration = pd.DataFrame(
        [
            {
                "Metadata_Network": network,
                "nominal_coverage": nominal,
                "empirical_coverage": 0.83,
                "coverage_ci_low": 0.74,
                "coverage_ci_high": 0.9,
                "compound_coverage": 0.8,
                "mean_set_size": 1.4,
                "empty_sets": 0,
                "n_treatments": 103,
                "n_compounds": 38,
                "score": "lac",
                "configured": nominal == 0.8,
            }
            for network in NETWORKS
            for nominal in (0.5, 0.8)
        ]
    )
    calibration.to_csv(folder / "calibration.tsv", sep="\t", index=False)


def test_cellmoa_tables_fits_100_columns_and_wide_prints_every_column(tmp_path, capsys):
    from cellmoa.cli import main

    realistic_tables(tmp_path)
    assert main(["tables", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert max(map(len, lines)) <= 100, [line for line in lines if len(line) > 100]
    for heading in (
        "== InceptionResNetV2: treatment-level accuracy per MoA (accuracy_InceptionResNetV2.tsv)",
        "== ResNet50: accuracy per fold",
        "== Summary across networks (summary.tsv)",
        "== Ensemble: unannotated compounds",
        "== Prediction sets at the configured coverage",
    ):
        assert heading in out
    assert "== ResNet50: unannotated" not in out  # the ensemble's where there are some
    summary = out[out.index("== Summary") : out.index("== Ensemble: unannotated")]
    assert [line.split()[0] for line in summary.splitlines()[2:6]] == NETWORKS
    assert "88.0-97.0" in summary and "87.4" in summary and "0.612" in summary
    assert "Cholesterol-lowering (HMG-CoA r..." in out and "methyl-com...g-name-12" in out
    assert "#1 set: Aurora kinase" in out
    assert "#1 novel: top probability below" in out and "(6 more in" in out
    # --wide: every column, as before
    assert main(["tables", "--wide", str(tmp_path)]) == 0
    wide = capsys.readouterr().out
    for column in (
        "exact_ci_high",
        "well_accuracy",
        "InceptionResNetV2",
        "post-processed NSCB % (n)",
        "NSC lift (95%)",
        "novel_reason",
        "neighbour_1_similarity",
        "coverage_ci_high",
        "n_compounds",
    ):
        assert column in wide, column
    assert max(map(len, wide.splitlines())) > 100 and MOAS[3] in wide


def test_a_table_wider_than_the_terminal_is_split_into_blocks_of_columns():
    from cellmoa.report.terminal import fit_table

    frame = pd.DataFrame({"MoA": ["Protein synthesis", "all"]})
    for i in range(9):
        frame[f"InceptionResNetV2-{i}"] = ["75.0", "83.3"]
    text = fit_table(frame)
    assert max(map(len, text.splitlines())) <= 100
    assert all(f"InceptionResNetV2-{i}" in text for i in range(9))
    blocks = text.split("\n\n")
    assert len(blocks) > 1 and all(b.startswith("MoA") for b in blocks)
