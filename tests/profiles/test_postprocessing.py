"""Profile post-processing steps (pycytominer, scikit-learn, CORAL).

They are checked on small hand-checkable tables.
"""

import numpy as np
import pandas as pd
import pytest

from cellmoa.columns import IS_CONTROL, PROFILES
from cellmoa.intervals import paired_difference
from cellmoa.preprocess.tensors import read_crop_metadata
from cellmoa.profiles.chains import CHAINS, chain_spec, parse_chain, postprocess
from cellmoa.profiles.ensemble import ensemble_fold_matches
from cellmoa.profiles.nearest import evaluate_profiles, fold_matches, nearest_neighbours
from cellmoa.profiles.postprocessing import (
    PCA,
    AlignBatches,
    FeatureSelect,
    Harmony,
    Normalize,
    Spherize,
)
from cellmoa.profiles.summary import summary_by_scheme
from cellmoa.profiles.tables import concatenate_profiles
from cellmoa.report.tables import compact_summary, summarize
from cellmoa.validation import TableError

pytestmark = pytest.mark.unit


def table(n_controls=30, n_treated=30, n_features=4, seed=0, plates=("P1", "P2")):
    rng = np.random.default_rng(seed)
    rows = []
    for plate_i, plate in enumerate(plates):
        for i in range(n_controls + n_treated):
            control = i < n_controls
            values = rng.normal(size=n_features) * (1 + np.arange(n_features)) + 5 * plate_i
            rows.append(
                {
                    "Metadata_Plate": plate,
                    "Metadata_Batch": f"B{plate_i}",
                    IS_CONTROL: int(control),
                    "Metadata_Compound": "DMSO" if control else f"c{i % 3}",
                    **{f"f{k}": v for k, v in enumerate(values)},
                }
            )
    return pd.DataFrame(rows)


FEATURES = ["f0", "f1", "f2", "f3"]


def test_normalize_standardizes_against_the_controls():
    t = table()
    out, feats, note = Normalize("standardize", by="screen").apply(t, FEATURES)
    controls = out[out[IS_CONTROL] == 1][feats]
    np.testing.assert_allclose(controls.mean(), 0, atol=1e-9)
    np.testing.assert_allclose(controls.std(ddof=0), 1, atol=1e-9)
    assert "standardize by screen on controls" in note
    # by plate: each plate's own controls are centred (the plate offset of 5 is gone)
    out, _, _ = Normalize("standardize", by="plate").apply(t, FEATURES)
    for _, part in out[out[IS_CONTROL] == 1].groupby("Metadata_Plate"):
        np.testing.assert_allclose(part[FEATURES].mean(), 0, atol=1e-9)
    with pytest.raises(TableError, match="no control rows"):
        Normalize().apply(t.assign(**{IS_CONTROL: 0}), FEATURES)


def test_feature_select_drops_the_constant_and_the_correlated_feature():
    t = table()
    t["constant"] = 1.0
    t["copy_of_f1"] = t["f1"] * 2 + 0.001
    out, kept, note = FeatureSelect(
        operations=["variance_threshold", "correlation_threshold"]
    ).apply(t, FEATURES + ["constant", "copy_of_f1"])
    assert "constant" not in kept and len({"f1", "copy_of_f1"} & set(kept)) == 1
    assert {"f0", "f2", "f3"} <= set(kept) and "kept 4 of 6" in note
    assert set(kept) <= set(out.columns) and "constant" not in out.columns


def test_spherize_makes_the_controls_covariance_the_identity():
    t = table(n_controls=200, n_features=4)
    t["f1"] = t["f1"] + 0.8 * t["f0"]  # correlated features
    out, feats, note = Spherize(method="ZCA", epsilon=1e-9).apply(t, FEATURES)
    controls = out.loc[out[IS_CONTROL] == 1, feats].to_numpy()
    np.testing.assert_allclose(np.cov(controls, rowvar=False), np.eye(4), atol=1e-3)
    assert "fit on 400 control samples" in note


def test_spherize_refuses_more_features_than_controls():
    t = table(n_controls=5, n_features=4, plates=("P1",))
    wide = pd.concat(
        [
            t,
            pd.DataFrame(
                np.random.default_rng(1).normal(size=(len(t), 8)),
                columns=[f"g{i}" for i in range(8)],
            ),
        ],
        axis=1,
    )
    with pytest.raises(
        TableError, match="12 features on 5 control samples.*pca step with n_components below 5"
    ):
        Spherize().apply(wide, FEATURES + [f"g{i}" for i in range(8)])
    # reduced first, the same chain runs
    chain = parse_chain(
        [{"step": "pca", "n_components": 3, "fit_on": "controls"}, {"step": "spherize"}]
    )
    out, feats, notes = postprocess(wide, FEATURES + [f"g{i}" for i in range(8)], chain)
    assert feats == ["pc_0", "pc_1", "pc_2"] and notes["step"].tolist() == ["pca", "spherize"]


def test_pca_never_keeps_more_components_than_fit_samples_allow():
    t = table(n_controls=3, n_features=4, plates=("P1",))
    out, feats, note = PCA(n_components=10, fit_on="controls").apply(t, FEATURES)
    assert feats == ["pc_0", "pc_1"]  # 3 control samples: at most 2 components
    out, feats, _ = PCA(n_components=0.5).apply(table(), FEATURES)
    assert 1 <= len(feats) < 4


def test_coral_aligns_each_batchs_controls_to_all_controls():
    t = table(n_controls=300, n_treated=10)
    b1 = t["Metadata_Batch"] == "B1"
    t.loc[b1, "f2"] = t.loc[b1, "f2"] * 3 + t.loc[b1, "f0"]  # a batch with its own covariance
    out, feats, note = AlignBatches(epsilon=1e-9).apply(t, FEATURES)
    controls = out[out[IS_CONTROL] == 1]
    covs = [
        np.cov(part[FEATURES].to_numpy(), rowvar=False)
        for _, part in controls.groupby("Metadata_Batch")
    ]
    means = [part[FEATURES].mean().to_numpy() for _, part in controls.groupby("Metadata_Batch")]
    np.testing.assert_allclose(covs[0], covs[1], atol=1e-6)
    np.testing.assert_allclose(means[0], means[1], atol=1e-9)
    assert "CORAL over 2 batches" in note


def test_a_chain_refuses_unknown_steps_and_settings():
    with pytest.raises(ValueError, match="unknown step 'whiten'"):
        parse_chain([{"step": "whiten"}])
    with pytest.raises(ValueError, match=r"spherize\): unknown setting\(s\) epsilom"):
        parse_chain([{"step": "spherize", "epsilom": 1}])


def batch_effect_profiles(seed=0):
    """Well profiles of 3 MoAs x 2 compounds in two batches where each batch shifts and scales
    every feature: the batch effect is larger than the MoA signal, so raw NSCB suffers."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(3, 6))
    shift = {"B1": rng.normal(size=6) * 4, "B2": rng.normal(size=6) * 4}
    gain = {"B1": rng.uniform(0.5, 2.0, 6), "B2": rng.uniform(0.5, 2.0, 6)}
    rows = []
    for batch in ("B1", "B2"):

        def well(values, batch=batch, **meta):
            rows.append(
                {
                    **meta,
                    "Metadata_Batch": batch,
                    **{f"f{i}": v for i, v in enumerate(values * gain[batch] + shift[batch])},
                }
            )

        for _ in range(12):
            well(
                rng.normal(size=6) * 0.3,
                Metadata_Compound="DMSO",
                Metadata_Concentration=0.0,
                Metadata_MoA="DMSO",
            )
        for m in range(3):
            compound = f"m{m}-{batch}"
            for dose in (1.0, 3.0):
                for _ in range(3):
                    well(
                        centres[m] * dose + rng.normal(size=6) * 0.3,
                        Metadata_Compound=compound,
                        Metadata_Concentration=dose,
                        Metadata_MoA=f"MoA{m}",
                    )
    return pd.DataFrame(rows)


def test_postprocessing_recovers_nscb_under_a_batch_effect():
    profiles = batch_effect_profiles()
    raw = evaluate_profiles(profiles, control="DMSO")["summary"].set_index("Metadata_MatchScheme")
    chain = parse_chain([{"step": "normalize", "method": "standardize", "by": "batch"}])
    tables = evaluate_profiles(profiles, control="DMSO", postprocess=chain)
    post = tables["summary"].set_index("Metadata_MatchScheme")
    assert raw.loc["nscb", "accuracy"] < 0.7
    assert (
        post.loc["nscb", "accuracy"] == 1.0
        and post.loc["nscb", "mean_average_precision"] > raw.loc["nscb", "mean_average_precision"]
    )
    assert tables["postprocessing"]["step"].tolist() == ["normalize"]
    assert "DMSO" not in set(tables["profiles"]["Metadata_Compound"])


def test_fold_matches_score_raw_and_postprocessed_profiles(tiny_tensors):
    """In the workflow, each fold's embeddings (control crops included) give raw and
    post-processed matches; the chain is fit on the control wells, which are never scored."""

    meta = read_crop_metadata(tiny_tensors)
    assert (meta["is_control"] == 1).any()
    rng = np.random.default_rng(0)
    centres = {moa: rng.normal(size=8) * 3 for moa in meta["moa"].unique()}
    shift = {b: rng.normal(size=8) * 5 for b in meta["batch"].unique()}
    base = np.stack(
        [centres[m] + shift[b] for m, b in zip(meta["moa"], meta["batch"])]
    ) + rng.normal(size=(len(meta), 8))
    embeddings = {c: base for c in ["nocodazole", "vincristine", "cytochalasin B", "latrunculin B"]}
    chain = parse_chain([{"step": "normalize", "by": "batch"}])
    matches, aps, notes = fold_matches(meta, embeddings, chain=chain, control="DMSO")
    assert set(matches[PROFILES]) == {"raw", "postprocessed"} == set(aps[PROFILES])
    assert "DMSO" not in set(matches["Metadata_Compound"]) | set(
        matches["neighbour_compound"].dropna()
    )
    assert notes["Metadata_Fold"].nunique() == 4 and set(notes["step"]) == {"normalize"}
    by = summary_by_scheme(matches, aps)
    assert len(by) == 4 and set(by[PROFILES]) == {"raw", "postprocessed"}
    # the summary gets pp_ columns beside the raw ones
    predictions = pd.DataFrame(
        {
            "Metadata_Compound": ["a"],
            "Metadata_Concentration": [1.0],
            "Metadata_MoA": ["A"],
            "Metadata_Replicate": [1],
            "Metadata_Plate": ["P"],
            "Metadata_Well": ["B02"],
            "Metadata_Site": [1],
            "Metadata_Fold": ["a"],
            "prob_A": [0.9],
            "prob_B": [0.1],
        }
    )
    summary = summarize({"ResNet50": predictions}, "nsc", "bbbc021", {"ResNet50": by})
    assert {"nn_nscb_accuracy", "pp_nn_nscb_accuracy", "pp_map_nsc", "pp_nn_nsc_n"} <= set(
        summary.columns
    )
    assert "post-processed NSCB % (n)" in compact_summary(summary).columns
    # without a chain: raw only, no notes
    matches, _, notes = fold_matches(meta, embeddings, control="DMSO")
    assert set(matches[PROFILES]) == {"raw"} and notes.empty


def test_center_subtracts_each_batchs_control_mean_and_divides_nothing():
    t = table(n_controls=6, n_treated=6, plates=("P1", "P2"))
    t["Metadata_Batch"] = t["Metadata_Plate"]
    out, features, note = Normalize(method="center", by="batch").apply(t, ["f0", "f1", "f2", "f3"])
    for _, part in out.groupby("Metadata_Batch"):
        controls = part[part[IS_CONTROL] == 1]
        assert np.allclose(controls[features].mean(), 0.0)
    original = t[features].to_numpy()
    # a difference within a batch is kept as it is (nothing scaled)
    same = (t["Metadata_Batch"] == "P1").to_numpy()
    assert np.allclose(
        np.diff(out.loc[same, features].to_numpy(), axis=0), np.diff(original[same], axis=0)
    )
    assert "center by batch on controls" in note
    with pytest.raises(
        ValueError, match="method must be one of standardize, robustize, mad_robustize, center"
    ):
        Normalize(method="centre").apply(t, features)


def test_concatenated_profiles_weigh_every_network_the_same():

    keys = {
        "Metadata_Compound": ["a", "b", "c"],
        "Metadata_Concentration": [1.0, 1.0, 1.0],
        "Metadata_MoA": ["A", "A", "B"],
        "Metadata_Batch": [frozenset({"W1"}), frozenset({"W2"}), frozenset({"W2"})],
    }
    # network 1 (large values) puts a next to c, network 2 (tiny values, more features) clearly
    # next to b
    n1 = pd.DataFrame({**keys, "f0": [100.0, 60.0, 98.0], "f1": [10.0, 80.0, 12.0]})
    n2 = pd.DataFrame(
        {**keys, "g0": [1e-3, 1e-3, 0.0], "g1": [0.0, 1e-4, 1e-3], "g2": [0.0, 0.0, 0.0]}
    )
    for t, f in ((n1, ["f0", "f1"]), (n2, ["g0", "g1", "g2"])):
        t.attrs["features"] = f
    both = concatenate_profiles({"n1": n1, "n2": n2})
    x = both[both.attrs["features"]].to_numpy()
    # each network's block has unit length: the ensemble similarity is the mean of the networks'
    assert np.allclose(np.linalg.norm(x[:, :2], axis=1), 1) and np.allclose(
        np.linalg.norm(x[:, 2:], axis=1), 1
    )
    cos = lambda t, i, j: float(t[i] @ t[j] / np.linalg.norm(t[i]) / np.linalg.norm(t[j]))  # noqa: E731
    r1, r2 = n1[["f0", "f1"]].to_numpy(), n2[["g0", "g1", "g2"]].to_numpy()
    assert float(x[0] @ x[1]) / 2 == pytest.approx((cos(r1, 0, 1) + cos(r2, 0, 1)) / 2)
    # the tiny-valued network is not drowned: a's neighbour follows the mean similarity
    assert nearest_neighbours(both, "nsc").loc[0, "neighbour_compound"] == "b"
    assert nearest_neighbours(n1, "nsc").loc[0, "neighbour_compound"] == "c"
    assert list(both["Metadata_Batch"]) == keys["Metadata_Batch"]
    with pytest.raises(TableError, match="n2's treatments differ"):
        concatenate_profiles({"n1": n1, "n2": n2.iloc[:2]})


def test_ensemble_fold_matches_match_each_fold_on_the_concatenated_profiles(tiny_tensors):

    meta = read_crop_metadata(tiny_tensors)
    rng = np.random.default_rng(1)
    compounds = ["nocodazole", "vincristine", "cytochalasin B", "latrunculin B"]
    centres = {moa: rng.normal(size=8) for moa in meta["moa"].unique()}
    by_network = {}
    for network, noise in (("good", 0.1), ("noisy", 3.0)):
        base = np.stack([centres[m] for m in meta["moa"]]) + rng.normal(size=(len(meta), 8)) * noise
        by_network[network] = {c: base for c in compounds}
    chain = parse_chain([{"step": "normalize", "method": "center", "by": "batch"}])
    matches, aps, notes = ensemble_fold_matches(meta, by_network, chain=chain, control="DMSO")
    assert set(matches[PROFILES]) == {"raw", "postprocessed"}
    assert set(matches["Metadata_Compound"]) == set(compounds) and set(
        aps["Metadata_Compound"]
    ) == set(compounds)
    # one note per network and fold
    assert len(notes) == 8 and set(notes["step"]) == {"good: normalize", "noisy: normalize"}
    # a held-out compound's rows come from its own fold: the same rows as one network's fold_matches
    single, _, _ = fold_matches(meta, by_network["good"], chain=chain, control="DMSO")
    assert len(single) == len(matches)
    with pytest.raises(ValueError, match="ensemble: noisy has folds"):
        ensemble_fold_matches(
            meta,
            {
                "good": by_network["good"],
                "noisy": {"nocodazole": by_network["noisy"]["nocodazole"]},
            },
        )


def test_harmony_brings_the_batches_together_and_needs_a_batch_column():

    profiles = batch_effect_profiles()
    profiles[IS_CONTROL] = (profiles["Metadata_Compound"] == "DMSO").astype(int)
    features = [c for c in profiles.columns if c.startswith("f")]
    out, kept, note = Harmony().apply(profiles, features)

    def batch_gap(t):
        means = t.groupby("Metadata_Batch")[features].mean().to_numpy()
        return float(np.linalg.norm(means[0] - means[1]))

    assert kept == features and "Harmony over 2 batches" in note
    assert batch_gap(out) < 0.5 * batch_gap(profiles)
    assert np.isfinite(out[features].to_numpy()).all()
    with pytest.raises(TableError, match="harmony needs a Metadata_Batch column"):
        Harmony().apply(profiles.drop(columns="Metadata_Batch"), features)
    one = profiles[profiles["Metadata_Batch"] == "B1"]
    assert Harmony().apply(one, features)[0] is one


def test_the_lift_of_postprocessing_is_paired_over_the_same_treatments():

    def block(profiles, correct):
        return pd.DataFrame(
            {
                "Metadata_Profiles": profiles,
                "Metadata_MatchScheme": "nscb",
                "Metadata_Compound": ["a", "a", "b", "b", "c", "c"],
                "Metadata_Concentration": [1.0, 3.0] * 3,
                "Metadata_MoA": ["X", "X", "Y", "Y", "X", "X"],
                "scored": True,
                "correct": correct,
            }
        )

    matches = pd.concat(
        [
            block("raw", [0.0, 0.0, 1.0, 1.0, 0.0, 1.0]),
            block("postprocessed", [1.0, 1.0, 1.0, 0.0, 1.0, 1.0]),
        ]
    )
    summary = summary_by_scheme(matches).set_index("Metadata_Profiles")
    post = summary.loc["postprocessed"]
    # 3 gained (a 1, a 3, c 1), 1 lost (b 3): lift (5 - 3) / 6
    assert post["lift"] == pytest.approx(2 / 6) and (post["gained"], post["lost"]) == (3, 1)
    assert post["lift_p_value"] == pytest.approx(0.625)  # two-sided binomial, 3 of 4
    assert post["lift_ci_low"] <= post["lift"] <= post["lift_ci_high"]
    assert np.isnan(summary.loc["raw", "lift"])
    # resampling compounds: a compound's treatments move together, both profiles at once
    same = paired_difference(
        [0, 0, 1, 1, 0, 1], [1, 1, 1, 0, 1, 1], ["a", "a", "b", "b", "c", "c"], n_boot=4000
    )
    assert {c: same[c] for c in ("lift", "gained", "lost")} == {
        "lift": pytest.approx(2 / 6),
        "gained": 3,
        "lost": 1,
    }
    # with only gains over every compound the interval excludes 0
    allgain = paired_difference([0] * 8, [1] * 8, list("aabbccdd"))
    assert allgain["lift_ci_low"] == 1.0 and allgain["lift_p_value"] < 0.01


def test_every_named_chain_parses_and_runs_on_a_small_table():
    assert set(CHAINS) >= {"cellprofiler", "embeddings", "none"}
    assert CHAINS["none"] == []
    t = table(n_features=4)
    for name in CHAINS:
        label, steps = chain_spec(name, "none")
        assert label == name
        out, feats, notes = postprocess(t, FEATURES, parse_chain(steps))
        assert len(out) == len(t) and len(notes) == len(steps)
        assert np.isfinite(out[feats].to_numpy()).all()


def test_chain_spec_takes_a_name_a_file_a_list_or_none(tmp_path):
    assert chain_spec(None, "embeddings") == ("embeddings", CHAINS["embeddings"])
    label, steps = chain_spec("cellprofiler", "none")
    steps[0]["by"] = "plate"  # a copy: the named chain is untouched
    assert CHAINS["cellprofiler"][0]["by"] != "plate"
    assert chain_spec([{"step": "pca", "n_components": 2}], "none") == (
        "custom",
        [{"step": "pca", "n_components": 2}],
    )
    listed = tmp_path / "steps.yaml"
    listed.write_text("- {step: normalize, method: center}\n")
    assert chain_spec(str(listed), "none") == (
        str(listed),
        [{"step": "normalize", "method": "center"}],
    )
    mapped = tmp_path / "mapped.yml"
    mapped.write_text("postprocess:\n  - {step: spherize}\n")
    assert chain_spec(mapped, "none")[1] == [{"step": "spherize"}]


def test_chain_spec_names_the_known_chains_for_an_unknown_name(tmp_path):
    with pytest.raises(ValueError, match="cellprofiler, embeddings, none"):
        chain_spec("cellprofilr", "none")
    with pytest.raises(ValueError, match="no such file"):
        chain_spec(str(tmp_path / "missing.yaml"), "none")
    bad = tmp_path / "bad.yaml"
    bad.write_text("step: pca\n")
    with pytest.raises(ValueError, match="list of steps"):
        chain_spec(str(bad), "none")


def test_rank_normal_maps_each_groups_ranks_to_normal_quantiles():
    t = table(n_features=4)
    out, feats, note = parse_chain([{"step": "rank_normal", "by": "batch"}])[0].apply(t, FEATURES)
    assert feats == FEATURES and "by batch" in note
    for _, part in out.groupby("Metadata_Batch"):
        np.testing.assert_allclose(part[FEATURES].mean(), 0, atol=1e-9)
        np.testing.assert_array_equal(part["f0"].rank(), t.loc[part.index, "f0"].rank())
