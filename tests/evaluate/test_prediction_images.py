"""Issue 17 on images: the synthesizer's unlabelled compounds carry a hidden MoA, so the prediction
sets and the novel flag can be checked against the truth on rendered fields, with enough held-out
compounds for a coverage figure (24 annotated compounds, 14 unlabelled ones, 4 draws).

Training a CNN on 24 compounds per draw does not fit in CI, so a stand-in model takes its place:
intensity, quantile and texture features of each field and a logistic regression, trained leave
one compound out like the folds and once on every annotated compound like the fold ``all``. All
that follows the model is cellmoa's own: the paper's treatment aggregate
(:func:`cellmoa.evaluate.accuracy.treatment_predictions`,
:func:`cellmoa.evaluate.unannotated.unannotated_treatments`),
the compound-level conformal calibration, the sets, the nearest annotated treatments and the
novel flag (:mod:`cellmoa.evaluate.unannotated`)."""

import numpy as np
import pandas as pd
import pytest
from scipy import ndimage
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from cellmoa.data.synthetic.bbbc021 import SyntheticSpec
from cellmoa.data.synthetic.phenotypes import (
    apply_dose,
    compound_phenotype,
    dose_strength,
    render_field,
)
from cellmoa.evaluate.accuracy import treatment_predictions
from cellmoa.evaluate.calibration import Calibration
from cellmoa.evaluate.unannotated import (
    nearest_annotated,
    predict,
    unannotated_treatments,
)

pytestmark = pytest.mark.e2e

KNOWN = [
    "Actin disruptors",
    "Aurora kinase inhibitors",
    "Kinase inhibitors",
    "Microtubule destabilizers",
]
#: an MoA no annotated compound has
UNSEEN = "Epithelial"
COVERAGE = 0.8
UNANNOTATED = "(unannotated)"


def _spec(seed: int) -> SyntheticSpec:
    moas = {m: [f"{m[:3]}-{i}" for i in range(6)] for m in KNOWN}
    hidden = {f"U-{m[:3]}-{i}": m for m in KNOWN for i in range(3)}
    hidden.update({f"U-new-{i}": UNSEEN for i in range(2)})
    # compounds of one MoA differ clearly (0.2, not the demo's 0.04), so that held-out compounds are
    # sometimes mistaken and the sets have something to calibrate
    return SyntheticSpec(
        seed=seed,
        moas=moas,
        unlabelled_compounds=hidden,
        image_height=96,
        image_width=120,
        cells_per_field=25,
        nucleus_radius=3.0,
        compound_variation=0.2,
    )


def _features(layers: dict) -> list[float]:
    out = []
    for image in layers.values():
        gradient = ndimage.gaussian_gradient_magnitude(image, 1.0)
        out += [
            image.mean(),
            image.std(),
            *np.quantile(image, [0.5, 0.9, 0.99]),
            (image > 0.2).mean(),
            gradient.mean(),
        ]
    return out


def _fields(spec: SyntheticSpec) -> tuple[pd.DataFrame, np.ndarray]:
    """Two fields per well, one well per replicate (3) and concentration, for every compound."""
    rng = np.random.default_rng([spec.seed, 17])
    hidden = spec.hidden_moas()
    compounds = [(c, m, True) for m, cs in spec.moas.items() for c in cs] + [
        (c, m, False) for c, m in hidden.items()
    ]
    rows, features = [], []
    for compound, moa, annotated in compounds:
        phenotype = compound_phenotype(spec, moa, compound)
        for concentration in spec.concentrations:
            dosed = apply_dose(phenotype, dose_strength(concentration, spec.concentrations))
            for replicate in (1, 2, 3):
                for site in (1, 2):
                    features.append(_features(render_field(rng, spec, dosed)))
                    rows.append(
                        {
                            "Metadata_Compound": compound,
                            "Metadata_Concentration": concentration,
                            "Metadata_Replicate": replicate,
                            "Metadata_Plate": f"P{replicate}",
                            "Metadata_Well": "B02",
                            "Metadata_Site": site,
                            "Metadata_MoA": moa if annotated else "",
                            "truth": moa,
                            "annotated": annotated,
                        }
                    )
    return pd.DataFrame(rows), np.asarray(features)


def _model():
    return make_pipeline(StandardScaler(), LogisticRegression(C=0.3, max_iter=2000))


def _crop_predictions(fields: pd.DataFrame, model, x: np.ndarray) -> pd.DataFrame:
    p = model.predict_proba(x)
    return fields.drop(columns=["truth", "annotated"]).assign(
        **{f"prob_{m}": p[:, i] for i, m in enumerate(model.classes_)}
    )


def _screen(seed: int) -> pd.DataFrame:
    """The unannotated table of one draw, with each row's hidden MoA (``truth``)."""
    spec = _spec(seed)
    fields, x = _fields(spec)
    annotated = fields[fields["annotated"]]
    # the leave-one-compound-out folds: each annotated treatment predicted by a model that never
    # saw its compound
    held_out = []
    for compound in annotated["Metadata_Compound"].unique():
        train = annotated[annotated["Metadata_Compound"] != compound]
        test = annotated[annotated["Metadata_Compound"] == compound]
        model = _model().fit(x[train.index], train["truth"])
        held_out.append(_crop_predictions(test, model, x[test.index]))
    treatments = treatment_predictions(pd.concat(held_out, ignore_index=True))

    # treatment profiles (the features, standardised on the annotated fields) for the neighbours,
    # and the calibration similarities: each annotated treatment's nearest annotated treatment of
    # another compound
    z = StandardScaler().fit(x[annotated.index]).transform(x)
    names = [f"f{i}" for i in range(z.shape[1])]
    profiles = pd.concat(
        [
            fields[["Metadata_Compound", "Metadata_Concentration"]],
            pd.DataFrame(z, columns=names, index=fields.index),
        ],
        axis=1,
    )
    profiles["Metadata_MoA"] = np.where(fields["annotated"], fields["truth"], UNANNOTATED)
    profiles = profiles.groupby(
        ["Metadata_Compound", "Metadata_Concentration", "Metadata_MoA"], as_index=False
    )[names].mean()
    profiles.attrs["features"] = names
    known = profiles[profiles["Metadata_MoA"] != UNANNOTATED]
    unit = known[names].to_numpy(np.float64)
    unit = unit / np.linalg.norm(unit, axis=1, keepdims=True)
    similarity = unit @ unit.T
    same = known["Metadata_Compound"].to_numpy()
    similarity[same[:, None] == same[None, :]] = -np.inf
    calibration = Calibration(treatments, COVERAGE, "lac", similarity.max(axis=1), same)

    # the all-compound fold predicts the unlabelled compounds
    model = _model().fit(x[annotated.index], annotated["truth"])
    new = fields[~fields["annotated"]]
    table = predict(
        unannotated_treatments(_crop_predictions(new, model, x[new.index])),
        calibration,
        nearest_annotated(profiles, 3, UNANNOTATED),
    )
    truth = spec.hidden_moas()
    return table.assign(truth=table["Metadata_Compound"].map(truth), seed=seed)


@pytest.fixture(scope="module")
def screens() -> pd.DataFrame:
    return pd.concat([_screen(seed) for seed in range(4)], ignore_index=True)


def test_the_sets_hold_the_hidden_moa_of_new_compounds_at_the_promised_rate(screens):
    known = screens[screens["truth"].isin(KNOWN)]
    assert len(known) == 4 * 12 * 2  # 4 draws, 12 compounds of known MoAs, 2 doses
    covered = np.array(
        [t in s.split("; ") for t, s in zip(known["truth"], known["prediction_set"])]
    )
    # not below the nominal level beyond binomial error (two standard errors; the guarantee), and
    # the sets are useful: mostly one MoA, the right one on top most of the time
    se = np.sqrt(COVERAGE * (1 - COVERAGE) / len(known))
    assert covered.mean() >= COVERAGE - 2 * se, covered.mean()
    assert known["set_size"].mean() <= 1.5
    assert (known["top_moa"] == known["truth"]).mean() >= 0.75
    # the conformal guarantee is marginal: it is not met by always naming every MoA
    assert (known["set_size"] < len(KNOWN)).all()


def test_compounds_of_an_unseen_moa_are_flagged_novel(screens):
    unseen = screens[screens["truth"] == UNSEEN]
    known = screens[screens["truth"].isin(KNOWN)]
    assert len(unseen) == 4 * 2 * 2
    # most compounds of the unseen MoA are flagged at one dose or more, most of their treatments
    # are, and far more often than the compounds of known MoAs (whose false flags the rules hold
    # near 1 - coverage). Not all: nothing guarantees it, and a compound whose phenotype lies next
    # to a known MoA's (draw 3's U-new-1, nearest similarity 0.93, like the demo's AZ-U2) is
    # confidently given that MoA.
    assert unseen.groupby(["seed", "Metadata_Compound"])["novel"].any().mean() >= 0.75
    assert unseen["novel"].mean() >= 0.6, unseen["novel"].mean()
    assert known["novel"].mean() <= 1 - COVERAGE + 0.15, known["novel"].mean()
    assert unseen["novel_reason"][unseen["novel"]].str.len().gt(0).all()
    # no set of an unseen compound's treatment holds its (untrained) MoA: there is no such class
    assert not unseen["prediction_set"].str.contains(UNSEEN).any()
