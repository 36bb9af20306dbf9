import hashlib
import io
import re
import zipfile

import numpy as np
import pandas as pd
import pytest
import tifffile

from cellmoa.data.datasets import BBBC021
from cellmoa.data.synthetic.bbbc021 import SyntheticSpec, synthesize
from cellmoa.data.synthetic.phenotypes import (
    apply_dose,
    compound_phenotype,
    dose_strength,
    render_field,
)
from tests.helpers.specs import tiny_spec

pytestmark = pytest.mark.unit

NAME_RE = re.compile(
    r"^(Week\d+_\d{6}_)?[B-G]\d{2}_s\d+_w[124][0-9A-F]{8}-[0-9A-F]{4}-4[0-9A-F]{3}-[89AB][0-9A-F]{3}-[0-9A-F]{12}\.tif$"
)


def test_layout_is_bbbc021s(tiny_dataset):
    spec, source = tiny_dataset
    plates = spec.plates()
    assert all(re.fullmatch(r"Week\d+_\d{5}", p) for p in plates)
    images = pd.read_csv(source / "BBBC021_v1_image.csv")
    assert sorted(images["Image_Metadata_Plate_DAPI"].unique()) == sorted(plates)
    for plate in plates:
        with zipfile.ZipFile(source / BBBC021().archive_name(plate)) as zf:
            names = zf.namelist()
            assert all(n.startswith(plate + "/") for n in names)
            for n in names:
                assert NAME_RE.match(n.split("/", 1)[1]), n
            img = tifffile.imread(io.BytesIO(zf.read(names[0])))
            assert img.dtype == np.uint16
            assert img.shape == (spec.image_height, spec.image_width)
            assert np.all(img % 16 == 0), "12-bit data in 16-bit containers: multiples of 16"
    row = images.iloc[0]
    week = row["TableNumber"]
    assert row["Image_PathName_DAPI"] == f"Week{week}/{row['Image_Metadata_Plate_DAPI']}"
    moa = (source / "BBBC021_v1_moa.csv").read_text().splitlines()
    assert moa[0] == '"compound",concentration,"moa"'
    assert '"nocodazole",0.300000,"Microtubule destabilizers"' in moa


def test_every_plate_has_dmso_and_replicates_follow_plates(tiny_dataset):
    spec, source = tiny_dataset
    meta = BBBC021().read_metadata(source)
    for _plate, rows in meta.groupby("plate"):
        assert (rows["compound"] == "DMSO").sum() >= spec.dmso_wells_per_plate
        assert rows["replicate"].nunique() == 1
    labelled = BBBC021().labelled(meta)
    assert (
        labelled.groupby(["compound", "concentration"])["replicate"].nunique()
        == spec.plates_per_week
    ).all()


def _digest(folder):
    h = hashlib.sha256()
    for p in sorted(folder.iterdir()):
        h.update(p.name.encode())
        h.update(p.read_bytes())
    return h.hexdigest()


def test_deterministic_for_a_seed(tmp_path):
    spec = tiny_spec(weeks=1, plates_per_week=1, image_height=48, image_width=64)
    a = synthesize(spec, tmp_path / "a")
    b = synthesize(spec, tmp_path / "b")
    c = synthesize(
        tiny_spec(seed=99, weeks=1, plates_per_week=1, image_height=48, image_width=64),
        tmp_path / "c",
    )
    assert _digest(a) == _digest(b)
    assert _digest(a) != _digest(c)


def test_moa_signal_and_dose_effect():
    spec = tiny_spec(image_height=128, image_width=128)

    def nuclear_area(compound, moa, conc):
        pheno = apply_dose(
            compound_phenotype(spec, moa, compound), dose_strength(conc, spec.concentrations)
        )
        rng = np.random.default_rng(0)
        fields = [render_field(rng, spec, pheno)["DAPI"] for _ in range(6)]
        n_cells = spec.cells_per_field * pheno["density"]
        return np.mean([(f > 0.3).sum() for f in fields]) / n_cells, pheno

    low_area, low = nuclear_area("etoposide", "DNA damage", 0.3)
    high_area, high = nuclear_area("etoposide", "DNA damage", 3.0)
    # DNA damage enlarges nuclei, and the rendered images show it; the higher dose more so
    assert high["nucleus_size"] > low["nucleus_size"] > 1.0
    assert high_area > low_area
    # compounds of one MoA differ, but less than the MoA differs from another
    a = compound_phenotype(spec, "DNA damage", "etoposide")
    b = compound_phenotype(spec, "DNA damage", "mitomycin C")
    c = compound_phenotype(spec, "Actin disruptors", "cytochalasin B")
    la, lb, lc = (np.log(list(x.values())) for x in (a, b, c))
    assert 0 < np.linalg.norm(la - lb) < np.linalg.norm(la - lc)


def test_illumination_truth_saved(tiny_dataset):
    spec, source = tiny_dataset
    truth = np.load(source / "illumination_truth.npz")
    for plate in spec.plates():
        for channel in BBBC021.channels:
            field = truth[f"{plate}/{channel}"]
            assert field.shape == (spec.image_height, spec.image_width)
            assert field.max() == pytest.approx(1.0)
            assert 1.0 / field.min() == pytest.approx(spec.illumination_falloff, rel=0.35)


def test_unknown_parameter_is_named():
    with pytest.raises(ValueError, match="cells_per_well"):
        SyntheticSpec.from_dict({"cells_per_well": 3})


def _dmso_images(source, spec, week):
    """The raw DMSO images of one week's first plate, per channel (a list of arrays)."""
    image = pd.read_csv(source / "BBBC021_v1_image.csv")
    plate = [p for p in spec.plates() if p.startswith(f"Week{week}_")][0]
    rows = image[
        (image["Image_Metadata_Plate_DAPI"] == plate) & (image["Image_Metadata_Compound"] == "DMSO")
    ]
    out = {c: [] for c in BBBC021.channels}
    with zipfile.ZipFile(source / BBBC021().archive_name(plate)) as z:
        for _, row in rows.iterrows():
            for c in BBBC021.channels:
                out[c].append(
                    tifffile.imread(
                        io.BytesIO(z.read(f"{plate}/{row[f'Image_FileName_{c}']}"))
                    ).astype(float)
                )
    return out


def test_batch_effects_off_by_default_and_spread_over_the_range():
    from cellmoa.data.synthetic.batches import BatchEffects, batch_effects

    spec = tiny_spec()
    neutral = batch_effects(spec, 1, spec.plates()[0])
    assert (
        neutral["blur"] == 0 and neutral["density"] == 1 and set(neutral["gain"].values()) == {1.0}
    )
    assert set(neutral["offset"].values()) == {0.0} and set(neutral["stain"].values()) == {1.0}
    effects = BatchEffects(
        channel_gain=0.2, channel_offset=0.1, stain_fade=0.2, blur=1.5, density=0.3
    )
    weeks = [effects.week(0, w, 3) for w in (1, 2, 3)]
    # each effect takes the ends and the middle of its range, one week each
    assert sorted(w["blur"] for w in weeks) == [0.0, 0.75, 1.5]
    assert sorted(w["density"] for w in weeks) == pytest.approx([0.7, 1.0, 1.3])
    assert sorted(w["gain"]["Tubulin"] for w in weeks) == pytest.approx(
        [np.exp(-0.2), 1.0, np.exp(0.2)]
    )
    # stains fade week by week, Actin fastest
    assert [w["stain"]["Actin"] for w in weeks] == pytest.approx([1.0, 0.7, 0.49])
    assert weeks[1]["stain"]["DAPI"] == pytest.approx(0.9)
    with pytest.raises(ValueError, match="unknown batch effect.*blurr"):
        SyntheticSpec.from_dict({"batch_effects": {"blurr": 1}})


def test_batch_effects_show_in_the_images(tmp_path):
    """Gains show in the raw intensities, blur in the fine structure, density in the DAPI signal
    (one effect at a time, against the same dataset without it)."""
    from cellmoa.data.synthetic.batches import BatchEffects

    base = dict(
        weeks=2,
        plates_per_week=1,
        dmso_wells_per_plate=4,
        image_height=96,
        image_width=128,
        cells_per_field=40,
    )
    plain = tiny_spec(**base)
    plain_weeks = {w: _dmso_images(synthesize(plain, tmp_path / "plain"), plain, w) for w in (1, 2)}

    def weeks_with(name, **effect):
        spec = tiny_spec(**base, batch_effects=BatchEffects(**effect))
        source = synthesize(spec, tmp_path / name)
        return {w: _dmso_images(source, spec, w) for w in (1, 2)}, {
            w: spec.batch_effects.week(spec.seed, w, 2) for w in (1, 2)
        }

    def ratio(images, channel):
        return np.mean([i.mean() for i in images[2][channel]]) / np.mean(
            [i.mean() for i in images[1][channel]]
        )

    weeks, truth = weeks_with("gains", channel_gain=0.3)
    for channel in ("DAPI", "Tubulin", "Actin"):
        expected = truth[2]["gain"][channel] / truth[1]["gain"][channel]
        # week-to-week intensity ratio moves by the gains' ratio (the plate share adds up to +-20%)
        assert ratio(weeks, channel) / ratio(plain_weeks, channel) == pytest.approx(
            expected, rel=0.3
        )

    weeks, truth = weeks_with("blur", blur=2.0)
    blurred = max((1, 2), key=lambda w: truth[w]["blur"])

    def fine_structure(images):
        """Mean horizontal step of the lightly smoothed image.

        Camera noise, never blurred, is smoothed away.
        """
        from scipy.ndimage import gaussian_filter

        smooth = [gaussian_filter(i, 1.0) for i in images["Tubulin"]]
        return np.mean([np.abs(np.diff(i, axis=1)).mean() / i.std() for i in smooth])

    # the same cells as without the effect (blurring draws no random numbers): the week without
    # blur is the very same images, the other's cell edges are softer (0.74x measured)
    sharp = 3 - blurred
    assert all(
        np.array_equal(x, y) for x, y in zip(weeks[sharp]["Tubulin"], plain_weeks[sharp]["Tubulin"])
    )
    assert fine_structure(weeks[blurred]) < 0.85 * fine_structure(plain_weeks[blurred])

    weeks, truth = weeks_with("density", density=0.4)
    expected = truth[2]["density"] / truth[1]["density"]  # 1.4 / 0.6 or its inverse
    observed = ratio(weeks, "DAPI") / ratio(plain_weeks, "DAPI")
    # the DAPI signal (above the background) follows the cell count
    assert (observed > 1.3) if expected > 1 else (observed < 1 / 1.3)

    weeks, truth = weeks_with("debris", debris=20.0)
    dirty = max((1, 2), key=lambda w: truth[w]["debris"])
    # debris draws from its own random stream: the clean week is the very same images
    assert all(
        np.array_equal(x, y)
        for x, y in zip(weeks[3 - dirty]["DAPI"], plain_weeks[3 - dirty]["DAPI"])
    )
    # the other week's fields gain bright specks, in DAPI most
    gain = {
        c: np.mean([i.mean() for i in weeks[dirty][c]])
        / np.mean([i.mean() for i in plain_weeks[dirty][c]])
        for c in ("DAPI", "Actin")
    }
    assert gain["DAPI"] > 1.05 and gain["DAPI"] > gain["Actin"]


def test_unlabelled_compounds_carry_a_hidden_moa(tmp_path):
    """An unlabelled compound given with a hidden MoA is imaged with that MoA's phenotype (a
    trained one to recognise, or an MoA no annotated compound has) but published without a label;
    the truth is kept in synthetic_spec.json. A list gives each compound an MoA of its own."""
    import json

    from cellmoa.data.synthetic.phenotypes import archetype

    spec = tiny_spec(
        weeks=1,
        plates_per_week=1,
        image_height=32,
        image_width=48,
        unlabelled_compounds={"AZ-K": "Microtubule destabilizers", "AZ-N": "Eg5 inhibitors"},
    )
    assert spec.hidden_moas() == {"AZ-K": "Microtubule destabilizers", "AZ-N": "Eg5 inhibitors"}
    raw = synthesize(spec, tmp_path / "raw", archives=False)
    meta = BBBC021().read_metadata(raw)
    assert set(meta.loc[meta["compound"].isin(["AZ-K", "AZ-N"]), "moa"]) == {""}
    saved = json.loads((raw / "synthetic_spec.json").read_text())
    assert SyntheticSpec.from_dict(saved).hidden_moas() == spec.hidden_moas()
    # the phenotype drawn is the hidden MoA's archetype (with the compound's own small deviation)
    known = compound_phenotype(spec, "Microtubule destabilizers", "AZ-K")
    assert known["tubulin_texture"] == pytest.approx(
        archetype("Microtubule destabilizers")["tubulin_texture"], rel=0.2
    )
    assert tiny_spec(unlabelled_compounds=["X", "Y"]).hidden_moas() == {
        "X": "_unlabelled_0",
        "Y": "_unlabelled_1",
    }
