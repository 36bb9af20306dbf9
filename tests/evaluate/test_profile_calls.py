"""MoA calls for profile tables: profile_calls, novelty_check and `cellmoa predict-profiles`."""

import numpy as np
import pandas as pd
import pytest

from cellmoa.cli import main
from cellmoa.evaluate.novelty_check import hidden_moa_check
from cellmoa.evaluate.profile_calls import ProfileModel, call_profile_table, predict_profiles
from cellmoa.files import read_tsv

pytestmark = pytest.mark.unit

MOAS = {"A": (0, 1, 2), "B": (3, 4, 5), "C": (6, 7, 8), "D": (9, 10, 11)}


def clusters(seed=0, moas=MOAS, doses=(0.3, 3.0), noise=0.15, dims=24):
    """Treatment profiles: one direction per MoA, each compound a shifted copy, two doses."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(32, dims))
    rows = []
    for moa, compounds in moas.items():
        centre = centres[compounds[0]]
        for c in compounds:
            shift = rng.normal(scale=noise, size=dims)
            for dose in doses:
                x = centre + shift + rng.normal(scale=noise, size=dims)
                rows.append(
                    {
                        "Metadata_Compound": f"cpd{c}",
                        "Metadata_Concentration": dose,
                        "Metadata_MoA": moa,
                        **{f"f{i}": v for i, v in enumerate(x)},
                    }
                )
    return pd.DataFrame(rows), centres


def test_every_annotated_treatment_is_called_without_its_own_compound():
    table, _ = clusters()
    loco = ProfileModel(table).leave_one_compound_out()
    assert len(loco) == len(table)
    assert (loco["top_moa"] == loco["Metadata_MoA"]).all()
    probabilities = loco.filter(like="prob_").to_numpy()
    assert np.allclose(probabilities.sum(axis=1), 1.0)
    # with a compound's MoA partner compounds removed the call must change: the reference
    # really leaves the compound out (a compound alone in its MoA cannot be called right)
    lonely = table[~table["Metadata_Compound"].isin(["cpd1", "cpd2"])]
    loco = ProfileModel(lonely).leave_one_compound_out().set_index("Metadata_Compound")
    assert (loco.loc["cpd0", "top_moa"] != "A").all()


def test_new_treatments_of_a_known_moa_are_called_and_of_a_new_moa_flagged():
    table, centres = clusters()
    rng = np.random.default_rng(5)
    known = centres[3] + rng.normal(scale=0.15, size=24)
    novel = centres[20] + rng.normal(scale=0.15, size=24)
    new = pd.DataFrame(
        [
            {
                "Metadata_Compound": "new-B",
                "Metadata_Concentration": 1.0,
                **{f"f{i}": v for i, v in enumerate(known)},
            },
            {
                "Metadata_Compound": "new-X",
                "Metadata_Concentration": 1.0,
                **{f"f{i}": v for i, v in enumerate(novel)},
            },
        ]
    )
    out = predict_profiles(table, new, coverage=0.8, neighbours=2)
    calls = out["predictions"].set_index("Metadata_Compound")
    assert calls.loc["new-B", "top_moa"] == "B"
    assert calls.loc["new-B", "prediction_set"] == "B"
    assert not calls.loc["new-B", "novel"]
    assert calls.loc["new-X", "novel"]
    assert "unlike its nearest annotated treatments" in calls.loc["new-X", "novel_reason"]
    assert calls.loc["new-X", "novelty_score"] > calls.loc["new-B", "novelty_score"]
    assert calls.loc["new-B", "neighbour_1_moa"] == "B"
    assert (
        out["calibration"].loc[out["calibration"]["configured"], "nominal_coverage"].item() == 0.8
    )


def test_hiding_each_moa_ranks_its_treatments_as_novel():
    table, _ = clusters()
    check = hidden_moa_check(table, coverage=0.8)
    assert list(check["hidden_moa"]) == ["A", "B", "C", "D", "(pooled)"]
    assert (check["n_treatments"].iloc[:4] == 6).all()
    assert check["auroc"].iloc[-1] > 0.9
    assert check["flagged_fraction"].iloc[-1] > 0.8
    # the known treatments flagged by the p-value rule: about 1 - coverage at most
    assert (check["known_flagged_fraction"].iloc[:4] <= 0.35).all()


def test_the_novelty_check_fails_where_the_hidden_moa_is_a_copy_of_a_known_one():
    table, _ = clusters()
    # MoA D's compounds sit on MoA A's centre: hiding D cannot tell them from A
    copy = table["Metadata_MoA"].eq("D")
    base = table.loc[table["Metadata_MoA"].eq("A"), [f"f{i}" for i in range(24)]].to_numpy()
    table.loc[copy, [f"f{i}" for i in range(24)]] = base + np.random.default_rng(1).normal(
        scale=0.15, size=base.shape
    )
    check = hidden_moa_check(table, coverage=0.8).set_index("hidden_moa")
    assert check.loc["D", "auroc"] < 0.8
    assert check.loc["B", "auroc"] > 0.9


def wells(table: pd.DataFrame) -> pd.DataFrame:
    """Three well rows per treatment and six DMSO wells, on two plates."""
    rng = np.random.default_rng(3)
    features = [c for c in table.columns if c.startswith("f")]
    rows = []
    for _, t in table.iterrows():
        for w in range(3):
            x = t[features].to_numpy(float) + rng.normal(scale=0.05, size=len(features))
            rows.append(
                {
                    **t.drop(features).to_dict(),
                    "Metadata_Plate": f"P{w % 2}",
                    **dict(zip(features, x)),
                }
            )
    for w in range(6):
        rows.append(
            {
                "Metadata_Compound": "DMSO",
                "Metadata_Concentration": 0.0,
                "Metadata_MoA": "DMSO",
                "Metadata_Plate": f"P{w % 2}",
                **dict(zip(features, rng.normal(scale=0.3, size=len(features)))),
            }
        )
    return pd.DataFrame(rows)


def test_a_profile_table_with_empty_moas_gets_its_treatments_called():
    table, _ = clusters()
    rows = wells(table)
    hidden = rows["Metadata_Compound"].eq("cpd4")
    rows.loc[hidden, "Metadata_MoA"] = np.nan
    out = call_profile_table(rows, control="DMSO")
    predictions = out["predictions"]
    assert sorted(predictions["Metadata_Compound"]) == ["cpd4", "cpd4"]
    assert (predictions["top_moa"] == "B").all()
    assert (predictions["n_rows"] == 3).all()
    assert "cpd4" not in set(out["annotated"]["Metadata_Compound"])
    assert len(out["annotated"]) == len(table) - 2


def test_predict_profiles_command_writes_its_tables(tmp_path, capsys):
    table, _ = clusters()
    rows = wells(table).drop(columns="Metadata_MoA")
    rows.insert(1, "Metadata_Well", [f"W{i:03d}" for i in range(len(rows))])
    path = tmp_path / "wells.csv"
    rows.to_csv(path, index=False)
    moas = table[["Metadata_Compound", "Metadata_MoA"]].drop_duplicates()
    moas = moas[moas["Metadata_Compound"] != "cpd7"]
    moas.to_csv(tmp_path / "moas.csv", index=False)
    out = tmp_path / "out"
    code = main(
        [
            "predict-profiles",
            str(path),
            "--moas",
            str(tmp_path / "moas.csv"),
            "--control",
            "DMSO",
            "--postprocess",
            "none",
            "--coverage",
            "0.8",
            "--out",
            str(out),
        ]
    )
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "post-processing chain: none" in printed
    assert "2 unannotated treatment(s) called" in printed
    calls = [line for line in printed.splitlines() if line.strip().startswith("cpd7")]
    assert len(calls) == 2 and max(map(len, calls)) <= 100
    predictions = read_tsv(out / "predictions.tsv")
    assert set(predictions["Metadata_Compound"]) == {"cpd7"}
    assert (predictions["top_moa"] == "C").all()
    for name in ("calibration", "annotated", "novelty_by_moa", "postprocessing", "without_moa"):
        assert (out / f"{name}.tsv").is_file(), name
    assert len(read_tsv(out / "without_moa.tsv")) == 2
