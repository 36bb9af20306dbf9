import numpy as np
import pytest

from cellmoa.evaluate.conformal import (
    conformal_quantile,
    leave_one_compound_out,
    nonconformity,
    prediction_sets,
)

pytestmark = pytest.mark.unit


def draw(rng, n_compounds, per_compound=3, k=4, sharpness=2.0):
    """Treatments of compounds with a compound-level deviation: probabilities from noisy logits
    whose noise is shared within a compound (its treatments are not exchangeable)."""
    labels = rng.integers(0, k, n_compounds)
    probs, ys, compounds = [], [], []
    for c, y in enumerate(labels):
        shared = rng.normal(size=k)
        for _ in range(per_compound):
            logits = sharpness * np.eye(k)[y] + shared + 0.3 * rng.normal(size=k)
            p = np.exp(logits - logits.max())
            probs.append(p / p.sum())
            ys.append(y)
            compounds.append(f"c{c}")
    return np.array(probs), np.array(ys), np.array(compounds)


@pytest.mark.parametrize("method", ["lac", "aps"])
def test_sets_cover_new_compounds_at_the_promised_rate(method):
    """Over many draws of calibration and new compounds, the true MoA is in the set at least at
    the nominal rate (within binomial error), and not far above it (LAC: at most 1/(n+1) over)."""
    rng = np.random.default_rng(0)
    coverage, n_cal, draws = 0.9, 30, 400
    covered, sizes = [], []
    for _ in range(draws):
        p, y, c = draw(rng, n_cal)
        q = conformal_quantile(nonconformity(p, y, method), c, coverage)
        p_new, y_new, _ = draw(rng, 1)
        sets = prediction_sets(p_new[:1], q, method)
        covered.append(bool(sets[0, y_new[0]]))
        sizes.append(int(sets[0].sum()))
    rate = np.mean(covered)
    error = 3 * np.sqrt(coverage * (1 - coverage) / draws)
    assert rate >= coverage - error
    if method == "lac":
        assert rate <= coverage + 1 / (n_cal + 1) + error
    assert 1.0 <= np.mean(sizes) < 4.0  # informative: not every MoA


def test_treatment_level_calibration_would_be_too_optimistic_the_compound_level_is_not():
    """Counting treatments instead of compounds makes n three times larger; the compound-level
    threshold is at least as high and holds its coverage on new compounds."""
    rng = np.random.default_rng(1)
    p, y, c = draw(rng, 20, per_compound=4)
    scores = nonconformity(p, y, "lac")
    by_compound = conformal_quantile(scores, c, 0.9)
    by_treatment = conformal_quantile(scores, np.arange(len(scores)), 0.9)
    assert by_compound >= by_treatment


def test_scores_and_sets_agree_and_bad_input_is_refused():
    p = np.array([[0.6, 0.3, 0.1], [0.2, 0.2, 0.6]])
    assert nonconformity(p, np.array([1, 0]), "aps").tolist() == pytest.approx([0.9, 1.0])
    assert nonconformity(p, np.array([1, 0]), "lac").tolist() == pytest.approx([0.7, 0.8])
    # APS: the most probable classes until their mass reaches the threshold; ties go in together
    assert prediction_sets(p, 0.9, "aps").tolist() == [[True, True, False], [False, False, True]]
    assert prediction_sets(p, 1.0, "aps").tolist() == [[True, True, True], [True, True, True]]
    # too few compounds for the level: every MoA
    assert conformal_quantile([0.1, 0.2], ["a", "b"], 0.9) == float("inf")
    with pytest.raises(ValueError, match="unknown conformal score 'raps'"):
        nonconformity(p, np.array([0, 0]), "raps")
    with pytest.raises(ValueError, match="coverage must be between 0 and 1"):
        conformal_quantile([0.1], ["a"], 1.5)


def test_leave_one_compound_out_coverage_is_honest():
    rng = np.random.default_rng(2)
    p, y, c = draw(rng, 60)
    table = leave_one_compound_out(p, y, c, coverage=0.8, method="lac")
    assert len(table) == len(y) and set(table.columns) == {
        "Metadata_Compound",
        "threshold",
        "covered",
        "set_size",
    }
    # each compound's threshold comes from the others: no compound calibrates itself
    assert table.groupby("Metadata_Compound")["threshold"].nunique().max() == 1
    assert 0.7 <= table["covered"].mean() <= 0.95
